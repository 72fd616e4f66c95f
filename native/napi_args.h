// Checked arguments of the addon's pixel functions: typed arrays of the right type and length,
// and dimensions as exact integers (anything else would wrap in the size arithmetic).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace ringpipe::args {

template <typename T>
T* ElementsOf(const Napi::Value& v, napi_typedarray_type type, size_t need, const char* fn, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) throw Napi::TypeError::New(env, std::string(fn) + ": " + what + " has the wrong type");
  auto a = v.As<Napi::TypedArrayOf<T>>();
  if (a.ElementLength() < need) {
    throw Napi::RangeError::New(env, std::string(fn) + ": " + what + " holds " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(need));
  }
  return a.Data();
}

// An integer in [lo, 2^31).
inline uint32_t Dimension(const Napi::Value& v, const char* fn, const char* what, double lo = 0) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= lo && d < 2147483648.0) || d != static_cast<double>(static_cast<uint32_t>(d))) {
    throw Napi::RangeError::New(v.Env(), std::string(fn) + ": " + what + " must be an integer in [" + std::to_string(static_cast<int>(lo)) + ", 2^31)");
  }
  return static_cast<uint32_t>(d);
}

// width x height x 3, or a RangeError when it overflows.
inline size_t RgbElements(Napi::Env env, uint32_t width, uint32_t height, const char* fn) {
  size_t n = 0;
  if (__builtin_mul_overflow(size_t(width), size_t(height), &n) || __builtin_mul_overflow(n, size_t(3), &n)) {
    throw Napi::RangeError::New(env, std::string(fn) + ": width x height x 3 overflows");
  }
  return n;
}

}  // namespace ringpipe::args
