#include "resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#define RINGPIPE_X86 1
#endif

namespace ringpipe::jpeg {

namespace {

double kernel_support(Kernel k) {
  switch (k) {
    case Kernel::Linear: return 1.0;
    case Kernel::Lanczos3: return 3.0;
    default: return 2.0;
  }
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

// Mitchell-Netravali cubic with parameters (b, c): Catmull-Rom is (0, 0.5), Mitchell (1/3, 1/3).
double bc_cubic(double x, double b, double c) {
  x = std::fabs(x);
  if (x < 1.0) return ((12 - 9 * b - 6 * c) * x * x * x + (-18 + 12 * b + 6 * c) * x * x + (6 - 2 * b)) / 6;
  if (x < 2.0) return ((-b - 6 * c) * x * x * x + (6 * b + 30 * c) * x * x + (-12 * b - 48 * c) * x + (8 * b + 24 * c)) / 6;
  return 0.0;
}

double kernel_weight(Kernel k, double x) {
  switch (k) {
    case Kernel::Linear: x = std::fabs(x); return x < 1.0 ? 1.0 - x : 0.0;
    case Kernel::Cubic: return bc_cubic(x, 0.0, 0.5);
    case Kernel::Mitchell: return bc_cubic(x, 1.0 / 3, 1.0 / 3);
    case Kernel::Lanczos2: return std::fabs(x) < 2.0 ? sinc(x) * sinc(x / 2) : 0.0;
    case Kernel::Lanczos3: return std::fabs(x) < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
  }
  return 0.0;
}

constexpr int32_t kHalf = 1 << (kBits - 1);

inline uint8_t clamp_u8(int32_t acc) {
  acc >>= kBits;
  return static_cast<uint8_t>(acc < 0 ? 0 : acc > 255 ? 255 : acc);
}

// Plain C++: any machine, and the columns the SIMD loops leave.
void vertical_cpp(const uint8_t* rows, size_t stride, const Axis& v, int y, int from, int len, uint8_t* out) {
  const int16_t* w = &v.w[size_t(y) * v.taps];
  const uint8_t* src = rows + size_t(v.first[y]) * stride;
  const int n = v.count[y];
  for (int x = from; x < len; ++x) {
    int32_t acc = kHalf;
    for (int k = 0; k < n; ++k) acc += w[k] * src[size_t(k) * stride + x];
    out[x] = clamp_u8(acc);
  }
}

template <int Channels>
void horizontal_cpp(const uint8_t* src, int base, const Axis& h, int from, int n, uint8_t* rgb) {
  for (int x = from; x < n; ++x) {
    const int16_t* w = &h.w[size_t(x) * h.taps];
    const int cnt = h.count[x];
    const uint8_t* s = src + size_t(h.first[x] - base) * Channels;
    if constexpr (Channels == 3) {
      int32_t r = kHalf, g = kHalf, b = kHalf;
      for (int k = 0; k < cnt; ++k, s += 3) {
        r += w[k] * s[0];
        g += w[k] * s[1];
        b += w[k] * s[2];
      }
      rgb[3 * x] = clamp_u8(r);
      rgb[3 * x + 1] = clamp_u8(g);
      rgb[3 * x + 2] = clamp_u8(b);
    } else {
      int32_t v = kHalf;
      for (int k = 0; k < cnt; ++k) v += w[k] * s[k];
      rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = clamp_u8(v);
    }
  }
}

#ifdef RINGPIPE_X86
// Two weights as one 32-bit lane, for _mm_madd_epi16 over (row k, row k+1) pixel pairs.
inline int32_t weight_pair(const int16_t* w, int k) { return int32_t(uint16_t(w[k])) | (int32_t(w[k + 1]) << 16); }

// Vertical pass of columns [from, len), 16 at a time, taps in pairs (the pair's second row is the
// first again when the count is odd: its weight is 0).
void vertical_sse2(const uint8_t* rows, size_t stride, const Axis& v, int y, int from, int len, uint8_t* out) {
  const int16_t* w = &v.w[size_t(y) * v.taps];
  const uint8_t* src = rows + size_t(v.first[y]) * stride;
  const int n = v.count[y];
  const __m128i zero = _mm_setzero_si128(), half = _mm_set1_epi32(kHalf);
  int x = from;
  for (; x + 16 <= len; x += 16) {
    __m128i a0 = half, a1 = half, a2 = half, a3 = half;
    for (int k = 0; k < n; k += 2) {
      const __m128i wk = _mm_set1_epi32(weight_pair(w, k));
      const __m128i p = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + size_t(k) * stride + x));
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + size_t(k + 1 < n ? k + 1 : k) * stride + x));
      const __m128i plo = _mm_unpacklo_epi8(p, zero), phi = _mm_unpackhi_epi8(p, zero);
      const __m128i qlo = _mm_unpacklo_epi8(q, zero), qhi = _mm_unpackhi_epi8(q, zero);
      a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_unpacklo_epi16(plo, qlo), wk));
      a1 = _mm_add_epi32(a1, _mm_madd_epi16(_mm_unpackhi_epi16(plo, qlo), wk));
      a2 = _mm_add_epi32(a2, _mm_madd_epi16(_mm_unpacklo_epi16(phi, qhi), wk));
      a3 = _mm_add_epi32(a3, _mm_madd_epi16(_mm_unpackhi_epi16(phi, qhi), wk));
    }
    const __m128i lo = _mm_packs_epi32(_mm_srai_epi32(a0, kBits), _mm_srai_epi32(a1, kBits));
    const __m128i hi = _mm_packs_epi32(_mm_srai_epi32(a2, kBits), _mm_srai_epi32(a3, kBits));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + x), _mm_packus_epi16(lo, hi));
  }
  vertical_cpp(rows, stride, v, y, x, len, out);
}

