// AVX-512 GEMM tiles for the k-quant and ternary formats with BlockQ8K /
// BlockQ16K activations (the integer form is in kquant_kernels.h). Include
// only from *_avx512.cpp / *_avx512vnni.cpp files; anonymous namespace so each
// target gets its own copy (see simd_avx512_q8.h).
//
// A super-block of one weight row is decoded once into four zmm of unsigned
// weights u in natural order (zmm k = weights 64k .. 64k + 63), four zmm of
// int16 group scales laid out as vpmaddubsw's int16 results (lane i of zmm k
// belongs to group 4k + i / 8), 16 int16 correction factors, d and dmin.
// Then, for each token of the micro-tile, per pass of 8-bit activations:
//   isum = sum_k madd(maddubs(u_k, x_k), sc_k)   (vpdpwssd on VNNI)
//   csum = madd(corr, bsums)
//   acc += float(isum) * d * d_x,  cacc += float(csum) * dmin * d_x
// Scales are applied in integers, so the float work is two FMAs per
// super-block and token; u <= 63 keeps the int16 pairs below 2 * 63 * 128.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/activations_k.h"
#include "kernels/gemm.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

struct KDecoded {
  __m512i u[4];
  __m512i sc[4];
  __m256i corr;
  float d, dmin;
};

inline float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

struct Words32 {
  uint16_t v[32];
};
struct Bytes64 {
  uint8_t v[64];
};
struct Dwords16 {
  uint32_t v[16];
};

// Lane i of zmm k belongs to group 4k + i / 8 (16 weights); `per_group`
// scales index g / per_group of the loaded table.
constexpr Words32 group_index(int k, int per_group, int first) {
  Words32 r{};
  for (int i = 0; i < 32; ++i) r.v[i] = uint16_t(first + (4 * k + i / 8) / per_group);
  return r;
}

inline __m512i load_words(const Words32& w) {
  return _mm512_loadu_si512(w.v);
}

// 6-bit scales and minimums of q4_K / q5_K (layout: kquant_search.h) as 16
// int16: sc0..7, m0..7.
inline __m256i unpack_scales_k4(const uint8_t* p) {
  uint32_t a, b, c;
  std::memcpy(&a, p, 4);
  std::memcpy(&b, p + 4, 4);
  std::memcpy(&c, p + 8, 4);
  const uint32_t sc_lo = a & 0x3f3f3f3f, m_lo = b & 0x3f3f3f3f;
  const uint32_t sc_hi = (c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030);
  const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0f) | ((b >> 2) & 0x30303030);
  return _mm256_cvtepu8_epi16(_mm_set_epi32(int(m_hi), int(m_lo), int(sc_hi), int(sc_lo)));
}

// q4_K {f16 d, f16 dmin, scales[12], qs[128]} and q5_K {..., qh[32], qs[128]}.
template <bool kFive>
struct FormatK4 {
  static constexpr int kBytes = kFive ? 176 : 144;
  static constexpr bool kUnit = false;
  static void decode(const uint8_t* b, KDecoded& o) {
    const uint8_t* qs = b + (kFive ? 48 : 16);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m512i z = _mm512_loadu_si512(qs + 64 * h);
      const __m512i lo = _mm512_and_si512(z, m4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
      o.u[2 * h] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));
      o.u[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2));
    }
    if constexpr (kFive) {
      // Fifth bits: lane l of zmm k takes bit 2k of qh[l], lane 32 + l bit 2k + 1.
      const __m512i qh =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16)));
      const __m512i c16 = _mm512_set1_epi8(16);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8(char(1 << (2 * k))),
                                               _mm256_set1_epi8(char(1 << (2 * k + 1))), 1);
        o.u[k] = _mm512_mask_add_epi8(o.u[k], _mm512_test_epi8_mask(qh, bit), o.u[k], c16);
      }
    }
    const __m512i scm = _mm512_castsi256_si512(unpack_scales_k4(b + 4));
    static constexpr Words32 kIdx[4] = {group_index(0, 2, 0), group_index(1, 2, 0),
                                        group_index(2, 2, 0), group_index(3, 2, 0)};
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) o.sc[k] = _mm512_permutexvar_epi16(load_words(kIdx[k]), scm);
    // corr[g] = m[g / 2]: the minimums are words 8..15.
    static constexpr Words32 kMinIdx = [] {
      Words32 r{};
      for (int g = 0; g < 32; ++g) r.v[g] = uint16_t(8 + (g % 16) / 2);
      return r;
    }();
    o.corr = _mm512_castsi512_si256(_mm512_permutexvar_epi16(load_words(kMinIdx), scm));
    o.d = load_f16(b);
    o.dmin = -load_f16(b + 2);
  }
};

