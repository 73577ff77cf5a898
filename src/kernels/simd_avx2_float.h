// AVX2 GEMM tile for float weights (f32, f16, bf16) with f32 activations:
// the ymm twin of simd_avx512_float.h (see there for the scheme). Include only
// from *_avx2.cpp files. Column tails load through a zero-padded copy (f16,
// bf16) or vmaskmovps (f32), never past the row.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd_avx2_hsum.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

// Lanes below `count` (< 8) all ones.
inline __m256i first_lanes8(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(count)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 8 16-bit values, the first `count` from p and the rest zero.
inline __m128i load_u16_tail(const uint8_t* p, int64_t count) {
  alignas(16) uint16_t tmp[8] = {};
  __builtin_memcpy(tmp, p, size_t(count) * 2);
  return _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
}

struct LoadF32 {
  static __m256 load(const uint8_t* row, int64_t c) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c);
  }
  static __m256 load_tail(const uint8_t* row, int64_t c, int64_t count) {
    return _mm256_maskload_ps(reinterpret_cast<const float*>(row) + c, first_lanes8(count));
  }
};

struct LoadF16 {
  static __m256 load(const uint8_t* row, int64_t c) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c)));
  }
  static __m256 load_tail(const uint8_t* row, int64_t c, int64_t count) {
    return _mm256_cvtph_ps(load_u16_tail(row + 2 * c, count));
  }
};

struct LoadBf16 {
  static __m256 widen(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static __m256 load(const uint8_t* row, int64_t c) {
    return widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c)));
  }
  static __m256 load_tail(const uint8_t* row, int64_t c, int64_t count) {
    return widen(load_u16_tail(row + 2 * c, count));
  }
};

template <class L, int MR, int NT, bool kTail>
__attribute__((always_inline)) inline void float_step(const uint8_t* w, size_t ws, const uint8_t* x,
                                                      size_t xs, int64_t c, int64_t count,
                                                      __m256 (&acc)[MR][NT]) {
  __m256 xv[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) {
    const float* xt = reinterpret_cast<const float*>(x + t * xs) + c;
    xv[t] = kTail ? _mm256_maskload_ps(xt, first_lanes8(count)) : _mm256_loadu_ps(xt);
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const __m256 wv = kTail ? L::load_tail(w + r * ws, c, count) : L::load(w + r * ws, c);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
  }
}

template <class L, int MR, int NT>
void float_micro(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t n, float* y,
                 int64_t ldy) {
  __m256 acc[MR][NT];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) float_step<L, MR, NT, false>(w, ws, x, xs, c, 8, acc);
  if (c < n) float_step<L, MR, NT, true>(w, ws, x, xs, c, n - c, acc);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum8(acc[r][t]);
  }
}

template <class L>
void float_tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T,
                int64_t n, float* y, int64_t ldy) {
  using Micro = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, float*, int64_t);
  static constexpr Micro kMicro[4][3] = {
      {float_micro<L, 1, 1>, float_micro<L, 1, 2>, float_micro<L, 1, 3>},
      {float_micro<L, 2, 1>, float_micro<L, 2, 2>, float_micro<L, 2, 3>},
      {float_micro<L, 3, 1>, float_micro<L, 3, 2>, float_micro<L, 3, 3>},
      {float_micro<L, 4, 1>, float_micro<L, 4, 2>, float_micro<L, 4, 3>},
  };
  // 16 ymm registers: 4 rows x 3 tokens of accumulators leave room for the
  // operands.
  for (int64_t r = 0; r < R; r += 4) {
    const int mr = R - r < 4 ? int(R - r) : 4;
    for (int64_t t = 0; t < T; t += 3) {
      const int nt = T - t < 3 ? int(T - t) : 3;
      kMicro[mr - 1][nt - 1](w + r * ws, ws, x + t * xs, xs, n, y + t * ldy + r, ldy);
    }
  }
}

}  // namespace
}  // namespace memwall::kernels
