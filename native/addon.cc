// The ringpipe addon: regions as SharedArrayBuffers, futex wait/wake, C++ ends of a ring for
// tests, the pixel copy after sharp (pixels.cc) and the fused JPEG path (jpeg/). The per-record
// protocol runs in JS (src/ring/) over the same memory; see ring.h.
#include <napi.h>
#include <node.h>
#include <v8.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>
#include <cstring>
#include <memory>
#include <thread>

#include "futex.h"
#include "region.h"
#include "ring.h"
#include "testdata.h"

namespace ringpipe {

Napi::Value WriteRgbTensor(const Napi::CallbackInfo& info);  // pixels.cc
Napi::Value JpegCropDecode(const Napi::CallbackInfo& info);  // jpeg/binding.cc

namespace {

// napi_value is a v8::Local<v8::Value> underneath; Node-API in Node 20 cannot make a
// SharedArrayBuffer over foreign memory, V8's NewBackingStore can.
v8::Local<v8::Value> ToV8(napi_value v) {
  v8::Local<v8::Value> local;
  static_assert(sizeof(local) == sizeof(v));
  std::memcpy(static_cast<void*>(&local), &v, sizeof(v));
  return local;
}
napi_value FromV8(v8::Local<v8::Value> local) { return reinterpret_cast<napi_value>(*local); }

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

std::shared_ptr<v8::BackingStore> StoreOf(const Napi::CallbackInfo& info, size_t i) {
  v8::Local<v8::Value> v = ToV8(info[i]);
  if (!v->IsSharedArrayBuffer()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a SharedArrayBuffer");
  return v.As<v8::SharedArrayBuffer>()->GetBackingStore();
}

uint32_t* WordAt(const Napi::CallbackInfo& info, const std::shared_ptr<v8::BackingStore>& store, size_t arg) {
  uint32_t off = info[arg].As<Napi::Number>().Uint32Value();
  if (off % 4 || off + 4 > store->ByteLength()) throw Napi::RangeError::New(info.Env(), "futex offset out of range: " + std::to_string(off));
  return reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(store->Data()) + off);
}

Napi::Value MakeSab(Napi::Env env, const Region& r) {
  auto store = v8::SharedArrayBuffer::NewBackingStore(
      r.data, r.size, [](void* data, size_t length, void*) { unmap_region(static_cast<uint8_t*>(data), length); }, nullptr);
  return Napi::Value(env, FromV8(v8::SharedArrayBuffer::New(v8::Isolate::GetCurrent(), std::move(store))));
}

// createRegion(size, shared) -> { buffer, name }
Napi::Value CreateRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double size = info[0].As<Napi::Number>().DoubleValue();
  bool shared = info[1].ToBoolean();
  if (!(size > 0) || size > 1ull << 40) throw CodedError(env, "ERR_INVALID_ARG", "region size must be a positive number of bytes, got " + std::to_string(size));
  try {
    Region r = shared ? create_shared_region(static_cast<size_t>(size)) : create_private_region(static_cast<size_t>(size));
    Napi::Object out = Napi::Object::New(env);
    out.Set("buffer", MakeSab(env, r));
    out.Set("name", r.name);
    return out;
  } catch (const RegionError& e) {
    throw CodedError(env, e.code, e.message);
  }
}

Napi::Value OpenRegion(const Napi::CallbackInfo& info) {
  try {
    return MakeSab(info.Env(), open_shared_region(info[0].As<Napi::String>().Utf8Value()));
  } catch (const RegionError& e) {
    throw CodedError(info.Env(), e.code, e.message);
  }
}

Napi::Value UnlinkRegion(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unlink_region(info[0].As<Napi::String>().Utf8Value()));
}
Napi::Value UnlinkOwned(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), unlink_owned_regions()); }
Napi::Value CleanupStale(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cleanup_stale_regions()); }
Napi::Value Prefix(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), region_prefix()); }

