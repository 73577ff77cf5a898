// AVX-512 GEMM tile for float weights (f32, f16, bf16) with f32 activations.
// Include only from files compiled for an AVX-512 target; anonymous namespace
// for the reason given in simd_avx512_q8.h.
//
// 16 columns at a time: each weight vector is converted once and multiplied
// into NT token accumulators (FMA), each activation vector is loaded once per
// MR rows. The column tail uses masked loads, which never touch memory past
// the row. The weight converter L gives:
//   static __m512 load(const uint8_t* row, int64_t c)              16 weights
//   static __m512 load_masked(const uint8_t* row, int64_t c, __mmask16 m)
// bf16 is converted exactly (a 16-bit shift), not with vdpbf16ps, which would
// also round the activations to bf16 and break the exactness the float paths
// promise (1e-5 of the scalar result).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

struct LoadF32 {
  static __m512 load(const uint8_t* row, int64_t c) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + c);
  }
  static __m512 load_masked(const uint8_t* row, int64_t c, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + c);
  }
};

struct LoadF16 {
  static __m512 load(const uint8_t* row, int64_t c) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * c)));
  }
  static __m512 load_masked(const uint8_t* row, int64_t c, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * c));
  }
};

struct LoadBf16 {
  static __m512 widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 load(const uint8_t* row, int64_t c) {
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * c)));
  }
  static __m512 load_masked(const uint8_t* row, int64_t c, __mmask16 m) {
    return widen(_mm256_maskz_loadu_epi16(m, row + 2 * c));
  }
};

template <class L, int MR, int NT, bool kMasked>
__attribute__((always_inline)) inline void float_step(const uint8_t* w, size_t ws, const uint8_t* x,
                                                      size_t xs, int64_t c, __mmask16 m,
                                                      __m512 (&acc)[MR][NT]) {
  __m512 xv[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) {
    const float* xt = reinterpret_cast<const float*>(x + t * xs) + c;
    xv[t] = kMasked ? _mm512_maskz_loadu_ps(m, xt) : _mm512_loadu_ps(xt);
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const __m512 wv = kMasked ? L::load_masked(w + r * ws, c, m) : L::load(w + r * ws, c);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
  }
}

template <class L, int MR, int NT>
void float_micro(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t n, float* y,
                 int64_t ldy) {
  __m512 acc[MR][NT];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) float_step<L, MR, NT, false>(w, ws, x, xs, c, 0xffff, acc);
  if (c < n) {
    const __mmask16 m = __mmask16((1u << (n - c)) - 1);
    float_step<L, MR, NT, true>(w, ws, x, xs, c, m, acc);
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

// Rows outer (a few weight rows stay in L1 while the tile's tokens reuse
// them); micro-tiles of up to 4 rows x 4 tokens, 8 rows for decode.
template <class L>
void float_tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T,
                int64_t n, float* y, int64_t ldy) {
  using Micro = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, float*, int64_t);
  static constexpr Micro kMicro[4][4] = {
      {float_micro<L, 1, 1>, float_micro<L, 1, 2>, float_micro<L, 1, 3>, float_micro<L, 1, 4>},
      {float_micro<L, 2, 1>, float_micro<L, 2, 2>, float_micro<L, 2, 3>, float_micro<L, 2, 4>},
      {float_micro<L, 3, 1>, float_micro<L, 3, 2>, float_micro<L, 3, 3>, float_micro<L, 3, 4>},
      {float_micro<L, 4, 1>, float_micro<L, 4, 2>, float_micro<L, 4, 3>, float_micro<L, 4, 4>},
  };
  int64_t r = 0;
  if (T == 1) {
    for (; r + 8 <= R; r += 8) float_micro<L, 8, 1>(w + r * ws, ws, x, xs, n, y + r, ldy);
  }
  for (; r < R; r += 4) {
    const int mr = R - r < 4 ? int(R - r) : 4;
    for (int64_t t = 0; t < T; t += 4) {
      const int nt = T - t < 4 ? int(T - t) : 4;
      kMicro[mr - 1][nt - 1](w + r * ws, ws, x + t * xs, xs, n, y + t * ldy + r, ldy);
    }
  }
}

}  // namespace
}  // namespace memwall::kernels
