// w8a8 rows x per-token int8 activations (kQ8Row), AVX-512 VNNI. Equals the
// scalar tile bit for bit (w8a8_kernels.h).
//
// vpdpbusd multiplies unsigned by signed bytes, so activations go in as
// x + 128 (x ^ 0x80 read as unsigned, once per token and 64 bytes) against
// the signed weights, and each row's header sum gives the offset back:
// isum = sum((x + 128) w) - 128 sum(w), subtracted once per row and token.
//
// One zmm is 64 consecutive bytes of one row (or token), so every (row,
// token) pair has its own int32 accumulator, and a micro-tile ends with 16
// of them reduced to one vector of 16 sums at once (hsum16): lane i holds
// pair i, whose scales are applied in the same vector and order as scalar.
//   decode (T = 1): 16 rows x 1 token, lane = row; while they are read, the
//     16 rows after the next 16 are prefetched into L2 in address order
//     (short rows side by side defeat the hardware prefetcher; see
//     simd_avx512_q8.h). Measured on 1536 x 576, cold weights, one thread:
//     10 GB/s without the prefetch, 13 into L1 one micro-tile ahead, 19-20
//     into L2 one ahead, 21.6-22 two ahead (q8_0's row tile: 17.2-17.6);
//     on 576 x 1536: 13, 13, 22-23, 22-23.
//   prefill: 4 rows x 4 tokens, lane = 4 * token + row, so the weights'
//     64-byte loads are shared by 4 tokens and the activations' by 4 rows.
// A row whose length is 32 mod 64 ends with one 32-byte step.
#include <cstring>

#include "kernels/simd_kernels.h"
#include "kernels/simd_x86.h"
#include "kernels/w8a8_kernels.h"

