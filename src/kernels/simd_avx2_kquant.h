// AVX2 GEMM tiles for the k-quant and ternary formats: the ymm twin of
// simd_avx512_kquant.h (same integer form, kquant_kernels.h). A super-block
// decodes into eight ymm of unsigned weights in natural order (ymm k =
// weights 32k .. 32k + 31) and eight ymm of int16 scales (lane i of ymm k
// belongs to group 2k + i / 8). Include only from *_avx2.cpp files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/activations_k.h"
#include "kernels/gemm.h"
#include "kernels/simd_avx2_hsum.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

struct KDecoded {
  __m256i u[8];
  __m256i sc[8];
  __m256i corr;
  float d, dmin;
};

inline float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// q4_K / q5_K: ymm k is sub-block k, one scale for all of it.
template <bool kFive>
struct FormatK4 {
  static constexpr int kBytes = kFive ? 176 : 144;
  static constexpr bool kUnit = false;
  static void decode(const uint8_t* b, KDecoded& o) {
    const uint8_t* qs = b + (kFive ? 48 : 16);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i qh = kFive ? load256(b + 16) : _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i v = load256(qs + 32 * c);
      o.u[2 * c] = _mm256_and_si256(v, m4);
      o.u[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      if constexpr (kFive) {
        // Bit 2c of qh[l] is the fifth bit of weight 64c + l, bit 2c + 1 of 64c + 32 + l.
        const __m256i one = _mm256_set1_epi8(1);
        const __m256i h0 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c)), one);
        const __m256i h1 =
            _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c + 1)), one);
        o.u[2 * c] = _mm256_or_si256(o.u[2 * c], _mm256_slli_epi16(h0, 4));
        o.u[2 * c + 1] = _mm256_or_si256(o.u[2 * c + 1], _mm256_slli_epi16(h1, 4));
      }
    }
    uint32_t a, bb, c;
    std::memcpy(&a, b + 4, 4);
    std::memcpy(&bb, b + 8, 4);
    std::memcpy(&c, b + 12, 4);
    uint8_t sm[16];  // sc0..7, m0..7 (layout: kquant_search.h)
    const uint32_t words[4] = {a & 0x3f3f3f3f, (c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030),
                               bb & 0x3f3f3f3f, ((c >> 4) & 0x0f0f0f0f) | ((bb >> 2) & 0x30303030)};
    std::memcpy(sm, words, 16);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) o.sc[k] = _mm256_set1_epi16(sm[k]);
    const __m128i m8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sm + 8));
    o.corr = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));  // corr[g] = m[g / 2]
    o.d = load_f16(b);
    o.dmin = -load_f16(b + 2);
  }
};

// q6_K {ql[128], qh[64], int8 scales[16], f16 d}: u = q + 32.
struct FormatQ6K {
  static constexpr int kBytes = 210;
  static constexpr bool kUnit = false;
  static void decode(const uint8_t* b, KDecoded& o) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = load256(b + 64 * h), l1 = load256(b + 64 * h + 32);
      const __m256i qh = load256(b + 128 + 32 * h);
      const auto high = [&](int shift) {
        return _mm256_slli_epi16(
            _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(shift)), m2), 4);
      };
      o.u[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), high(0));
      o.u[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), high(2));
      o.u[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), high(4));
      o.u[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), high(6));
    }
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      o.sc[k] = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
    }
    o.corr = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    o.d = load_f16(b + 208);
    o.dmin = -32.0f * o.d;
  }
};

inline void unit_scales(KDecoded& o, float d) {
  for (int k = 0; k < 8; ++k) o.sc[k] = _mm256_set1_epi16(1);
  o.corr = _mm256_set1_epi16(1);
  o.d = d;
  o.dmin = -d;
}

// TQ2_0 {qs[64], f16 d}: ymm 4c + k = bits 2k of bytes 32c .. 32c + 31.
struct FormatTQ2 {
  static constexpr int kBytes = 66;
  static constexpr bool kUnit = true;
  static void decode(const uint8_t* b, KDecoded& o) {
    const __m256i m2 = _mm256_set1_epi8(3);
#pragma GCC unroll 2
    for (int c = 0; c < 2; ++c) {
      const __m256i v = load256(b + 32 * c);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        o.u[4 * c + k] = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(2 * k)), m2);
      }
    }
    unit_scales(o, load_f16(b + 64));
  }
};

// Bytewise x 3 mod 256, and the trit [p >= 86] + [p >= 171] (format_tq1_0.cpp).
inline __m256i times3(__m256i p) {
  return _mm256_add_epi8(_mm256_add_epi8(p, p), p);
}
inline __m128i times3(__m128i p) {
  return _mm_add_epi8(_mm_add_epi8(p, p), p);
}
inline __m256i trit(__m256i p) {
  const __m256i ge1 = _mm256_cmpeq_epi8(_mm256_max_epu8(p, _mm256_set1_epi8(86)), p);
  const __m256i ge2 = _mm256_cmpeq_epi8(_mm256_max_epu8(p, _mm256_set1_epi8(char(171))), p);
  return _mm256_sub_epi8(_mm256_setzero_si256(), _mm256_add_epi8(ge1, ge2));
}