// futexWait(sab, byteOffset, expected, timeoutMs) -> 0 woken, 1 not-equal, 2 timed-out. Blocks:
// for worker threads and child processes only.
Napi::Value FutexWait(const Napi::CallbackInfo& info) {
  auto store = StoreOf(info, 0);
  uint32_t* addr = WordAt(info, store, 1);
  WaitResult r = futex_wait(addr, info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().DoubleValue());
  return Napi::Number::New(info.Env(), static_cast<int>(r));
}

Napi::Value FutexWake(const Napi::CallbackInfo& info) {
  auto store = StoreOf(info, 0);
  uint32_t* addr = WordAt(info, store, 1);
  int count = info.Length() > 2 ? info[2].As<Napi::Number>().Int32Value() : INT32_MAX;
  return Napi::Number::New(info.Env(), futex_wake(addr, count));
}

// A job run on its own thread that settles a promise on the JS thread. Threads are only started
// when a side parks, which the protocol keeps rare (spin, batch, then park).
struct ThreadJob {
  std::shared_ptr<v8::BackingStore> store;  // keeps the mapping alive while the thread uses it
  Napi::Promise::Deferred deferred;
  std::function<void(ThreadJob*)> work;
  std::function<Napi::Value(Napi::Env, ThreadJob*)> result;
  int code = 0;
  uint64_t a = 0, b = 0;
  std::string error;
};
void SettleJob(Napi::Env env, Napi::Function, std::nullptr_t*, ThreadJob* job) {
  if (env != nullptr) {
    if (job->error.empty()) job->deferred.Resolve(job->result(env, job));
    else job->deferred.Reject(Napi::Error::New(env, job->error).Value());
  }
  delete job;
}
using JobTsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, ThreadJob, SettleJob>;

Napi::Value RunOnThread(Napi::Env env, ThreadJob* job) {
  Napi::Promise promise = job->deferred.Promise();
  JobTsfn tsfn = JobTsfn::New(env, "ringpipe.thread", 0, 1);
  std::thread([job, tsfn]() mutable {
    job->work(job);
    if (tsfn.BlockingCall(job) != napi_ok) delete job;
    tsfn.Release();
  }).detach();
  return promise;
}

// futexWaitAsync(sab, byteOffset, expected, timeoutMs) -> Promise<0|1|2>; never blocks JS.
// Served by a pool of persistent waiter threads per JS thread: starting a thread per wait costs
// tens of microseconds, as much as the wait itself on a busy pipeline.
struct WaitJob {
  std::shared_ptr<v8::BackingStore> store;  // keeps the mapping alive while the thread waits
  uint32_t* addr;
  uint32_t expected;
  double ms;
  Napi::Promise::Deferred deferred;
  int result = 0;
};

class Waiter;
void SettleWait(Napi::Env env, Napi::Function, Waiter* waiter, WaitJob* job);
using WaitTsfn = Napi::TypedThreadSafeFunction<Waiter, WaitJob, SettleWait>;

class Waiter {
 public:
  explicit Waiter(Napi::Env env) : tsfn_(WaitTsfn::New(env, "ringpipe.waiter", 0, 1, this)) {
    tsfn_.Unref(env);  // an idle waiter must not keep the process alive
    thread_ = std::thread([this] { Loop(); });
  }
  ~Waiter() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();  // a wait lasts one slice at most (the JS side waits in slices)
    // No tsfn_.Release(): waiters die only with their environment, whose teardown closes every
    // thread-safe function itself (and may have done so already: releasing it again aborts).
  }
  bool busy = false;  // touched on the JS thread only
  void Submit(Napi::Env env, WaitJob* job) {
    busy = true;
    tsfn_.Ref(env);  // a pending wait keeps the process alive, like a timer
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
    }
    cv_.notify_one();
  }
  void Done(Napi::Env env) {
    busy = false;
    tsfn_.Unref(env);
  }

 private:
  void Loop() {
    for (;;) {
      WaitJob* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return stop_ || job_ != nullptr; });
        if (stop_) return;
        job = job_;
        job_ = nullptr;
      }
      job->result = static_cast<int>(futex_wait(job->addr, job->expected, job->ms));
      if (tsfn_.BlockingCall(job) != napi_ok) delete job;
    }
  }
  WaitTsfn tsfn_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  WaitJob* job_ = nullptr;
  bool stop_ = false;
};

