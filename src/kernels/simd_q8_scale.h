// The scale of one BlockQ8x from its largest magnitude, shared by every
// target's quantize_activations_q8 so all of them produce identical bits:
// each computes max|x| (exact in any order), then this, then round(x * id)
// with round-half-to-even (nearbyint in the default mode = cvtps2dq).
// Anonymous namespace: one copy per target file (see simd_avx512_q8.h).
#pragma once

namespace memwall::kernels {
namespace {

// Below this, 1 / d would overflow to infinity; such a block is all zero to
// float precision anyway, so it quantizes as zero (d = 0, qs = 0, sum = 0).
constexpr float kQ8MinMax = 1e-30f;

inline void q8_block_scale(float amax, float& d, float& id) {
  if (!(amax >= kQ8MinMax)) {  // also catches NaN
    d = 0.0f;
    id = 0.0f;
    return;
  }
  d = amax / 127.0f;
  id = 1.0f / d;
}

// The same for BlockQ16x (activations.h): d = max|x| / 32512.
inline void q16_block_scale(float amax, float& d, float& id) {
  if (!(amax >= kQ8MinMax)) {
    d = 0.0f;
    id = 0.0f;
    return;
  }
  d = amax / 32512.0f;
  id = 1.0f / d;
}

}  // namespace
}  // namespace memwall::kernels