// q6_K {ql[128], qh[64], int8 scales[16], f16 d}: u = q + 32.
struct FormatQ6K {
  static constexpr int kBytes = 210;
  static constexpr bool kUnit = false;
  static void decode(const uint8_t* b, KDecoded& o) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(3);
    // Per-half shifts of qh: zmm 2h takes bits 0-1 (lanes 0..31) and 2-3
    // (32..63), zmm 2h + 1 bits 4-5 and 6-7.
    const __m512i sh_a = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i sh_b = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(b + 64 * h);
      const __m512i qh = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h)));
      const __m512i ha = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_a), m2), 4);
      const __m512i hb = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_b), m2), 4);
      o.u[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), ha);
      o.u[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), hb);
    }
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)));
    const __m512i s = _mm512_castsi256_si512(sc16);
    static constexpr Words32 kIdx[4] = {group_index(0, 1, 0), group_index(1, 1, 0),
                                        group_index(2, 1, 0), group_index(3, 1, 0)};
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) o.sc[k] = _mm512_permutexvar_epi16(load_words(kIdx[k]), s);
    o.corr = sc16;
    o.d = load_f16(b + 208);
    o.dmin = -32.0f * o.d;
  }
};

inline void unit_scales(KDecoded& o, float d) {
  o.sc[0] = o.sc[1] = o.sc[2] = o.sc[3] = _mm512_set1_epi16(1);
  o.corr = _mm256_set1_epi16(1);
  o.d = d;
  o.dmin = -d;
}

// TQ2_0 {qs[64], f16 d}: zmm k takes bits 4(k%2) (lanes 0..31) and
// 4(k%2) + 2 (32..63) of bytes 32(k/2) .. 32(k/2) + 31.
struct FormatTQ2 {
  static constexpr int kBytes = 66;
  static constexpr bool kUnit = true;
  static void decode(const uint8_t* b, KDecoded& o) {
    const __m512i m2 = _mm512_set1_epi8(3);
    const __m512i sh0 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i sh1 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
#pragma GCC unroll 2
    for (int c = 0; c < 2; ++c) {
      const __m512i v =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32 * c)));
      o.u[2 * c] = _mm512_and_si512(_mm512_srlv_epi16(v, sh0), m2);
      o.u[2 * c + 1] = _mm512_and_si512(_mm512_srlv_epi16(v, sh1), m2);
    }
    unit_scales(o, load_f16(b + 64));
  }
};

// Byte i of TQ1_0's zmm k is multiplied by 3^e, e its trit index (FormatTQ1).
constexpr Bytes64 tq1_multipliers(int k) {
  Bytes64 m{};
  for (int i = 0; i < 64; ++i) {
    int e;
    if (k == 0)
      e = i / 32;
    else if (k == 1)
      e = 2 + i / 32;
    else if (k == 2)
      e = i < 32 ? 4 : (i - 32) / 16;
    else
      e = i < 48 ? 2 + i / 16 : (i - 48) / 4;
    int p = 1;
    for (int j = 0; j < e; ++j) p *= 3;
    m.v[i] = uint8_t(p);
  }
  return m;
}