void SettleWait(Napi::Env env, Napi::Function, Waiter* waiter, WaitJob* job) {
  if (env != nullptr) {
    waiter->Done(env);
    job->deferred.Resolve(Napi::Number::New(env, job->result));
  }
  delete job;
}

struct WaiterPool {
  std::vector<std::unique_ptr<Waiter>> waiters;
};

Napi::Value FutexWaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto store = StoreOf(info, 0);
  uint32_t* addr = WordAt(info, store, 1);
  auto* job = new WaitJob{store, addr, info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().DoubleValue(),
                          Napi::Promise::Deferred::New(env)};
  Napi::Promise promise = job->deferred.Promise();
  auto* pool = env.GetInstanceData<WaiterPool>();
  if (!pool) {
    pool = new WaiterPool();
    env.SetInstanceData(pool);  // deleted (threads joined) when this JS thread's environment ends
  }
  Waiter* idle = nullptr;
  for (auto& w : pool->waiters) {
    if (!w->busy) {
      idle = w.get();
      break;
    }
  }
  if (!idle) {
    pool->waiters.push_back(std::make_unique<Waiter>(env));
    idle = pool->waiters.back().get();
  }
  idle->Submit(env, job);
  return promise;
}

// initRing(sab, capacity, readerSlots, flags, writers)
Napi::Value InitRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto store = StoreOf(info, 0);
  uint32_t capacity = info[1].As<Napi::Number>().Uint32Value();
  uint32_t readers = info[2].As<Napi::Number>().Uint32Value();
  uint32_t flags = info[3].As<Napi::Number>().Uint32Value();
  uint32_t writers = info[4].As<Napi::Number>().Uint32Value();
  if (!is_power_of_two(capacity) || capacity < 4096 || capacity > (1u << 30))
    throw CodedError(env, "ERR_INVALID_ARG", "ring capacity must be a power of two from 4096 to 2^30 bytes, got " + std::to_string(capacity));
  if (readers < 1 || readers > kMaxReaders) throw CodedError(env, "ERR_INVALID_ARG", "a ring has 1 to " + std::to_string(kMaxReaders) + " readers, got " + std::to_string(readers));
  if (writers < 1 || writers > kMaxWriters) throw CodedError(env, "ERR_INVALID_ARG", "a ring has 1 to " + std::to_string(kMaxWriters) + " writers, got " + std::to_string(writers));
  if (region_size(capacity, readers) > store->ByteLength()) throw CodedError(env, "ERR_INVALID_ARG", "region too small for the ring");
  init_ring(static_cast<uint8_t*>(store->Data()), capacity, readers, flags, writers, static_cast<uint32_t>(getpid()));
  return env.Undefined();
}

// Parks a C++ test end on `seq_off` until `ready()` or the ring is aborted; 100 ms slices so an
// aborted ring is noticed even if no wake comes.
template <typename Ready>
bool ParkUntil(uint8_t* base, uint32_t seq_off, uint32_t waiting_off, Ready ready) {
  for (int spin = 0; spin < 2000; ++spin) {
    if (ready()) return true;
  }
  for (;;) {
    uint32_t seq = at(base, seq_off).load();
    at(base, waiting_off).fetch_add(1);
    bool ok = ready();
    if (!ok && at(base, kOffState).load() != kStateAborted) futex_wait(reinterpret_cast<uint32_t*>(base + seq_off), seq, 100);
    at(base, waiting_off).fetch_sub(1);
    if (ok || ready()) return true;
    if (at(base, kOffState).load() == kStateAborted) return false;
  }
}

