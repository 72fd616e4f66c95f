// jpegCropDecode(bytes, left, top, width, height, outWidth, outHeight, kernel, fastShrink, failOn,
//                maxPixels, out, chw, flip, lut, async)
//   -> { status, message, scale, x, y, width, height } (a Promise of it when `async`)
//
// The fused JPEG path in one call: crop decode + resample (crop_decoder.h), then the pixel pass of
// pixels.h (normalise through `lut` for a Float32Array, layout, flip) straight into `out`, e.g. a
// tensor in a ring. `async` runs it on libuv's pool (the calling thread stays free); otherwise it
// runs on the calling thread, the cheapest for a replica whose thread has nothing else to do.
// status: 0 ok, 1 not a JPEG this path handles (use sharp), 2 corrupt (message: libjpeg's), 3 the
// box does not fit the image.
#include <napi.h>

#include <memory>
#include <mutex>
#include <vector>

#include "../napi_args.h"
#include "../pixels.h"
#include "crop_decoder.h"

namespace ringpipe {

namespace {

constexpr const char* kFn = "jpegCropDecode";

// Decoders (a libjpeg object and buffers each) are leased per call and kept for the next: one per
// thread that decodes at a time, whatever thread that is (a replica's, or libuv's pool). Never
// freed: worker threads may still decode while the process exits.
class DecoderPool {
 public:
  std::unique_ptr<jpeg::CropDecoder> take() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        auto d = std::move(free_.back());
        free_.pop_back();
        return d;
      }
    }
    return std::make_unique<jpeg::CropDecoder>();
  }
  void give(std::unique_ptr<jpeg::CropDecoder> d) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(d));
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<jpeg::CropDecoder>> free_;
};
DecoderPool& Pool() {
  static auto* pool = new DecoderPool();
  return *pool;
}

struct Job {
  jpeg::CropRequest req;
  void* out = nullptr;
  bool out_float = false;
  bool chw = false;
  bool flip = false;
  const float* lut = nullptr;
  jpeg::CropResult res;

  void run() {
    auto decoder = Pool().take();
    struct Return {
      std::unique_ptr<jpeg::CropDecoder>& d;
      ~Return() { Pool().give(std::move(d)); }
    } give_back{decoder};
    res = decoder->decode(req);
    if (res.status != jpeg::Status::Ok) return;
    if (out_float) pixels::write_rgb_float(decoder->rgb(), req.out_width, req.out_height, static_cast<float*>(out), chw, flip, lut);
    else pixels::write_rgb_bytes(decoder->rgb(), req.out_width, req.out_height, static_cast<uint8_t*>(out), chw, flip);
  }
};

Napi::Object ResultOf(Napi::Env env, const jpeg::CropResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", Napi::Number::New(env, static_cast<int>(r.status)));
  o.Set("message", Napi::String::New(env, r.message));
  o.Set("scale", Napi::Number::New(env, r.scale_denom));
  o.Set("x", Napi::Number::New(env, r.x));
  o.Set("y", Napi::Number::New(env, r.y));
  o.Set("width", Napi::Number::New(env, r.width));
  o.Set("height", Napi::Number::New(env, r.height));
  return o;
}

class CropWorker : public Napi::AsyncWorker {
 public:
  CropWorker(Napi::Env env, Job job, Napi::Value bytes, Napi::Value out, Napi::Value lut)
      : Napi::AsyncWorker(env, "ringpipe:jpegCropDecode"), job_(job), deferred_(Napi::Promise::Deferred::New(env)) {
    // The arrays stay reachable (and their memory in place) until the job is done.
    keep_.push_back(Napi::Persistent(bytes.As<Napi::Object>()));
    keep_.push_back(Napi::Persistent(out.As<Napi::Object>()));
    if (lut.IsObject()) keep_.push_back(Napi::Persistent(lut.As<Napi::Object>()));
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      job_.run();
    } catch (const std::bad_alloc&) {
      SetError("jpegCropDecode: out of memory");
    }
  }
  void OnOK() override { deferred_.Resolve(ResultOf(Env(), job_.res)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Job job_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> keep_;
};

}  // namespace

Napi::Value JpegCropDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Job job;
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "jpegCropDecode: bytes must be a Uint8Array");
  auto bytes = info[0].As<Napi::Uint8Array>();
  job.req.data = bytes.Data();
  job.req.size = bytes.ElementLength();
  job.req.left = args::Dimension(info[1], kFn, "left");
  job.req.top = args::Dimension(info[2], kFn, "top");
  job.req.width = args::Dimension(info[3], kFn, "width", 1);
  job.req.height = args::Dimension(info[4], kFn, "height", 1);
  job.req.out_width = args::Dimension(info[5], kFn, "outWidth", 1);
  job.req.out_height = args::Dimension(info[6], kFn, "outHeight", 1);
  const uint32_t kernel = args::Dimension(info[7], kFn, "kernel");
  if (kernel >= jpeg::kKernelCount) throw Napi::RangeError::New(env, "jpegCropDecode: unknown kernel " + std::to_string(kernel));
  job.req.kernel = static_cast<jpeg::Kernel>(kernel);
  job.req.fast_shrink = info[8].ToBoolean();
  const uint32_t fail_on = args::Dimension(info[9], kFn, "failOn");
  if (fail_on > 2) throw Napi::RangeError::New(env, "jpegCropDecode: failOn must be 0, 1 or 2");
  job.req.fail_on = static_cast<jpeg::FailOn>(fail_on);
  const double max_pixels = info[10].IsNumber() ? info[10].As<Napi::Number>().DoubleValue() : -1;
  if (!(max_pixels >= 0 && max_pixels <= 9007199254740991.0)) throw Napi::RangeError::New(env, "jpegCropDecode: maxPixels must be a non-negative integer");
  job.req.max_pixels = static_cast<uint64_t>(max_pixels);
  const size_t n = args::RgbElements(env, job.req.out_width, job.req.out_height, kFn);
  job.chw = info[12].ToBoolean();
  job.flip = info[13].ToBoolean();
  if (info[11].IsTypedArray() && info[11].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    job.out = args::ElementsOf<float>(info[11], napi_float32_array, n, kFn, "out");
    job.out_float = true;
    job.lut = args::ElementsOf<float>(info[14], napi_float32_array, 768, kFn, "lut");
  } else {
    job.out = args::ElementsOf<uint8_t>(info[11], napi_uint8_array, n, kFn, "out");
  }
  if (info[15].ToBoolean()) {
    auto* worker = new CropWorker(env, job, info[0], info[11], info[14]);
    Napi::Promise p = worker->Promise();
    worker->Queue();
    return p;
  }
  try {
    job.run();
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "jpegCropDecode: out of memory");
  }
  return ResultOf(env, job.res);
}

}  // namespace ringpipe
