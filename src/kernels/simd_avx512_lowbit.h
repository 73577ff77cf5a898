// AVX-512 VNNI GEMM tiles for nf4, nf4_dq, q2_g64 and q3_g64 with BlockQ8x /
// BlockQ16x activations (integer form: lowbit_kernels.h). Include only from
// *_avx512vnni.cpp files; anonymous namespace so each target gets its own copy
// (see simd_avx512_q8.h).
//
// One zmm holds a whole 64-weight block as unsigned bytes u (weight i in byte
// i), and one zmm the block's 64 activations (two BlockQ8x halves), so a
// block's dot is one vpdpbusd (two for q2/q3 with 16-bit activations). Int32
// lanes 0..7 belong to the first activation block and 8..15 to the second,
// so the result is scaled by a * [d_x0 x 8, d_x1 x 8]; q2/q3's m * sum
// terms are one FMA per 16 blocks (their d and m read 16 blocks at a time).
// Codes: q2/q3 as they are (u = q <= 7); NF4 with 8-bit activations through
// a 16-byte vpshufb table of its int8 codes + 128 (vpdpbusd wants unsigned
// bytes), the offset undone by starting the integer dot at -128 * sum(x).
//
// NF4 with 16-bit activations takes int16 codes (kNf4Codes16) and int16
// activations through vpdpwssd: two vpshufb tables give each code's low and
// high byte, and vpunpck{l,h}bw interleaves them into words; the
// activations' halves interleave the same way (lo as the low byte, hi less
// lo's sign bit as the high one, so the word is 256 * hi + lo), so both
// sides agree on which 32 words each zmm holds and lanes 0..7 still belong to
// the first activation block.
//
// Scales are f16 broadcasts converted in-vector; constant factors (NF4's
// 1 / K) ride on the activation scales, computed once per token and block.
// Micro-tiles: decode takes kDecodeRows rows x 1 token (each activation block
// is loaded once for all of them), prefill 2 rows x up to 4 tokens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/lowbit_kernels.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

inline __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// The f16 at p in every lane.
inline __m512 broadcast_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _mm512_cvtph_ps(_mm256_set1_epi16(short(h)));
}

struct Table16 {
  uint8_t v[16];
};

inline __m512i broadcast_table(const Table16& t) {
  return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.v)));
}

// nf4 / nf4_dq: 32 index bytes -> 64 indices in weight order (the bytes in
// both halves, the upper half shifted to its high nibbles).
inline __m512i nf4_indices(const uint8_t* qs) {
  const __m512i z = _mm512_broadcast_i64x4(load32(qs));
  return _mm512_and_si512(_mm512_srlv_epi64(z, _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0)),
                          _mm512_set1_epi8(0x0f));
}

// Where nf4 and nf4_dq keep block k's indices and its scale over kFold.
struct Nf4Layout {
  static constexpr float kFold = 1.0f;
  static const uint8_t* qs(const uint8_t* row, int64_t k) { return row + 34 * k + 2; }
  static __m512 scale(const uint8_t* row, int64_t k) { return broadcast_f16(row + 34 * k); }
};
// d_k = D * s_k / 255.
struct Nf4DqLayout {
  static constexpr float kFold = 1.0f / 255.0f;
  static const uint8_t* qs(const uint8_t* row, int64_t k) {
    return row + 134 * (k / 4) + 6 + 32 * (k % 4);
  }
  static __m512 scale(const uint8_t* row, int64_t k) {
    const uint8_t* sb = row + 134 * (k / 4);
    return _mm512_mul_ps(broadcast_f16(sb), _mm512_cvtepi32_ps(_mm512_set1_epi32(sb[2 + k % 4])));
  }
};

// Formats provide kDecodeRows (rows per decode micro-tile); W weights(row,
// k): block k's codes; scale(row, k): a / kFold in every lane (kFold is
// multiplied into the activation scales once per token instead); or, with
// kMin, chunk_scales: a and b of 16 blocks.
// kOffset: byte codes are c + 128, undone by the activations' bias
// (-128 * sum).

// NF4 as unsigned bytes kNf4Codes + 128 (8-bit activations).
template <class L>
struct Nf4Bytes : L {
  using W = __m512i;
  static constexpr int kDecodeRows = 8;
  static constexpr float kFold = L::kFold / 127.0f;
  static constexpr bool kOffset = true, kMin = false;
  static W weights(const uint8_t* row, int64_t k) {
    static constexpr Table16 kTable = [] {
      Table16 t{};
      for (int i = 0; i < 16; ++i) t.v[i] = uint8_t(kNf4Codes[i] + 128);
      return t;
    }();
    return _mm512_shuffle_epi8(broadcast_table(kTable), nf4_indices(L::qs(row, k)));
  }
};