// cppProduce(sab, count, seed, maxLen, align) -> Promise<void>: a C++ writer on its own thread
// writing testdata records 0..count-1, then closing its end.
Napi::Value CppProduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* job = new ThreadJob{StoreOf(info, 0), Napi::Promise::Deferred::New(env)};
  uint32_t count = info[1].As<Napi::Number>().Uint32Value(), seed = info[2].As<Napi::Number>().Uint32Value();
  uint32_t max_len = info[3].As<Napi::Number>().Uint32Value(), align = info[4].As<Napi::Number>().Uint32Value();
  job->work = [count, seed, max_len, align](ThreadJob* j) {
    uint8_t* base = static_cast<uint8_t*>(j->store->Data());
    Writer w(base);
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t len = testdata::length_of(i, seed, max_len);
      uint8_t* p = nullptr;
      if (!ParkUntil(base, kOffSpaceSeq, kOffWritersWaiting, [&] { w.publish(); return (p = w.try_claim(len, 1, i, align)) != nullptr; })) {
        j->error = "ring aborted while writing record " + std::to_string(i);
        return;
      }
      for (uint32_t k = 0; k < len; ++k) p[k] = testdata::byte_of(i, k, seed);
      w.commit();
      if ((i & 63) == 63) {
        w.publish();
        if (w.take_wake()) futex_wake(reinterpret_cast<uint32_t*>(base + kOffDataSeq));
      }
    }
    w.publish();
    close_writer(base);
    futex_wake(reinterpret_cast<uint32_t*>(base + kOffDataSeq));
  };
  job->result = [](Napi::Env e, ThreadJob*) { return e.Undefined(); };
  return RunOnThread(env, job);
}

// cppConsume(sab, slot, seed, maxLen) -> Promise<{ count, bad }>: a C++ reader that checks every
// byte of testdata records until the ring is closed and drained.
Napi::Value CppConsume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* job = new ThreadJob{StoreOf(info, 0), Napi::Promise::Deferred::New(env)};
  uint32_t slot = info[1].As<Napi::Number>().Uint32Value(), seed = info[2].As<Napi::Number>().Uint32Value();
  uint32_t max_len = info[3].As<Napi::Number>().Uint32Value();
  job->work = [slot, seed, max_len](ThreadJob* j) {
    uint8_t* base = static_cast<uint8_t*>(j->store->Data());
    Reader r(base, slot);
    uint32_t i = 0;
    for (;;) {
      RecordView rec{};
      Next got = Next::kEmpty;
      bool published = false;  // before parking, hand back released space a writer may wait for
      ParkUntil(base, kOffDataSeq, kOffReadersWaiting, [&] {
        if ((got = r.try_next(&rec)) != Next::kEmpty) return true;
        if (!published && r.publish()) futex_wake(reinterpret_cast<uint32_t*>(base + kOffSpaceSeq));
        published = true;
        return false;
      });
      if (got == Next::kAborted) { j->error = "ring aborted after " + std::to_string(i) + " records"; return; }
      if (got == Next::kClosed) break;
      bool ok = rec.seq == i && rec.length == testdata::length_of(i, seed, max_len);
      for (uint32_t k = 0; ok && k < rec.length; ++k) ok = rec.payload[k] == testdata::byte_of(i, k, seed);
      if (!ok) ++j->b;
      r.release();
      ++i;
      if ((i & 63) == 0 && r.publish()) futex_wake(reinterpret_cast<uint32_t*>(base + kOffSpaceSeq));
    }
    if (r.publish()) futex_wake(reinterpret_cast<uint32_t*>(base + kOffSpaceSeq));
    j->a = i;
  };
  job->result = [](Napi::Env e, ThreadJob* j) {
    Napi::Object o = Napi::Object::New(e);
    o.Set("count", Napi::Number::New(e, static_cast<double>(j->a)));
    o.Set("bad", Napi::Number::New(e, static_cast<double>(j->b)));
    return o;
  };
  return RunOnThread(env, job);
}

