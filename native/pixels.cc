// writeRgbTensor(src, width, height, out, chw, flip, lut?): the binding of pixels.h.
#include <napi.h>

#include "napi_args.h"
#include "pixels.h"

namespace ringpipe {

namespace {
constexpr const char* kFn = "writeRgbTensor";
}  // namespace

Napi::Value WriteRgbTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t width = args::Dimension(info[1], kFn, "width");
  const uint32_t height = args::Dimension(info[2], kFn, "height");
  const size_t n = args::RgbElements(env, width, height, kFn);
  const uint8_t* src = args::ElementsOf<uint8_t>(info[0], napi_uint8_array, n, kFn, "src");
  const bool chw = info[4].ToBoolean();
  const bool flip = info[5].ToBoolean();
  if (info[3].IsTypedArray() && info[3].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    float* out = args::ElementsOf<float>(info[3], napi_float32_array, n, kFn, "out");
    const float* lut = args::ElementsOf<float>(info[6], napi_float32_array, 768, kFn, "lut");
    pixels::write_rgb_float(src, width, height, out, chw, flip, lut);
  } else {
    uint8_t* out = args::ElementsOf<uint8_t>(info[3], napi_uint8_array, n, kFn, "out");
    pixels::write_rgb_bytes(src, width, height, out, chw, flip);
  }
  return env.Undefined();
}

}  // namespace ringpipe