// TQ1_0 {qs[48], qh[4], f16 d}: ymm k < 5 = trit k of qs[0..31]; ymm 5..7 =
// trits 0..4 of qs[32..47] (16 bytes each), then the 4 trits of qh[0..3].
struct FormatTQ1 {
  static constexpr int kBytes = 54;
  static constexpr bool kUnit = true;
  static void decode(const uint8_t* b, KDecoded& o) {
    __m256i p = load256(b);
#pragma GCC unroll 5
    for (int k = 0; k < 5; ++k) {
      o.u[k] = trit(p);
      p = times3(p);
    }
    __m128i q[5];
    q[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32));
    for (int k = 1; k < 5; ++k) q[k] = times3(q[k - 1]);
    int32_t h;
    std::memcpy(&h, b + 48, 4);
    const __m128i h1 = _mm_set1_epi32(h), h3 = times3(h1), h9 = times3(h3), h27 = times3(h9);
    const __m128i hq =
        _mm_blend_epi32(_mm_blend_epi32(h1, h3, 0x2), _mm_blend_epi32(h9, h27, 0x8), 0xC);
    o.u[5] = trit(_mm256_set_m128i(q[1], q[0]));
    o.u[6] = trit(_mm256_set_m128i(q[3], q[2]));
    o.u[7] = trit(_mm256_set_m128i(hq, q[4]));
    unit_scales(o, load_f16(b + 52));
  }
};

struct ActQ8K {
  static constexpr size_t kBytes = sizeof(BlockQ8K);
  static constexpr int kPasses = 1;
  static constexpr size_t kQs[1] = {offsetof(BlockQ8K, qs)};
  static constexpr size_t kBsums[1] = {offsetof(BlockQ8K, bsums)};
  static constexpr float kScale[1] = {1.0f};
};
struct ActQ16K {
  static constexpr size_t kBytes = sizeof(BlockQ16K);
  static constexpr int kPasses = 2;
  static constexpr size_t kQs[2] = {offsetof(BlockQ16K, hi), offsetof(BlockQ16K, lo)};
  static constexpr size_t kBsums[2] = {offsetof(BlockQ16K, bsums_hi),
                                       offsetof(BlockQ16K, bsums_lo)};
  static constexpr float kScale[2] = {256.0f, 1.0f};
};

// pf: the next row to read, fetched as this one proceeds (as in
// simd_avx512_kquant.h), or null.
template <class F, class A, int NT>
void micro(const uint8_t* w, const uint8_t* pf, const uint8_t* x, size_t xs, int64_t nb, float* y,
           int64_t ldy) {
  __m256 acc[NT], cacc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = cacc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    if (pf != nullptr) {
      const uint8_t* p = pf + b * F::kBytes;
      for (int i = 0; i < F::kBytes; i += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + F::kBytes - 1), _MM_HINT_T0);
    }
    KDecoded dw;
    F::decode(w + b * F::kBytes, dw);
#pragma GCC unroll 2
    for (int t = 0; t < NT; ++t) {
      const uint8_t* xb = x + t * xs + b * A::kBytes;
      float dx;
      std::memcpy(&dx, xb, 4);
#pragma GCC unroll 2
      for (int p = 0; p < A::kPasses; ++p) {
        const uint8_t* q = xb + A::kQs[p];
        __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          const __m256i prod = _mm256_maddubs_epi16(dw.u[k], load256(q + 32 * k));
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(prod, dw.sc[k]));
        }
        const __m256i csum = _mm256_madd_epi16(dw.corr, load256(xb + A::kBsums[p]));
        const float s = dx * A::kScale[p];
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(dw.d * s), acc[t]);
        cacc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(csum), _mm256_set1_ps(dw.dmin * s), cacc[t]);
      }
    }
  }
  for (int t = 0; t < NT; ++t) y[t * ldy] = hsum8(_mm256_add_ps(acc[t], cacc[t]));
}

template <class F, class A>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  const int64_t nb = n / kQK;
  for (int64_t r = 0; r < R; ++r) {
    const uint8_t* pf = T == 1 ? w + (r + 1) * ws : nullptr;
    int64_t t = 0;
    for (; t + 2 <= T; t += 2) {
      micro<F, A, 2>(w + r * ws, nullptr, x + t * xs, xs, nb, y + t * ldy + r, ldy);
    }
    if (t < T) micro<F, A, 1>(w + r * ws, pf, x + t * xs, xs, nb, y + t * ldy + r, ldy);
  }
}

template <class F, class A>
constexpr GemmKernel kquant_kernel(TensorType type) {
  constexpr ActivationKind act = A::kPasses == 1 ? ActivationKind::kQ8K : ActivationKind::kQ16K;
  return {type, Isa::kAvx2, act, tile<F, A>};
}

}  // namespace
}  // namespace memwall::kernels
