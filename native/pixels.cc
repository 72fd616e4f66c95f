// writeRgbTensor(src, width, height, out, chw, flip, lut?): the binding of pixels.h.
#include <napi.h>

#include <string>

#include "pixels.h"

namespace ringpipe {

namespace {
template <typename T>
T* ElementsOf(const Napi::Value& v, napi_typedarray_type type, size_t need, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) throw Napi::TypeError::New(env, std::string("writeRgbTensor: ") + what + " has the wrong type");
  auto a = v.As<Napi::TypedArrayOf<T>>();
  if (a.ElementLength() < need) {
    throw Napi::RangeError::New(env, std::string("writeRgbTensor: ") + what + " holds " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(need));
  }
  return a.Data();
}
}  // namespace

Napi::Value WriteRgbTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t width = info[1].As<Napi::Number>().Uint32Value();
  const uint32_t height = info[2].As<Napi::Number>().Uint32Value();
  const size_t n = size_t(width) * height * 3;
  const uint8_t* src = ElementsOf<uint8_t>(info[0], napi_uint8_array, n, "src");
  const bool chw = info[4].ToBoolean();
  const bool flip = info[5].ToBoolean();
  if (info[3].IsTypedArray() && info[3].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    float* out = ElementsOf<float>(info[3], napi_float32_array, n, "out");
    const float* lut = ElementsOf<float>(info[6], napi_float32_array, 768, "lut");
    pixels::write_rgb_float(src, width, height, out, chw, flip, lut);
  } else {
    uint8_t* out = ElementsOf<uint8_t>(info[3], napi_uint8_array, n, "out");
    pixels::write_rgb_bytes(src, width, height, out, chw, flip);
  }
  return env.Undefined();
}

}  // namespace ringpipe
