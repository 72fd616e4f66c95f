// C++ tests of the ring layout and protocol: threads, several producers, broadcast with a slow
// reader, wrap-around at every offset, processes over shared memory, and a SIGKILLed producer.
// Every byte of every record is checked (testdata.h).
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../futex.h"
#include "../region.h"
#include "../ring.h"
#include "../testdata.h"
#include "check.h"

using namespace ringpipe;

using check::failures;

struct OwnedRing {
  Region region;
  uint8_t* base() { return region.data; }
  OwnedRing(uint32_t capacity, uint32_t readers, uint32_t flags, uint32_t writers, bool shared = false) {
    region = shared ? create_shared_region(region_size(capacity, readers)) : create_private_region(region_size(capacity, readers));
    init_ring(region.data, capacity, readers, flags, writers, getpid());
  }
  ~OwnedRing() {
    unmap_region(region.data, region.size);
    if (!region.name.empty()) unlink_region(region.name);
  }
};

static bool peer_alive(uint8_t* base) {
  for (uint32_t i = 0; i < kMaxWriters; ++i) {
    uint32_t pid = at(base, kOffWriterPids + 4 * i).load();
    if (!pid) continue;
    if (kill(static_cast<pid_t>(pid), 0) != 0) return false;
    int status;  // a zombie is dead too
    if (waitpid(static_cast<pid_t>(pid), &status, WNOHANG) == static_cast<pid_t>(pid)) return false;
  }
  return true;
}

// Parks on a futex word until ready(); false if the ring is aborted or a writer died.
template <typename Ready>
static bool park_until(uint8_t* base, uint32_t seq_off, uint32_t waiting_off, Ready ready) {
  for (int spin = 0; spin < 1000; ++spin)
    if (ready()) return true;
  for (;;) {
    uint32_t seq = at(base, seq_off).load();
    at(base, waiting_off).fetch_add(1);
    bool ok = ready();
    if (!ok) futex_wait(reinterpret_cast<uint32_t*>(base + seq_off), seq, 50);
    at(base, waiting_off).fetch_sub(1);
    if (ok || ready()) return true;
    if (at(base, kOffState).load() == kStateAborted) return false;
    if (!peer_alive(base)) return false;
  }
}

static void wake(uint8_t* base, uint32_t off) { futex_wake(reinterpret_cast<uint32_t*>(base + off)); }

// Writes records [0, count) of `seed` (type = producer id + 1).
static bool produce(uint8_t* base, uint32_t producer, uint32_t count, uint32_t seed, uint32_t max_len, uint32_t align,
                    uint32_t publish_every = 64) {
  Writer w(base);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = testdata::length_of(i, seed, max_len);
    uint8_t* p = nullptr;
    if (!park_until(base, kOffSpaceSeq, kOffWritersWaiting, [&] {
          w.publish();
          if (w.take_wake()) wake(base, kOffDataSeq);
          return (p = w.try_claim(len, producer + 1, i, align)) != nullptr;
        }))
      return false;
    for (uint32_t k = 0; k < len; ++k) p[k] = testdata::byte_of(i, k, seed);
    w.commit();
    if (i % publish_every == publish_every - 1) {
      w.publish();
      if (w.take_wake()) wake(base, kOffDataSeq);
    }
  }
  w.publish();
  close_writer(base);
  wake(base, kOffDataSeq);
  return true;
}

struct ConsumeResult {
  std::vector<uint32_t> counts;  // per producer
  uint64_t bad = 0;
  bool aborted = false;
};