// NF4 as int16 kNf4Codes16 (16-bit activations): words of bytes 0..7 of each
// 128-bit lane in `lo`, of bytes 8..15 in `hi` (vpunpck order).
struct Words {
  __m512i lo, hi;
};
template <class L>
struct Nf4Words : L {
  using W = Words;
  static constexpr int kDecodeRows = 8;
  static constexpr float kFold = L::kFold / float(kNf4Wide);
  static constexpr bool kOffset = false, kMin = false;
  static W weights(const uint8_t* row, int64_t k) {
    static constexpr Table16 kLow = [] {
      Table16 t{};
      for (int i = 0; i < 16; ++i) t.v[i] = uint8_t(uint16_t(kNf4Codes16[i]) & 0xff);
      return t;
    }();
    static constexpr Table16 kHigh = [] {
      Table16 t{};
      for (int i = 0; i < 16; ++i) t.v[i] = uint8_t(uint16_t(kNf4Codes16[i]) >> 8);
      return t;
    }();
    const __m512i idx = nf4_indices(L::qs(row, k));
    const __m512i lo = _mm512_shuffle_epi8(broadcast_table(kLow), idx);
    const __m512i hi = _mm512_shuffle_epi8(broadcast_table(kHigh), idx);
    return {_mm512_unpacklo_epi8(lo, hi), _mm512_unpackhi_epi8(lo, hi)};
  }
};

// q2_g64 {f16 d, f16 m, ql[16]} and q3_g64 {..., qh[8]}: the 16 low-bit bytes
// broadcast to the four 128-bit lanes, lane k shifted right by 2k (bits of
// weight 16k + j), and q3's high bits straight from the 64-bit mask.
template <bool kThree>
struct FormatGroup {
  using W = __m512i;
  static constexpr int kDecodeRows = kThree ? 4 : 8;  // measured: q3 slower at 8
  static constexpr int kBytes = kThree ? 28 : 20;
  static constexpr float kFold = 1.0f;
  static constexpr bool kOffset = false, kMin = true;
  static W weights(const uint8_t* row, int64_t k) {
    const uint8_t* p = row + kBytes * k;
    const __m512i v =
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4)));
    const __m512i shifts = _mm512_set_epi64(6, 6, 4, 4, 2, 2, 0, 0);
    __m512i u = _mm512_and_si512(_mm512_srlv_epi64(v, shifts), _mm512_set1_epi8(3));
    if constexpr (kThree) {
      uint64_t bits;
      std::memcpy(&bits, p + 20, 8);
      u = _mm512_mask_add_epi8(u, _cvtu64_mask64(bits), u, _mm512_set1_epi8(4));
    }
    return u;
  }
  // d (lane j) and m of blocks k0 .. k0 + count - 1, count <= 16, zero beyond:
  // 16 scalar copies and two conversions instead of two broadcasts per block.
  static void chunk_scales(const uint8_t* row, int64_t k0, int count, __m512& d, __m512& m) {
    alignas(64) uint32_t dm[16] = {};
    for (int j = 0; j < count; ++j) std::memcpy(&dm[j], row + kBytes * (k0 + j), 4);
    const __m512i v = _mm512_load_si512(dm);
    d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
    m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16)));
  }
};

inline __m512i join(const uint8_t* lo, const uint8_t* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load32(lo)), load32(hi), 1);
}

// d_x0 * kFold in lanes 0..7, d_x1 * kFold in 8..15; the two sums.
template <class F, class Block>
inline __m512 load_x_scales(const uint8_t* p, int32_t& s0, int32_t& s1, float& d0, float& d1) {
  std::memcpy(&d0, p + offsetof(Block, d), 4);
  std::memcpy(&s0, p + offsetof(Block, sum), 4);
  std::memcpy(&d1, p + sizeof(Block) + offsetof(Block, d), 4);
  std::memcpy(&s1, p + sizeof(Block) + offsetof(Block, sum), 4);
  return _mm512_mask_broadcastss_ps(_mm512_set1_ps(d0 * F::kFold), 0xff00,
                                    _mm_set_ss(d1 * F::kFold));
}

