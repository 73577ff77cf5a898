// w8a8 rows x per-token int8 activations (kQ8Row), AVX2. Equals the scalar
// tile bit for bit (w8a8_kernels.h).
//
// vpmaddubsw wants one unsigned operand and saturates int16, so the sign
// moves to the activations: |w| * (x negated where w < 0), each pair within
// 2 * 127 * 127 < 2^15 (|x| <= 127 by the quantizer's range, so negating
// cannot overflow; |w| = 128 would still be exact as an unsigned byte);
// vpmaddwd with ones then widens the pairs to int32.
//
// One ymm is 32 consecutive bytes of one row (or token); every (row, token)
// pair has its own int32 accumulator, 8 of them reduced to one vector at the
// end (hsum8), lane i = pair i:
//   decode (T = 1): 8 rows x 1 token, lane = row, rows ahead prefetched;
//   prefill: 4 rows x 2 tokens, lane = 4 * token + row.
#include <cstring>

#include "kernels/simd_kernels.h"
#include "kernels/simd_x86.h"
#include "kernels/w8a8_kernels.h"

namespace memwall::kernels {
namespace {

inline __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// The 8 int32 pair sums of 32 products w * x, exact.
inline __m256i dot32(__m256i abs_w, __m256i w, __m256i x) {
  const __m256i p16 = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// Lane i of the result: the sum of v[i]'s 8 int32 lanes (wrapping).
inline __m256i hsum8(const __m256i (&v)[8]) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  // a, b per 128-bit lane: partial sums of v[0..3], v[4..7].
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                          _mm256_permute2x128_si256(a, b, 0x31));
}

inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// Decode: rows [0, 8) of w against one token x; y[r] for r < 8. pf: 8 rows
// to prefetch, a share per step (into L2, two micro-tiles ahead: 1536 x 576,
// cold, one thread measured 8 GB/s without, 11 into L1 one ahead, 16 into L2
// one ahead, 23 two ahead; q8_0's AVX2 tile 17).
void rows8(const uint8_t* w, size_t ws, const uint8_t* pf, const uint8_t* x, int64_t n, float* y) {
  constexpr int kRows = 8;
  const uint8_t* qw = w + kW8A8Header;
  const uint8_t* qx = x + kW8A8Header;
  __m256i acc[kRows];
  for (__m256i& a : acc) a = _mm256_setzero_si256();
  const int64_t steps = n / 32;
  const size_t share = (kRows * ws + size_t(steps) * 64 - 1) / (size_t(steps) * 64) * 64;
  for (int64_t k = 0; k < n; k += 32) {
    const uint8_t* ahead = pf + size_t(k / 32) * share;
    for (size_t b = 0; b < share; b += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead + b), _MM_HINT_T1);
    }
    const __m256i xv = load32(qx + k);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m256i wv = load32(qw + size_t(r) * ws + k);
      acc[r] = _mm256_add_epi32(acc[r], dot32(_mm256_sign_epi8(wv, wv), wv, xv));
    }
  }
  alignas(32) float dw[kRows];
  for (int r = 0; r < kRows; ++r) dw[r] = load_f32(w + size_t(r) * ws);
  const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(hsum8(acc)), _mm256_load_ps(dw));
  _mm256_storeu_ps(y, _mm256_mul_ps(v, _mm256_set1_ps(load_f32(x))));
}

// Prefill: MR <= 4 rows x NT <= 2 tokens; y[t * ldy + r].
template <int MR, int NT>
void micro(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t n, float* y,
           int64_t ldy) {
  __m256i acc[8];  // acc[4 * t + r]
  for (__m256i& a : acc) a = _mm256_setzero_si256();
  for (int64_t k = 0; k < n; k += 32) {
    __m256i xv[NT];
#pragma GCC unroll 2
    for (int t = 0; t < NT; ++t) xv[t] = load32(x + size_t(t) * xs + kW8A8Header + k);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256i wv = load32(w + size_t(r) * ws + kW8A8Header + k);
      const __m256i aw = _mm256_sign_epi8(wv, wv);
#pragma GCC unroll 2
      for (int t = 0; t < NT; ++t) {
        acc[4 * t + r] = _mm256_add_epi32(acc[4 * t + r], dot32(aw, wv, xv[t]));
      }
    }
  }
  alignas(16) float dw[4] = {}, dx[2] = {};
  for (int r = 0; r < MR; ++r) dw[r] = load_f32(w + size_t(r) * ws);
  for (int t = 0; t < NT; ++t) dx[t] = load_f32(x + size_t(t) * xs);
  const __m256 dwv = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(dw));
  const __m256 dxv = _mm256_set_m128(_mm_set1_ps(dx[1]), _mm_set1_ps(dx[0]));
  alignas(32) float out[8];
  _mm256_store_ps(out, _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(hsum8(acc)), dwv), dxv));
  for (int t = 0; t < NT; ++t) {
    for (int r = 0; r < MR; ++r) y[t * ldy + r] = out[4 * t + r];
  }
}

using MicroFn = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, float*, int64_t);

void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  static constexpr MicroFn kMicro[4][2] = {
      {micro<1, 1>, micro<1, 2>},
      {micro<2, 1>, micro<2, 2>},
      {micro<3, 1>, micro<3, 2>},
      {micro<4, 1>, micro<4, 2>},
  };
  int64_t r = 0;
  if (T == 1) {
    for (; r + 8 <= R; r += 8) {
      const uint8_t* wr = w + size_t(r) * ws;
      rows8(wr, ws, wr + 16 * ws, x, n, y + r);
    }
  }
  for (; r < R; r += 4) {
    const int mr = R - r < 4 ? int(R - r) : 4;
    for (int64_t t = 0; t < T; t += 2) {
      const int nt = T - t < 2 ? int(T - t) : 2;
      kMicro[mr - 1][nt - 1](w + size_t(r) * ws, ws, x + size_t(t) * xs, xs, n, y + t * ldy + r,
                             ldy);
    }
  }
}

}  // namespace

const GemmKernel kGemmW8A8Avx2{TensorType::W8A8, Isa::kAvx2, ActivationKind::kQ8Row, tile};

}  // namespace memwall::kernels