// Horizontal pass of RGB, taps in pairs: the 8 bytes at pixel k (r0 g0 b0 r1 g1 b1 ..) are
// shuffled into (r0 r1 | g0 g1 | b0 b1 | 0 0) as 16-bit values and multiplied by (w0 w1) each.
// Every output pixel takes `Pairs` pairs (zero weights past its count), unrolled. The last output
// pixel goes through plain C++ (its 4-byte store would pass the row's end).
template <int Pairs>
__attribute__((target("ssse3"))) void horizontal3_ssse3(const uint8_t* src, int base, const Axis& h, int n, uint8_t* rgb) {
  const __m128i shuffle = _mm_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
  const __m128i half = _mm_set1_epi32(kHalf);
  const int last = n - 1;
  const int32_t* first = h.first.data();
  const __m128i* pairs = reinterpret_cast<const __m128i*>(h.rgb_pairs.data());
  const int per = h.taps / 2;
  for (int x = 0; x < last; ++x) {
    const __m128i* w = pairs + size_t(x) * per;
    const uint8_t* s = src + size_t(first[x] - base) * 3;
    __m128i acc = half;
    for (int k = 0; k < Pairs; ++k) {
      const __m128i px = _mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + 6 * k)), shuffle);
      acc = _mm_add_epi32(acc, _mm_madd_epi16(px, _mm_loadu_si128(w + k)));
    }
    const __m128i v = _mm_srai_epi32(acc, kBits);
    const __m128i v16 = _mm_packs_epi32(v, v);
    const __m128i bytes = _mm_packus_epi16(v16, v16);
    const int32_t word = _mm_cvtsi128_si32(bytes);
    std::memcpy(rgb + 3 * x, &word, 4);  // the 4th byte is the next pixel's, written after
  }
  horizontal_cpp<3>(src, base, h, last, n, rgb);
}

using Horizontal3Fn = void (*)(const uint8_t*, int, const Axis&, int, uint8_t*);
constexpr int kMaxPairs = 8;

// The unrolled pass for an axis whose outputs take at most `pairs` pairs of taps.
Horizontal3Fn horizontal3_for(int pairs) {
  static constexpr Horizontal3Fn by_pairs[kMaxPairs + 1] = {
      horizontal3_ssse3<1>, horizontal3_ssse3<1>, horizontal3_ssse3<2>, horizontal3_ssse3<3>, horizontal3_ssse3<4>,
      horizontal3_ssse3<5>, horizontal3_ssse3<6>, horizontal3_ssse3<7>, horizontal3_ssse3<8>};
  return pairs <= kMaxPairs ? by_pairs[pairs] : nullptr;
}