// napiWriteRecords(sab, count, length): writes `count` records of `length` bytes with one N-API call
// per record (claim + fill + commit in C++), for the benchmark that compares this path with the JS
// one. Returns how many fitted before the ring was full.
Napi::Value NapiWriteRecord(const Napi::CallbackInfo& info) {
  auto store = StoreOf(info, 0);
  uint8_t* base = static_cast<uint8_t*>(store->Data());
  uint32_t length = info[1].As<Napi::Number>().Uint32Value();
  uint32_t seq = info[2].As<Napi::Number>().Uint32Value();
  // The writer's state lives in the ring: rebuild it per call, as a stateless binding must.
  Writer w(base);
  uint8_t* p = w.try_claim(length, 1, seq);
  if (!p) return Napi::Boolean::New(info.Env(), false);
  std::memset(p, static_cast<int>(seq), length);
  w.commit();
  w.publish();
  if (w.take_wake()) futex_wake(reinterpret_cast<uint32_t*>(base + kOffDataSeq));
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Object Layout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* k, uint32_t v) { o.Set(k, Napi::Number::New(env, v)); };
  set("magic", kMagic); set("version", kVersion); set("line", kLine);
  set("maxWriters", kMaxWriters); set("maxReaders", kMaxReaders);
  set("recordHeader", kRecordHeader); set("recordAlign", kRecordAlign); set("typePad", kTypePad);
  set("flagMultiProducer", kFlagMultiProducer); set("flagCrossProcess", kFlagCrossProcess); set("flagSupervised", kFlagSupervised);
  set("stateOpen", kStateOpen); set("stateClosed", kStateClosed); set("stateAborted", kStateAborted);
  set("offMagic", kOffMagic); set("offVersion", kOffVersion); set("offCapacity", kOffCapacity);
  set("offFlags", kOffFlags); set("offReaderSlots", kOffReaderSlots); set("offDataOffset", kOffDataOffset);
  set("offState", kOffState); set("offWritersOpen", kOffWritersOpen); set("offAbortCode", kOffAbortCode);
  set("offCreatorPid", kOffCreatorPid); set("offWritePos", kOffWritePos); set("offDataSeq", kOffDataSeq);
  set("offReadersWaiting", kOffReadersWaiting); set("offDataWant", kOffDataWant); set("offSpaceSeq", kOffSpaceSeq);
  set("offWritersWaiting", kOffWritersWaiting); set("offSpaceWant", kOffSpaceWant); set("offWriterPids", kOffWriterPids); set("offReaders", kOffReaders);
  set("readerReadPos", kReaderReadPos); set("readerActive", kReaderActive); set("readerPid", kReaderPid); set("readerClaim", kReaderClaim); set("readerSeen", kReaderSeen);
  set("recLength", kRecLength); set("recTypeFlags", kRecTypeFlags); set("recSeq", kRecSeq); set("recStamp", kRecStamp);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("layout", Layout(env));
  exports.Set("createRegion", Napi::Function::New(env, CreateRegion));
  exports.Set("openRegion", Napi::Function::New(env, OpenRegion));
  exports.Set("unlinkRegion", Napi::Function::New(env, UnlinkRegion));
  exports.Set("unlinkOwnedRegions", Napi::Function::New(env, UnlinkOwned));
  exports.Set("cleanupStaleRegions", Napi::Function::New(env, CleanupStale));
  exports.Set("regionPrefix", Napi::Function::New(env, Prefix));
  exports.Set("futexWait", Napi::Function::New(env, FutexWait));
  exports.Set("futexWake", Napi::Function::New(env, FutexWake));
  exports.Set("futexWaitAsync", Napi::Function::New(env, FutexWaitAsync));
  exports.Set("initRing", Napi::Function::New(env, InitRing));
  exports.Set("cppProduce", Napi::Function::New(env, CppProduce));
  exports.Set("cppConsume", Napi::Function::New(env, CppConsume));
  exports.Set("napiWriteRecord", Napi::Function::New(env, NapiWriteRecord));
  exports.Set("writeRgbTensor", Napi::Function::New(env, WriteRgbTensor));
  exports.Set("jpegCropDecode", Napi::Function::New(env, JpegCropDecode));
  return exports;
}

}  // namespace
}  // namespace ringpipe

static Napi::Object InitRingpipe(Napi::Env env, Napi::Object exports) { return ringpipe::Init(env, exports); }
NODE_API_MODULE(ringpipe, InitRingpipe)
