// Separable resampling of an 8-bit image region to the output size, with an antialiasing filter:
// the filter is stretched by the reduction factor (as Pillow's and torchvision's antialias, and
// libvips' reduce do), so that a reduction averages every input pixel under the output pixel.
//
// Coordinates are continuous: pixel i covers [i, i + 1). A box [in0, in1) of the input maps onto
// the output [0, n); taps stay inside the pixel range [lo, hi) the caller has (the crop's pixels),
// and the weights of a truncated kernel are renormalised, as a crop-then-resize would do.
// Weights are fixed point (kBits), so results are exact integers, the same on every run.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace ringpipe::jpeg {

// The kernels of sharp's names that the fused path implements (the others go through sharp).
enum class Kernel : int { Linear = 0, Cubic = 1, Mitchell = 2, Lanczos2 = 3, Lanczos3 = 4 };
constexpr int kKernelCount = 5;

constexpr int kBits = 14;  // weights sum to 1 << kBits

inline double kernel_support(Kernel k) {
  switch (k) {
    case Kernel::Linear: return 1.0;
    case Kernel::Lanczos3: return 3.0;
    default: return 2.0;
  }
}

inline double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

// Mitchell-Netravali cubic with parameters (b, c): Catmull-Rom is (0, 0.5), Mitchell (1/3, 1/3).
inline double bc_cubic(double x, double b, double c) {
  x = std::fabs(x);
  if (x < 1.0) return ((12 - 9 * b - 6 * c) * x * x * x + (-18 + 12 * b + 6 * c) * x * x + (6 - 2 * b)) / 6;
  if (x < 2.0) return ((-b - 6 * c) * x * x * x + (6 * b + 30 * c) * x * x + (-12 * b - 48 * c) * x + (8 * b + 24 * c)) / 6;
  return 0.0;
}

inline double kernel_weight(Kernel k, double x) {
  switch (k) {
    case Kernel::Linear: x = std::fabs(x); return x < 1.0 ? 1.0 - x : 0.0;
    case Kernel::Cubic: return bc_cubic(x, 0.0, 0.5);
    case Kernel::Mitchell: return bc_cubic(x, 1.0 / 3, 1.0 / 3);
    case Kernel::Lanczos2: return std::fabs(x) < 2.0 ? sinc(x) * sinc(x / 2) : 0.0;
    case Kernel::Lanczos3: return std::fabs(x) < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
  }
  return 0.0;
}

// The taps of one axis: output i reads input [first[i], first[i] + count[i]) with weights
// weights[i * taps ...]. Vectors are kept between images (no allocation once grown).
struct Axis {
  std::vector<int32_t> first;
  std::vector<int32_t> count;
  std::vector<int32_t> weights;
  std::vector<double> scratch;
  int taps = 0;

  void plan(double in0, double in1, int lo, int hi, int n, Kernel kernel) {
    const double scale = (in1 - in0) / n;
    const double filter_scale = std::max(scale, 1.0);
    const double support = kernel_support(kernel) * filter_scale;
    taps = static_cast<int>(std::ceil(support)) * 2 + 1;
    first.resize(n);
    count.resize(n);
    weights.assign(size_t(n) * taps, 0);
    scratch.resize(taps);
    for (int i = 0; i < n; ++i) {
      const double center = in0 + (i + 0.5) * scale;
      int a = std::max(lo, static_cast<int>(std::floor(center - support + 0.5)));
      int b = std::min(hi, static_cast<int>(std::floor(center + support + 0.5)));
      if (b <= a) {  // only possible at the very edge: take the nearest pixel
        a = std::clamp(static_cast<int>(std::floor(center)), lo, hi - 1);
        b = a + 1;
      }
      double total = 0;
      for (int x = a; x < b; ++x) total += scratch[x - a] = kernel_weight(kernel, (x + 0.5 - center) / filter_scale);
      // Drop zero weights at both ends (a triangle is 0 at its support's edge): fewer taps.
      while (b - a > 1 && scratch[0] == 0.0) {
        std::copy(scratch.begin() + 1, scratch.begin() + (b - a), scratch.begin());
        ++a;
      }
      while (b - a > 1 && scratch[b - a - 1] == 0.0) --b;
      if (total == 0.0) total = 1.0;
      first[i] = a;
      count[i] = b - a;
      int32_t* w = &weights[size_t(i) * taps];
      for (int x = 0; x < b - a; ++x) w[x] = static_cast<int32_t>(std::lround(scratch[x] / total * (1 << kBits)));
    }
  }
};

inline uint8_t clamp_u8(int32_t acc) {
  acc >>= kBits;
  return static_cast<uint8_t>(acc < 0 ? 0 : acc > 255 ? 255 : acc);
}

// One output row of the vertical pass: `rows` are the input rows (row r at rows + r * stride),
// `base` the input row index of rows[0]; `len` bytes per row.
inline void vertical_row(const uint8_t* rows, size_t stride, int base, const Axis& v, int y, int len, int32_t* acc, uint8_t* out) {
  const int32_t* w = &v.weights[size_t(y) * v.taps];
  const int n = v.count[y];
  const uint8_t* src = rows + size_t(v.first[y] - base) * stride;
  const int32_t half = 1 << (kBits - 1);
  for (int x = 0; x < len; ++x) acc[x] = half;
  for (int k = 0; k < n; ++k) {
    const int32_t wk = w[k];
    const uint8_t* s = src + size_t(k) * stride;
    for (int x = 0; x < len; ++x) acc[x] += wk * s[x];
  }
  for (int x = 0; x < len; ++x) out[x] = clamp_u8(acc[x]);
}

// One output row of the horizontal pass into RGB: `src` holds `channels` (1 or 3) bytes per pixel,
// its first pixel being input column `base`. Grey is written to all three channels.
template <int Channels>
inline void horizontal_row(const uint8_t* src, int base, const Axis& h, int n, uint8_t* rgb) {
  const int32_t half = 1 << (kBits - 1);
  for (int x = 0; x < n; ++x) {
    const int32_t* w = &h.weights[size_t(x) * h.taps];
    const int cnt = h.count[x];
    const uint8_t* s = src + size_t(h.first[x] - base) * Channels;
    if constexpr (Channels == 3) {
      int32_t r = half, g = half, b = half;
      for (int k = 0; k < cnt; ++k, s += 3) {
        r += w[k] * s[0];
        g += w[k] * s[1];
        b += w[k] * s[2];
      }
      rgb[3 * x] = clamp_u8(r);
      rgb[3 * x + 1] = clamp_u8(g);
      rgb[3 * x + 2] = clamp_u8(b);
    } else {
      int32_t v = half;
      for (int k = 0; k < cnt; ++k) v += w[k] * s[k];
      rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = clamp_u8(v);
    }
  }
}

}  // namespace ringpipe::jpeg
