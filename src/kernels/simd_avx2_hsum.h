// The horizontal sum of 8 floats, for the AVX2 tiles' last reduction (include
// only from files built for AVX2 or above).
#pragma once

#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace memwall::kernels
