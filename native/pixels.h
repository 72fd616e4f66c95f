// The one copy after sharp: 8-bit interleaved RGB into a tensor, normalised through per-channel
// lookup tables (float32) or copied (uint8), HWC or CHW, optionally mirrored left-right.
//
// Why native: the same loop in JS costs 0.25-0.4 ms per 224x224 image (bounds checks on every
// typed-array access), about a tenth of the CPU of decoding a 500x375 JPEG; here it is a few
// tens of microseconds. The values are the lookup tables' own, so JS and C++ agree bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ringpipe::pixels {

// map(c, v): the output value of 8-bit value v in channel c.
template <bool Chw, bool Flip, typename Out, typename Map>
inline void write_rgb(const uint8_t* src, uint32_t width, uint32_t height, Out* out, Map map) {
  const size_t plane = size_t(width) * height;
  for (uint32_t y = 0; y < height; ++y) {
    const uint8_t* row = src + size_t(y) * width * 3;
    const size_t first = size_t(y) * width;
    for (uint32_t x = 0; x < width; ++x) {
      const uint8_t* px = row + size_t(Flip ? width - 1 - x : x) * 3;
      if constexpr (Chw) {
        out[first + x] = map(0, px[0]);
        out[plane + first + x] = map(1, px[1]);
        out[2 * plane + first + x] = map(2, px[2]);
      } else {
        Out* o = out + (first + x) * 3;
        o[0] = map(0, px[0]);
        o[1] = map(1, px[1]);
        o[2] = map(2, px[2]);
      }
    }
  }
}

template <typename Out, typename Map>
inline void write_rgb(const uint8_t* src, uint32_t width, uint32_t height, Out* out, bool chw, bool flip, Map map) {
  if (chw) {
    flip ? write_rgb<true, true>(src, width, height, out, map) : write_rgb<true, false>(src, width, height, out, map);
  } else {
    flip ? write_rgb<false, true>(src, width, height, out, map) : write_rgb<false, false>(src, width, height, out, map);
  }
}

// lut: 3 x 256 floats, channel-major (see channelLuts in src/image/normalize.ts).
inline void write_rgb_float(const uint8_t* src, uint32_t width, uint32_t height, float* out, bool chw, bool flip, const float* lut) {
  write_rgb(src, width, height, out, chw, flip, [lut](int c, uint8_t v) { return lut[c * 256 + v]; });
}

inline void write_rgb_bytes(const uint8_t* src, uint32_t width, uint32_t height, uint8_t* out, bool chw, bool flip) {
  if (!chw && !flip) {
    const size_t n = size_t(width) * height * 3;
    if (n) std::memmove(out, src, n);  // the caller's views may overlap
    return;
  }
  write_rgb(src, width, height, out, chw, flip, [](int, uint8_t v) { return v; });
}

}  // namespace ringpipe::pixels