// q2/q3's m * sum term's activation side: d_x0 * sum0 + d_x1 * sum1.
inline float sum_term(float d0, int32_t s0, float d1, int32_t s1) {
  return d0 * float(s0) + d1 * float(s1);
}

// Activations: A::X holds one token's two activation blocks for one weight
// block: the values, dx (load_x_scales) and, for the formats that need them,
// sx (sum_term) and the offset's bias.
struct ActQ8 {
  static constexpr bool kWide = false;
  static constexpr size_t kBytes = sizeof(BlockQ8x);
  struct X {
    __m512i q;
    __m512 dx;
    float sx;
    __m512i bias;  // kOffset: -128 * sum0 in lane 0, -128 * sum1 in lane 8
  };
  template <class F>
  static void load(const uint8_t* p, X& x) {
    x.q = join(p + offsetof(BlockQ8x, qs), p + kBytes + offsetof(BlockQ8x, qs));
    int32_t s0, s1;
    float d0, d1;
    x.dx = load_x_scales<F, BlockQ8x>(p, s0, s1, d0, d1);
    if constexpr (F::kMin) x.sx = sum_term(d0, s0, d1, s1);
    if constexpr (F::kOffset) {
      x.bias =
          _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(0x0001, -128 * s0), 0x0100, -128 * s1);
    }
  }
  template <class F>
  static __m512i dot(__m512i u, const X& x) {
    return _mm512_dpbusd_epi32(F::kOffset ? x.bias : _mm512_setzero_si512(), u, x.q);
  }
};

// 16-bit activations against byte codes (q2/q3): 256 * dot(hi) + dot(lo) in
// int32, each lane's hi dot at most 4 * 7 * 127.
struct ActQ16 {
  static constexpr bool kWide = false;
  static constexpr size_t kBytes = sizeof(BlockQ16x);
  struct X {
    __m512i hi, lo;
    __m512 dx;
    float sx;
  };
  template <class F>
  static void load(const uint8_t* p, X& x) {
    static_assert(!F::kOffset);
    x.hi = join(p + offsetof(BlockQ16x, hi), p + kBytes + offsetof(BlockQ16x, hi));
    x.lo = join(p + offsetof(BlockQ16x, lo), p + kBytes + offsetof(BlockQ16x, lo));
    int32_t s0, s1;
    float d0, d1;
    x.dx = load_x_scales<F, BlockQ16x>(p, s0, s1, d0, d1);
    if constexpr (F::kMin) x.sx = sum_term(d0, s0, d1, s1);
  }
  template <class F>
  static __m512i dot(__m512i u, const X& x) {
    const __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, x.hi);
    return _mm512_dpbusd_epi32(_mm512_slli_epi32(hi, 8), u, x.lo);
  }
};

// 16-bit activations as int16 words against int16 NF4 codes: each int32 lane
// sums 4 products, at most 4 * 16383 * 32512 < 2^31.
struct ActQ16Words {
  static constexpr bool kWide = true;
  static constexpr size_t kBytes = sizeof(BlockQ16x);
  struct X {
    Words q;
    __m512 dx;
    float sx;
  };
  template <class F>
  static void load(const uint8_t* p, X& x) {
    const __m512i hi = join(p + offsetof(BlockQ16x, hi), p + kBytes + offsetof(BlockQ16x, hi));
    const __m512i lo = join(p + offsetof(BlockQ16x, lo), p + kBytes + offsetof(BlockQ16x, lo));
    // The word (lo as unsigned) + 256 * hi' is 256 * hi + lo when hi' = hi - (lo < 0).
    const __m512i hi_adj =
        _mm512_mask_sub_epi8(hi, _mm512_movepi8_mask(lo), hi, _mm512_set1_epi8(1));
    x.q = {_mm512_unpacklo_epi8(lo, hi_adj), _mm512_unpackhi_epi8(lo, hi_adj)};
    int32_t s0, s1;
    float d0, d1;
    x.dx = load_x_scales<F, BlockQ16x>(p, s0, s1, d0, d1);
    if constexpr (F::kMin) x.sx = sum_term(d0, s0, d1, s1);
  }
  template <class F>
  static __m512i dot(const Words& w, const X& x) {
    return _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(_mm512_setzero_si512(), w.lo, x.q.lo), w.hi,
                               x.q.hi);
  }
};