// Reads until closed; checks order per producer and every byte. `delay_every` slows the reader.
static ConsumeResult consume(uint8_t* base, uint32_t slot, uint32_t producers, uint32_t seed, uint32_t max_len,
                             uint32_t align, uint32_t delay_every = 0) {
  ConsumeResult res;
  res.counts.assign(producers, 0);
  Reader r(base, slot);
  uint64_t n = 0;
  for (;;) {
    RecordView rec{};
    Next got = Next::kEmpty;
    // Before parking, hand back released space: a writer may be waiting for exactly that.
    bool published = false;
    if (!park_until(base, kOffDataSeq, kOffReadersWaiting, [&] {
          if ((got = r.try_next(&rec)) != Next::kEmpty) return true;
          if (!published && r.publish()) wake(base, kOffSpaceSeq);
          published = true;
          return false;
        })) {
      res.aborted = true;
      return res;
    }
    if (got == Next::kAborted) { res.aborted = true; return res; }
    if (got == Next::kClosed) break;
    uint32_t producer = (rec.type_flags & 0xffff) - 1;
    bool ok = producer < producers && rec.seq == res.counts[producer] &&
              rec.length == testdata::length_of(rec.seq, seed, max_len);
    if (ok && align == 64) ok = (reinterpret_cast<uintptr_t>(rec.payload) & 63) == 0;
    for (uint32_t k = 0; ok && k < rec.length; ++k) ok = rec.payload[k] == testdata::byte_of(rec.seq, k, seed);
    if (!ok) ++res.bad;
    if (producer < producers) res.counts[producer] = rec.seq + 1;
    r.release();
    if (++n % 32 == 0 && r.publish()) wake(base, kOffSpaceSeq);
    if (delay_every && n % delay_every == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  if (r.publish()) wake(base, kOffSpaceSeq);
  return res;
}

static void test_layout() {
  CHECK(data_offset(1) % 64 == 0, "data offset aligned");
  CHECK(record_size(0) == 16 && record_size(1) == 32 && record_size(16) == 32 && record_size(17) == 48, "record sizes");
  // A 64-aligned claim at every 16-byte offset lands its payload on a 64-byte boundary.
  for (uint32_t off = 0; off < 4096; off += 16) {
    Placement p = place(off, 4096, 100, 64);
    uint32_t header = (off + p.wrap_pad + p.align_pad) & 4095;
    CHECK(((header + kRecordHeader) & 63) == 0, "payload aligned at offset %u", off);
    CHECK(header + record_size(100) <= 4096, "record fits before the end at offset %u", off);
  }
  CHECK(max_payload(4096) == 1920, "max payload");
}

static void test_spsc_threads() {
  OwnedRing ring(1 << 16, 1, 0, 1);
  const uint32_t count = 2'000'000, seed = 7, max_len = 200;
  ConsumeResult res;
  std::thread reader([&] { res = consume(ring.base(), 0, 1, seed, max_len, 16); });
  bool ok = produce(ring.base(), 0, count, seed, max_len, 16);
  reader.join();
  CHECK(ok && !res.aborted, "no abort");
  CHECK(res.counts[0] == count, "got %u of %u", res.counts[0], count);
  CHECK(res.bad == 0, "%lu bad records", (unsigned long)res.bad);
}

static void test_wrap_every_offset() {
  // Capacity 4096 with record sizes that walk through every 16-byte offset, both alignments.
  for (uint32_t align : {16u, 64u}) {
    OwnedRing ring(4096, 1, 0, 1);
    const uint32_t count = 200'000, seed = 11, max_len = 1900;
    ConsumeResult res;
    std::thread reader([&] { res = consume(ring.base(), 0, 1, seed, max_len, align); });
    produce(ring.base(), 0, count, seed, max_len, align, 1);
    reader.join();
    CHECK(res.counts[0] == count && res.bad == 0, "align %u: %u records, %lu bad", align, res.counts[0], (unsigned long)res.bad);
  }
}

static void test_multi_producer() {
  const uint32_t producers = 4, count = 300'000, seed = 3, max_len = 120;
  OwnedRing ring(1 << 15, 1, kFlagMultiProducer, producers);
  ConsumeResult res;
  std::thread reader([&] { res = consume(ring.base(), 0, producers, seed, max_len, 16); });
  std::vector<std::thread> ws;
  for (uint32_t p = 0; p < producers; ++p) ws.emplace_back([&, p] { produce(ring.base(), p, count, seed, max_len, 16); });
  for (auto& t : ws) t.join();
  reader.join();
  for (uint32_t p = 0; p < producers; ++p) CHECK(res.counts[p] == count, "producer %u: %u of %u", p, res.counts[p], count);
  CHECK(res.bad == 0, "%lu bad records", (unsigned long)res.bad);
}

static void test_broadcast_slow_reader() {
  const uint32_t readers = 3, count = 200'000, seed = 5, max_len = 300;
  OwnedRing ring(1 << 14, readers, 0, 1);
  std::vector<ConsumeResult> res(readers);
  std::vector<std::thread> rs;
  for (uint32_t r = 0; r < readers; ++r)
    rs.emplace_back([&, r] { res[r] = consume(ring.base(), r, 1, seed, max_len, 16, r == 0 ? 2000 : 0); });
  produce(ring.base(), 0, count, seed, max_len, 16);
  for (auto& t : rs) t.join();
  for (uint32_t r = 0; r < readers; ++r)
    CHECK(res[r].counts[0] == count && res[r].bad == 0, "reader %u: %u records, %lu bad", r, res[r].counts[0], (unsigned long)res[r].bad);
}

static void test_processes() {
  const uint32_t count = 1'000'000, seed = 9, max_len = 256;
  OwnedRing ring(1 << 16, 1, kFlagCrossProcess, 1, true);
  pid_t child = fork();
  if (child == 0) {
    Region r = open_shared_region(ring.region.name);
    register_writer_pid(r.data, getpid());
    _exit(produce(r.data, 0, count, seed, max_len, 64) ? 0 : 1);
  }
  ConsumeResult res = consume(ring.base(), 0, 1, seed, max_len, 64);
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer process exit");
  CHECK(res.counts[0] == count && res.bad == 0, "%u records, %lu bad", res.counts[0], (unsigned long)res.bad);
}

static void test_killed_producer() {
  // A producer that commits 10 records and then hangs; SIGKILLed, the reader must end with an
  // error after reading those 10, not wait forever.
  OwnedRing ring2(1 << 14, 1, kFlagCrossProcess, 1, true);
  pid_t hung = fork();
  if (hung == 0) {
    Region r = open_shared_region(ring2.region.name);
    register_writer_pid(r.data, getpid());
    Writer w(r.data);
    for (uint32_t i = 0; i < 10; ++i) {
      uint8_t* p = w.try_claim(8, 1, i);
      std::memset(p, 0, 8);
      w.commit();
    }
    w.publish();
    for (;;) pause();
  }
  int status;
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    kill(hung, SIGKILL);
  });
  Reader r(ring2.base(), 0);
  uint32_t got = 0;
  bool ended_with_error = false;
  for (;;) {
    RecordView rec{};
    Next n = Next::kEmpty;
    if (!park_until(ring2.base(), kOffDataSeq, kOffReadersWaiting, [&] { return (n = r.try_next(&rec)) != Next::kEmpty; })) {
      ended_with_error = true;
      break;
    }
    if (n != Next::kRecord) break;
    r.release();
    ++got;
  }
  killer.join();
  waitpid(hung, &status, 0);
  CHECK(ended_with_error, "reader noticed the dead writer");
  CHECK(got == 10, "read the 10 committed records first, got %u", got);
}

using check::run;

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  run("layout", test_layout);
  run("spsc threads, 2M random-size records", test_spsc_threads);
  run("wrap-around at every offset", test_wrap_every_offset);
  run("4 producers, 300k records each", test_multi_producer);
  run("broadcast, 3 readers, one slow", test_broadcast_slow_reader);
  run("processes over shm, 1M records", test_processes);
  run("SIGKILLed producer: reader ends with an error", test_killed_producer);
  return check::summary("native");
}