// SSE2 is every x86-64's; the horizontal pass wants SSSE3's pshufb. (An AVX2 vertical pass
// measured no faster here than SSE2's: 7 % fewer instructions, the same CPU time.)
struct Isa {
  bool ssse3;
  const char* name;
};

// The best this machine has, or the named level when it has that (tests, measurements).
Isa choose_isa(const std::string& want = "") {
  __builtin_cpu_init();
  const bool ssse3 = __builtin_cpu_supports("ssse3") && (want.empty() || want == "ssse3");
  return {ssse3, ssse3 ? "ssse3" : "sse2"};
}

Isa& isa() {
  static Isa chosen = choose_isa();
  return chosen;
}
#endif

}  // namespace

void Axis::plan(double in0, double in1, int lo, int hi, int n, Kernel kernel) {
  const double scale = (in1 - in0) / n;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kernel_support(kernel) * filter_scale;
  taps = (static_cast<int>(std::ceil(support)) * 2 + 2) & ~1;
  first.resize(n);
  count.resize(n);
  max_count = 0;
  w.assign(size_t(n) * taps, 0);
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
    int skip = 0;
    while (b - a - skip > 1 && scratch[skip] == 0.0) ++skip;
    a += skip;
    while (b - a > 1 && scratch[skip + (b - a) - 1] == 0.0) --b;
    if (total == 0.0) total = 1.0;
    first[i] = a;
    count[i] = b - a;
    max_count = std::max(max_count, b - a);
    int16_t* wi = &w[size_t(i) * taps];
    for (int x = 0; x < b - a; ++x) {
      // |weight| < 2 for these kernels, but a truncated kernel's renormalisation could exceed
      // the int16 range in theory: clamp.
      const long q = std::lround(scratch[skip + x] / total * (1 << kBits));
      wi[x] = static_cast<int16_t>(std::clamp<long>(q, -32768, 32767));
    }
  }
  // Each pair of taps as (w0 w1) x 3 then 0: the multiplier of one shuffled RGB pixel pair.
  rgb_pairs.resize(size_t(n) * taps * 2);
  for (size_t i = 0; i < size_t(n) * taps; i += 2) {
    const int32_t pair = int32_t(uint16_t(w[i])) | (int32_t(w[i + 1]) << 16);
    int32_t* p = &rgb_pairs[i * 2];
    p[0] = p[1] = p[2] = pair;
    p[3] = 0;
  }
}

void vertical_row(const uint8_t* rows, size_t stride, const Axis& v, int y, int len, uint8_t* out) {
#ifdef RINGPIPE_X86
  vertical_sse2(rows, stride, v, y, 0, len, out);
#else
  vertical_cpp(rows, stride, v, y, 0, len, out);
#endif
}

void horizontal_row(const uint8_t* src, int channels, int base, const Axis& h, int n, uint8_t* rgb) {
  if (channels == 1) return horizontal_cpp<1>(src, base, h, 0, n, rgb);
#ifdef RINGPIPE_X86
  if (isa().ssse3) {
    if (Horizontal3Fn fn = horizontal3_for((h.max_count + 1) / 2)) return fn(src, base, h, n, rgb);
  }
#endif
  horizontal_cpp<3>(src, base, h, 0, n, rgb);
}

void vertical_row_cpp(const uint8_t* rows, size_t stride, const Axis& v, int y, int len, uint8_t* out) { vertical_cpp(rows, stride, v, y, 0, len, out); }

void horizontal_row_cpp(const uint8_t* src, int channels, int base, const Axis& h, int n, uint8_t* rgb) {
  if (channels == 1) horizontal_cpp<1>(src, base, h, 0, n, rgb);
  else horizontal_cpp<3>(src, base, h, 0, n, rgb);
}

const char* resample_isa() {
#ifdef RINGPIPE_X86
  return isa().name;
#else
  return "c++";
#endif
}

bool use_resample_isa(const char* name) {
#ifdef RINGPIPE_X86
  if (std::string(name) == "best") {
    isa() = choose_isa();
    return true;
  }
  Isa want = choose_isa(name);
  if (want.name != std::string(name)) return false;
  isa() = want;
  return true;
#else
  return std::string(name) == "c++" || std::string(name) == "best";
#endif
}

}  // namespace ringpipe::jpeg