namespace memwall::kernels {
namespace {

// 64 bytes at p, or (kHalf) 32 bytes zero-extended.
template <bool kHalf>
inline __m512i load_q(const uint8_t* p) {
  if constexpr (kHalf) {
    return _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  } else {
    return _mm512_loadu_si512(p);
  }
}

// Lane i of the result: the sum of v[i]'s 16 int32 lanes (wrapping).
inline __m512i hsum16(const __m512i (&v)[16]) {
  __m512i a[8], b[4], c[2];
  // a[i], per 128-bit lane: partial sums of v[2i], v[2i+1], v[2i], v[2i+1].
  for (int i = 0; i < 8; ++i) {
    a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                            _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  }
  // b[j], per 128-bit lane: partial sums of v[4j] .. v[4j + 3].
  for (int j = 0; j < 4; ++j) {
    b[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * j], a[2 * j + 1]),
                            _mm512_unpackhi_epi64(a[2 * j], a[2 * j + 1]));
  }
  // c[k]: 128-bit lanes (b[2k] L0+L1, b[2k] L2+L3, b[2k+1] L0+L1, b[2k+1] L2+L3).
  for (int k = 0; k < 2; ++k) {
    c[k] = _mm512_add_epi32(_mm512_shuffle_i32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // 128-bit lane j: v[4j] .. v[4j + 3] complete.
  return _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Decode: rows [0, 16) of w against one token x; y[r] for r < 16. pf: 16
// rows to prefetch, a share per step (prefetches never fault).
void rows16(const uint8_t* w, size_t ws, const uint8_t* pf, const uint8_t* x, int64_t n, float* y) {
  constexpr int kRows = 16;
  const uint8_t* qw = w + kW8A8Header;
  const uint8_t* qx = x + kW8A8Header;
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  __m512i acc[kRows];
  for (__m512i& a : acc) a = _mm512_setzero_si512();
  const int64_t steps = (n + 63) / 64;
  // The prefetched rows' kRows * ws bytes, in shares of whole lines per step.
  const size_t share = (kRows * ws + size_t(steps) * 64 - 1) / (size_t(steps) * 64) * 64;
  const auto step = [&]<bool kHalf>(int64_t k, const uint8_t* ahead) {
    for (size_t b = 0; b < share; b += 64) __builtin_prefetch(ahead + b, 0, 2);
    const __m512i xv = _mm512_xor_si512(load_q<kHalf>(qx + k), flip);
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      acc[r] = _mm512_dpbusd_epi32(acc[r], xv, load_q<kHalf>(qw + size_t(r) * ws + k));
    }
  };
  int64_t k = 0;
  for (; k + 64 <= n; k += 64) step.template operator()<false>(k, pf + size_t(k / 64) * share);
  if (k < n) step.template operator()<true>(k, pf + size_t(k / 64) * share);

  alignas(64) int32_t sw[kRows];
  alignas(64) float dw[kRows];
  for (int r = 0; r < kRows; ++r) {
    dw[r] = load_f32(w + size_t(r) * ws);
    sw[r] = load_i32(w + size_t(r) * ws + 4);
  }
  const __m512i isum = _mm512_sub_epi32(hsum16(acc), _mm512_slli_epi32(_mm512_load_si512(sw), 7));
  const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_load_ps(dw));
  _mm512_storeu_ps(y, _mm512_mul_ps(v, _mm512_set1_ps(load_f32(x))));
}

// Prefill: MR <= 4 rows x NT <= 4 tokens; y[t * ldy + r].
template <int MR, int NT>
void micro(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t n, float* y,
           int64_t ldy) {
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  __m512i acc[16];  // acc[4 * t + r]
  for (__m512i& a : acc) a = _mm512_setzero_si512();
  const auto step = [&]<bool kHalf>(int64_t k) {
    __m512i wv[MR];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) wv[r] = load_q<kHalf>(w + size_t(r) * ws + kW8A8Header + k);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const __m512i xv =
          _mm512_xor_si512(load_q<kHalf>(x + size_t(t) * xs + kW8A8Header + k), flip);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) acc[4 * t + r] = _mm512_dpbusd_epi32(acc[4 * t + r], xv, wv[r]);
    }
  };
  int64_t k = 0;
  for (; k + 64 <= n; k += 64) step.template operator()<false>(k);
  if (k < n) step.template operator()<true>(k);

  alignas(16) int32_t sw[4] = {};
  alignas(16) float dw[4] = {}, dx[4] = {};
  for (int r = 0; r < MR; ++r) {
    dw[r] = load_f32(w + size_t(r) * ws);
    sw[r] = load_i32(w + size_t(r) * ws + 4);
  }
  for (int t = 0; t < NT; ++t) dx[t] = load_f32(x + size_t(t) * xs);
  const __m512i corr =
      _mm512_slli_epi32(_mm512_broadcast_i32x4(_mm_load_si128((const __m128i*)sw)), 7);
  const __m512 dwv = _mm512_broadcast_f32x4(_mm_load_ps(dw));
  const __m512 dxv =
      _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                            _mm512_castps128_ps512(_mm_load_ps(dx)));
  const __m512i isum = _mm512_sub_epi32(hsum16(acc), corr);
  alignas(64) float out[16];
  _mm512_store_ps(out, _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), dwv), dxv));
  for (int t = 0; t < NT; ++t) {
    for (int r = 0; r < MR; ++r) y[t * ldy + r] = out[4 * t + r];
  }
}

using MicroFn = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, float*, int64_t);

void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  static constexpr MicroFn kMicro[4][4] = {
      {micro<1, 1>, micro<1, 2>, micro<1, 3>, micro<1, 4>},
      {micro<2, 1>, micro<2, 2>, micro<2, 3>, micro<2, 4>},
      {micro<3, 1>, micro<3, 2>, micro<3, 3>, micro<3, 4>},
      {micro<4, 1>, micro<4, 2>, micro<4, 3>, micro<4, 4>},
  };
  int64_t r = 0;
  if (T == 1) {
    for (; r + 16 <= R; r += 16) {
      const uint8_t* wr = w + size_t(r) * ws;
      rows16(wr, ws, wr + 32 * ws, x, n, y + r);
    }
  }
  for (; r < R; r += 4) {
    const int mr = R - r < 4 ? int(R - r) : 4;
    for (int64_t t = 0; t < T; t += 4) {
      const int nt = T - t < 4 ? int(T - t) : 4;
      kMicro[mr - 1][nt - 1](w + size_t(r) * ws, ws, x + size_t(t) * xs, xs, n, y + t * ldy + r,
                             ldy);
    }
  }
}

}  // namespace

const GemmKernel kGemmW8A8Avx512Vnni{TensorType::W8A8, Isa::kAvx512Vnni, ActivationKind::kQ8Row,
                                     tile};

}  // namespace memwall::kernels
