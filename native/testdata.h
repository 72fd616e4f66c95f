// Deterministic records for stress tests, mirrored by test/helpers/records.ts: record i of a run
// with `seed` has a length and bytes any side can recompute, so every byte is checked.
#pragma once

#include <cstdint>

namespace ringpipe::testdata {

inline uint32_t mix(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16;
  return x;
}
inline uint32_t length_of(uint32_t i, uint32_t seed, uint32_t max_len) { return mix(i * 2654435761u + seed) % (max_len + 1); }
inline uint8_t byte_of(uint32_t i, uint32_t k, uint32_t seed) { return static_cast<uint8_t>(mix(i + seed) + k * 131u); }

}  // namespace ringpipe::testdata
