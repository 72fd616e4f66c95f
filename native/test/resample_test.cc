// C++ tests of the fused JPEG path's resampler (native/jpeg/resample.h): the taps of every axis
// stay inside the crop's pixels with weights summing to one, a constant image stays constant, and
// the SIMD passes give the same bytes as the plain C++ ones, for every kernel, scale and offset.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "../jpeg/resample.h"
#include "check.h"

using namespace ringpipe;
using namespace ringpipe::jpeg;
using check::run;

namespace {

const Kernel kKernels[] = {Kernel::Linear, Kernel::Cubic, Kernel::Mitchell, Kernel::Lanczos2, Kernel::Lanczos3};

// Boxes [in0, in1) within pixels [lo, hi), to n outputs: reductions up to 7x, enlargements up to 4x.
struct Case {
  double in0, in1;
  int lo, hi, n;
};
std::vector<Case> cases() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Case> out;
  for (int i = 0; i < 400; ++i) {
    const int n = 1 + int(u(rng) * 300);
    const double scale = 0.25 + u(rng) * 7;
    const double in0 = u(rng) * 40;
    const double in1 = in0 + n * scale;
    out.push_back({in0, in1, int(in0), int(in1) + 1, n});
  }
  return out;
}

void test_taps() {
  Axis a;
  for (Kernel k : kKernels) {
    for (const Case& c : cases()) {
      a.plan(c.in0, c.in1, c.lo, c.hi, c.n, k);
      CHECK(a.taps % 2 == 0 && a.max_count <= a.taps, "taps %d, max count %d", a.taps, a.max_count);
      for (int i = 0; i < c.n; ++i) {
        CHECK(a.first[i] >= c.lo && a.first[i] + a.count[i] <= c.hi && a.count[i] >= 1, "output %d reads [%d, +%d) outside [%d, %d)", i, a.first[i], a.count[i], c.lo, c.hi);
        int sum = 0;
        for (int t = 0; t < a.taps; ++t) {
          sum += a.w[size_t(i) * a.taps + t];
          if (t >= a.count[i]) CHECK(a.w[size_t(i) * a.taps + t] == 0, "a weight past the count");
        }
        CHECK(sum > (1 << kBits) - a.taps && sum < (1 << kBits) + a.taps, "weights sum to %d", sum);
      }
    }
  }
}

void test_constant_stays_constant() {
  Axis v, h;
  const int w = 300, rows = 260;
  std::vector<uint8_t> img(size_t(w) * 3 * rows, 0);
  for (size_t i = 0; i < img.size(); i += 3) img[i] = 200, img[i + 1] = 17, img[i + 2] = 255;
  std::vector<uint8_t> vrow(size_t(w) * 3 + 64), rgb(size_t(224) * 3);
  for (Kernel k : kKernels) {
    v.plan(3.5, 250.25, 0, rows, 224, k);
    h.plan(1.25, 299.0, 0, w, 224, k);
    for (int y = 0; y < 224; y += 37) {
      vertical_row(img.data(), size_t(w) * 3, v, y, w * 3, vrow.data());
      horizontal_row(vrow.data(), 3, 0, h, 224, rgb.data());
      for (int x = 0; x < 224; ++x) CHECK(rgb[3 * x] == 200 && rgb[3 * x + 1] == 17 && rgb[3 * x + 2] == 255, "kernel %d, pixel %d: %d %d %d", int(k), x, rgb[3 * x], rgb[3 * x + 1], rgb[3 * x + 2]);
    }
  }
}

void test_simd_matches_cpp() {
  std::mt19937 rng(11);
  const std::vector<Case> all = cases();
  int widest = 0;
  for (const Case& c : all) widest = std::max(widest, c.hi);
  // Noise, the hardest case for rounding: every tap matters. One buffer, read as rows of any width.
  std::vector<uint8_t> noise(size_t(widest) * 3 * widest + 64);
  for (auto& b : noise) b = uint8_t(rng());
  Axis a;
  for (int channels : {3, 1}) {
    for (Kernel k : kKernels) {
      for (size_t i = 0; i < all.size(); i += 3) {
        const Case& c = all[i];
        a.plan(c.in0, c.in1, c.lo, c.hi, c.n, k);
        const int len = c.hi * channels;
        std::vector<uint8_t> a1(size_t(c.n) * 3), a2(size_t(c.n) * 3);
        horizontal_row(noise.data(), channels, 0, a, c.n, a1.data());
        horizontal_row_cpp(noise.data(), channels, 0, a, c.n, a2.data());
        CHECK(a1 == a2, "horizontal, %d channels, kernel %d, %d -> %d", channels, int(k), c.hi - c.lo, c.n);
        std::vector<uint8_t> v1(len), v2(len);
        for (int y = 0; y < c.n; y += 1 + c.n / 5) {
          vertical_row(noise.data(), size_t(len), a, y, len, v1.data());
          vertical_row_cpp(noise.data(), size_t(len), a, y, len, v2.data());
          CHECK(v1 == v2, "vertical row %d, kernel %d", y, int(k));
        }
      }
    }
  }
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  std::printf("resampler passes: %s\n", resample_isa());
  run("taps inside the crop, weights summing to one", test_taps);
  run("a constant image stays constant", test_constant_stays_constant);
  for (const char* level : {"ssse3", "sse2"}) {
    if (!use_resample_isa(level)) continue;
    std::printf("%s: ", level);
    run("SIMD passes give the plain C++ bytes", test_simd_matches_cpp);
  }
  use_resample_isa("best");
  return check::summary("resample");
}