// TQ1_0 {qs[48], qh[4], f16 d}. Trit k of byte q is the top of 3 * (q * 3^k
// mod 256), i.e. [p >= 86] + [p >= 171] for p = q * 3^k mod 256. Each zmm
// gathers its source bytes (dword permutes of the 52 bytes) and multiplies
// each byte by its power of 3 (kquant layout: format_tq1_0.cpp):
//   zmm 0: qs[0..31] x {1, 3}          zmm 1: qs[0..31] x {9, 27}
//   zmm 2: qs[0..31] x 81, qs[32..47] x {1, 3}
//   zmm 3: qs[32..47] x {9, 27, 81}, qh x {1, 3, 9, 27}
struct FormatTQ1 {
  static constexpr int kBytes = 54;
  static constexpr bool kUnit = true;
  static constexpr Dwords16 kSrc[4] = {
      {{0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7}},
      {{0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7}},
      {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 8, 9, 10, 11}},
      {{8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 12, 12, 12, 12}},
  };
  static constexpr Bytes64 kMul[4] = {tq1_multipliers(0), tq1_multipliers(1), tq1_multipliers(2),
                                      tq1_multipliers(3)};
  static void decode(const uint8_t* b, KDecoded& o) {
    const __m512i z = _mm512_maskz_loadu_epi32(0x1fff, b);  // 52 bytes = 13 dwords
    const __m512i hi_bytes = _mm512_set1_epi16(int16_t(0xff00));
    const __m512i one = _mm512_set1_epi8(1);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const __m512i s = _mm512_permutexvar_epi32(_mm512_loadu_si512(kSrc[k].v), z);
      const __m512i m = _mm512_loadu_si512(kMul[k].v);
      // Bytewise product mod 256 from two word products: even bytes from
      // s * m, odd bytes from (s & 0xff00) * (m >> 8).
      const __m512i even = _mm512_mullo_epi16(s, m);
      const __m512i odd =
          _mm512_mullo_epi16(_mm512_and_si512(s, hi_bytes), _mm512_srli_epi16(m, 8));
      const __m512i p = _mm512_mask_blend_epi8(0xAAAAAAAAAAAAAAAAull, even, odd);
      const __m512i t = _mm512_maskz_mov_epi8(_mm512_cmpge_epu8_mask(p, _mm512_set1_epi8(86)), one);
      o.u[k] =
          _mm512_mask_add_epi8(t, _mm512_cmpge_epu8_mask(p, _mm512_set1_epi8(char(171))), t, one);
    }
    unit_scales(o, load_f16(b + 52));
  }
};

// The unsigned x signed byte dots, with int16 group scales (kUnit: all 1).
struct DotMaddubs {
  static __m512i scaled(__m512i acc, __m512i u, __m512i x, __m512i sc) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, x), sc));
  }
  static __m512i unit(__m512i acc, __m512i u, __m512i x) {
    return _mm512_add_epi32(acc,
                            _mm512_madd_epi16(_mm512_maddubs_epi16(u, x), _mm512_set1_epi16(1)));
  }
};
#ifdef __AVX512VNNI__
struct DotVnni {
  static __m512i scaled(__m512i acc, __m512i u, __m512i x, __m512i sc) {
    return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(u, x), sc);
  }
  static __m512i unit(__m512i acc, __m512i u, __m512i x) { return _mm512_dpbusd_epi32(acc, u, x); }
};
#endif

