// Separable resampling of an 8-bit image region to the output size, with an antialiasing filter:
// the filter is stretched by the reduction factor (as Pillow's and torchvision's antialias, and
// libvips' reduce do), so that a reduction averages every input pixel under the output pixel.
//
// Coordinates are continuous: pixel i covers [i, i + 1). A box [in0, in1) of the input maps onto
// the output [0, n) (centre convention, as Pillow and torchvision); taps stay inside the pixel
// range [lo, hi) the caller has (the crop's pixels), and the weights of a truncated kernel are
// renormalised, as a crop-then-resize would do. Weights are 16-bit fixed point (kBits), so results
// are exact integers: the SIMD passes (x86: SSE2, and SSSE3 where the CPU has it) and the plain
// C++ ones give the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringpipe::jpeg {

// The kernels of sharp's names that the fused path implements (the others go through sharp).
enum class Kernel : int { Linear = 0, Cubic = 1, Mitchell = 2, Lanczos2 = 3, Lanczos3 = 4 };
constexpr int kKernelCount = 5;

constexpr int kBits = 14;  // weights sum to 1 << kBits

// The taps of one axis: output i reads input [first[i], first[i] + count[i]) with weights
// w[i * taps ...], zero beyond count[i]. `taps` is even (the SIMD passes take taps in pairs).
// Vectors are kept between images (no allocation once grown).
struct Axis {
  std::vector<int32_t> first;
  std::vector<int32_t> count;
  std::vector<int16_t> w;
  std::vector<int32_t> rgb_pairs;  // w by pairs, as the SIMD horizontal pass multiplies RGB pixel pairs
  std::vector<double> scratch;
  int taps = 0;
  int max_count = 0;

  void plan(double in0, double in1, int lo, int hi, int n, Kernel kernel);
};

// Output row y of the vertical pass: `len` bytes from the input rows v.first[y]... (row r at
// rows + r * stride) into `out`.
void vertical_row(const uint8_t* rows, size_t stride, const Axis& v, int y, int len, uint8_t* out);

// The horizontal pass of one row into RGB (3 bytes per output pixel; grey is written to all
// three): `src` holds `channels` (1 or 3) bytes per pixel, its first pixel being input column
// `base`. `src` must be readable 64 bytes past the last pixel the taps reach.
void horizontal_row(const uint8_t* src, int channels, int base, const Axis& h, int n, uint8_t* rgb);

// The plain C++ passes, which machines without SIMD run: the SIMD ones must give the same bytes.
void vertical_row_cpp(const uint8_t* rows, size_t stride, const Axis& v, int y, int len, uint8_t* out);
void horizontal_row_cpp(const uint8_t* src, int channels, int base, const Axis& h, int n, uint8_t* rgb);

// Which passes run here ("ssse3", "sse2" or "c++"), for reports and tests.
const char* resample_isa();
// Runs the passes of a lower level ("sse2") or the best again ("best"), for tests;
// false when this machine lacks that level. Not thread-safe: call before decoding.
bool use_resample_isa(const char* name);

}  // namespace ringpipe::jpeg
