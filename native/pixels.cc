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
// A dimension as an exact integer in [0, 2^31): anything else would wrap in the size arithmetic.
uint32_t Dimension(const Napi::Value& v, const char* what) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d < 2147483648.0) || d != static_cast<double>(static_cast<uint32_t>(d))) {
    throw Napi::RangeError::New(v.Env(), std::string("writeRgbTensor: ") + what + " must be an integer in [0, 2^31)");
  }
  return static_cast<uint32_t>(d);
}
}  // namespace

Napi::Value WriteRgbTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t width = Dimension(info[1], "width");
  const uint32_t height = Dimension(info[2], "height");
  size_t n = 0;
  if (__builtin_mul_overflow(size_t(width), size_t(height), &n) || __builtin_mul_overflow(n, size_t(3), &n)) {
    throw Napi::RangeError::New(env, "writeRgbTensor: width x height x 3 overflows");
  }
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