// MR rows x NT tokens over nb blocks. pf: where the next micro-tile's rows
// start, or null. MR short rows read side by side defeat the hardware
// prefetcher (simd_avx512_q8.h measured 9 against 24 GB/s), so each block
// step also fetches its share of the next micro-tile, in address order.
template <class F, class A, int MR, int NT>
void micro(const uint8_t* w, size_t ws, const uint8_t* pf, const uint8_t* x, size_t xs, int64_t nb,
           float* y, int64_t ldy) {
  const size_t pf_step = (MR * ws + size_t(nb) - 1) / size_t(nb);
  __m512 acc[MR][NT];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  // Chunks of 16 blocks: formats with a minimum take their scales 16 at a
  // time and add the m * sum terms once per chunk, as a 16-lane FMA.
  for (int64_t k0 = 0; k0 < nb; k0 += 16) {
    const int count = nb - k0 < 16 ? int(nb - k0) : 16;
    __m512 dv[MR], mv[MR];
    alignas(64) float sx[NT][16];
    if constexpr (F::kMin) {
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) F::chunk_scales(w + r * ws, k0, count, dv[r], mv[r]);
      for (int t = 0; t < NT; ++t) {
        for (int j = count; j < 16; ++j) sx[t][j] = 0;
      }
    }
    for (int j = 0; j < count; ++j) {
      const int64_t k = k0 + j;
      if (pf != nullptr) {
        for (size_t b = 0; b < pf_step; b += 64)
          __builtin_prefetch(pf + size_t(k) * pf_step + b, 0, 3);
      }
      typename A::X xb[NT];
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        A::template load<F>(x + t * xs + 2 * k * A::kBytes, xb[t]);
        if constexpr (F::kMin) sx[t][j] = xb[t].sx;
      }
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const typename F::W u = F::weights(w + r * ws, k);
        __m512 a;
        if constexpr (F::kMin) {
          a = _mm512_permutexvar_ps(_mm512_set1_epi32(j), dv[r]);
        } else {
          a = F::scale(w + r * ws, k);
        }
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          const __m512 isum = _mm512_cvtepi32_ps(A::template dot<F>(u, xb[t]));
          acc[r][t] = _mm512_fmadd_ps(isum, _mm512_mul_ps(a, xb[t].dx), acc[r][t]);
        }
      }
    }
    if constexpr (F::kMin) {
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          acc[r][t] = _mm512_fmadd_ps(mv[r], _mm512_load_ps(sx[t]), acc[r][t]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

template <class F, class A>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  using Micro = void (*)(const uint8_t*, size_t, const uint8_t*, const uint8_t*, size_t, int64_t,
                         float*, int64_t);
  static constexpr Micro kDecode[8] = {micro<F, A, 1, 1>, micro<F, A, 2, 1>, micro<F, A, 3, 1>,
                                       micro<F, A, 4, 1>, micro<F, A, 5, 1>, micro<F, A, 6, 1>,
                                       micro<F, A, 7, 1>, micro<F, A, 8, 1>};
  static constexpr Micro kPrefill[2][4] = {
      {micro<F, A, 1, 1>, micro<F, A, 1, 2>, micro<F, A, 1, 3>, micro<F, A, 1, 4>},
      {micro<F, A, 2, 1>, micro<F, A, 2, 2>, micro<F, A, 2, 3>, micro<F, A, 2, 4>},
  };
  const int64_t nb = n / 64;
  if (T == 1) {
    constexpr int kRows = F::kDecodeRows;
    for (int64_t r = 0; r < R; r += kRows) {
      const int mr = R - r < kRows ? int(R - r) : kRows;
      kDecode[mr - 1](w + r * ws, ws, w + (r + kRows) * ws, x, xs, nb, y + r, ldy);
    }
    return;
  }
  for (int64_t r = 0; r < R; r += 2) {
    const int mr = R - r < 2 ? int(R - r) : 2;
    for (int64_t t = 0; t < T; t += 4) {
      const int nt = T - t < 4 ? int(T - t) : 4;
      kPrefill[mr - 1][nt - 1](w + r * ws, ws, nullptr, x + t * xs, xs, nb, y + t * ldy + r, ldy);
    }
  }
}

template <class F, class A>
constexpr GemmKernel lowbit_kernel(TensorType type, Isa isa) {
  return {type, isa, A::kBytes == sizeof(BlockQ8x) ? ActivationKind::kQ8 : ActivationKind::kQ16,
          tile<F, A>};
}

}  // namespace
}  // namespace memwall::kernels