// Activation passes: BlockQ8K is one 8-bit pass; BlockQ16K two (hi x 256, lo).
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

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Prefetches every cache line of [p, p + bytes) into all cache levels.
inline void prefetch_lines(const uint8_t* p, int bytes) {
#pragma GCC unroll 8
  for (int b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
  __builtin_prefetch(p + bytes - 1, 0, 3);
}

// MR weight rows x NT tokens over nb super-blocks (rows `ws` bytes apart).
// pf: where the next micro-tile's rows start (contiguous, MR rows), fetched
// in address order as this one proceeds, or null when the rows are cached:
// rows of ~1 KiB read side by side otherwise leave decode waiting on DRAM
// latency (measured 2 GB/s of 13 here), as simd_avx512_q8.h found too.
template <class F, class A, class Dot, int MR, int NT>
void micro(const uint8_t* w, size_t ws, const uint8_t* pf, const uint8_t* x, size_t xs, int64_t nb,
           float* y, int64_t ldy) {
  __m512 acc[MR][NT];
  __m256 cacc[MR][NT];
#pragma GCC unroll 2
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      acc[r][t] = _mm512_setzero_ps();
      cacc[r][t] = _mm256_setzero_ps();
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    if (pf != nullptr) prefetch_lines(pf + b * MR * F::kBytes, MR * F::kBytes);
    KDecoded dw[MR];
#pragma GCC unroll 2
    for (int r = 0; r < MR; ++r) F::decode(w + r * ws + b * F::kBytes, dw[r]);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const uint8_t* xb = x + t * xs + b * A::kBytes;
      float dx;
      std::memcpy(&dx, xb, 4);
#pragma GCC unroll 2
      for (int p = 0; p < A::kPasses; ++p) {
        const uint8_t* q = xb + A::kQs[p];
        __m512i xk[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) xk[k] = _mm512_loadu_si512(q + 64 * k);
        const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + A::kBsums[p]));
        const float s = dx * A::kScale[p];
#pragma GCC unroll 2
        for (int r = 0; r < MR; ++r) {
          __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) {
            isum = F::kUnit ? Dot::unit(isum, dw[r].u[k], xk[k])
                            : Dot::scaled(isum, dw[r].u[k], xk[k], dw[r].sc[k]);
          }
          const __m256i csum = _mm256_madd_epi16(dw[r].corr, bs);
          acc[r][t] =
              _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(dw[r].d * s), acc[r][t]);
          cacc[r][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(csum), _mm256_set1_ps(dw[r].dmin * s), cacc[r][t]);
        }
      }
    }
  }
#pragma GCC unroll 2
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]) + hsum256(cacc[r][t]);
    }
  }
}

// Rows outer: each row's super-blocks are decoded once per micro-tile and
// read as a sequential stream. Decode (T = 1) takes rows in pairs, so the
// core has two independent chains to overlap and each activation load serves
// two rows; prefill takes one row x up to 4 tokens (two rows x 4 tokens
// would not fit the 32 registers).
template <class F, class A, class Dot>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  using Micro = void (*)(const uint8_t*, size_t, const uint8_t*, const uint8_t*, size_t, int64_t,
                         float*, int64_t);
  static constexpr Micro kMicro[4] = {micro<F, A, Dot, 1, 1>, micro<F, A, Dot, 1, 2>,
                                      micro<F, A, Dot, 1, 3>, micro<F, A, Dot, 1, 4>};
  const int64_t nb = n / kQK;
  int64_t r = 0;
  if (T == 1) {
    prefetch_lines(w, int(std::min<size_t>(2 * ws, 4096)));
    for (; r + 2 <= R; r += 2) {
      micro<F, A, Dot, 2, 1>(w + r * ws, ws, w + (r + 2) * ws, x, xs, nb, y + r, ldy);
    }
  }
  for (; r < R; ++r) {
    // Prefill reuses each row for every token: the first pass brings it in.
    const uint8_t* pf = T == 1 ? w + (r + 1) * ws : nullptr;
    for (int64_t t = 0; t < T; t += 4) {
      const int nt = T - t < 4 ? int(T - t) : 4;
      kMicro[nt - 1](w + r * ws, ws, t == 0 ? pf : nullptr, x + t * xs, xs, nb, y + t * ldy + r,
                     ldy);
    }
  }
}

template <class F, class A, class Dot>
constexpr GemmKernel kquant_kernel(TensorType type, Isa isa) {
  constexpr ActivationKind act = A::kPasses == 1 ? ActivationKind::kQ8K : ActivationKind::kQ16K;
  return {type, isa, act, tile<F, A, Dot>};
}

}  // namespace
}  // namespace memwall::kernels
