// AVX-512 VNNI GEMM tiles for nf4, nf4_dq, q2_g64 and q3_g64 with BlockQ8x /
// BlockQ16x activations (integer form: lowbit_kernels.h). Include only from
// *_avx512vnni.cpp files; anonymous namespace so each target gets its own copy
// (see simd_avx512_q8.h).
//
// One zmm holds a whole 64-weight block as unsigned bytes u (weight i in byte
// i), and one zmm the block's 64 activations (two BlockQ8x halves), so a
// block's dot is one vpdpbusd (two for 16-bit activations). Int32 lanes 0..7
// belong to the first activation block and 8..15 to the second, so the
// result is scaled by a * [d_x0 x 8, d_x1 x 8]; q2/q3's m * sum term is one
// more FMA into lane 0. Codes: q2/q3 as they are (u = q <= 7); NF4 through a
// 16-byte vpshufb table of its codes + 128 (vpdpbusd wants unsigned bytes),
// the offset undone by starting the integer dot at -128 * sum(x). Scales are
// f16 broadcasts converted in-vector; constant factors (NF4's 1/127) ride on
// the activation scales, computed once per token and block.
//
// Micro-tiles: decode takes 4 rows x 1 token (each activation block is
// loaded once for 4 rows), prefill 2 rows x up to 4 tokens.
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

// nf4 / nf4_dq: 32 index bytes -> 64 unsigned codes + 128 in weight order
// (the bytes in both halves, the upper half shifted to its high nibbles).
inline __m512i nf4_unsigned_codes(const uint8_t* qs) {
  static constexpr struct Table {
    uint8_t v[16];
  } kTable = [] {
    Table t{};
    for (int i = 0; i < 16; ++i) t.v[i] = uint8_t(kNf4Codes[i] + 128);
    return t;
  }();
  const __m512i lut =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kTable.v)));
  const __m512i z = _mm512_broadcast_i64x4(load32(qs));
  const __m512i idx = _mm512_and_si512(
      _mm512_srlv_epi64(z, _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0)), _mm512_set1_epi8(0x0f));
  return _mm512_shuffle_epi8(lut, idx);
}

// Formats provide the codes u of block k, its scale a / kFold in every lane
// (kFold is multiplied into the activation scales once per token instead),
// and with kMin its minimum b in every lane. kOffset: u = c + 128, undone in
// integers by the activations' bias (-128 * sum).
struct FormatNf4 {
  static constexpr float kFold = 1.0f / 127.0f;
  static constexpr bool kOffset = true, kMin = false;
  static __m512i codes(const uint8_t* row, int64_t k) {
    return nf4_unsigned_codes(row + 34 * k + 2);
  }
  static __m512 scale(const uint8_t* row, int64_t k) { return broadcast_f16(row + 34 * k); }
  static __m512 min(const uint8_t*, int64_t) { return _mm512_setzero_ps(); }
};

// a = D * s / (255 * 127).
struct FormatNf4Dq {
  static constexpr float kFold = float(1.0 / (255.0 * 127.0));
  static constexpr bool kOffset = true, kMin = false;
  static __m512i codes(const uint8_t* row, int64_t k) {
    return nf4_unsigned_codes(row + 134 * (k / 4) + 6 + 32 * (k % 4));
  }
  static __m512 scale(const uint8_t* row, int64_t k) {
    const uint8_t* sb = row + 134 * (k / 4);
    return _mm512_mul_ps(broadcast_f16(sb), _mm512_cvtepi32_ps(_mm512_set1_epi32(sb[2 + k % 4])));
  }
  static __m512 min(const uint8_t*, int64_t) { return _mm512_setzero_ps(); }
};

// q2_g64 {f16 d, f16 m, ql[16]} and q3_g64 {..., qh[8]}: the 16 low-bit bytes
// broadcast to the four 128-bit lanes, lane k shifted right by 2k (bits of
// weight 16k + j), and q3's high bits straight from the 64-bit mask.
template <bool kThree>
struct FormatGroup {
  static constexpr int kBytes = kThree ? 28 : 20;
  static constexpr float kFold = 1.0f;
  static constexpr bool kOffset = false, kMin = true;
  static __m512i codes(const uint8_t* row, int64_t k) {
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
  static __m512 scale(const uint8_t* row, int64_t k) { return broadcast_f16(row + kBytes * k); }
  static __m512 min(const uint8_t* row, int64_t k) { return broadcast_f16(row + kBytes * k + 2); }
};

// One token's two activation blocks for one weight block: the 8-bit values
// (one or two passes), their scales, and what the formats' minimum or
// offset needs of their sums.
template <int kPasses>
struct XBlock {
  __m512i q[kPasses];
  __m512 dx;     // d_x0 * kFold in lanes 0..7, d_x1 * kFold in 8..15
  __m512 sx;     // kMin: d_x0 * sum0 + d_x1 * sum1 in lane 0, zero elsewhere
  __m512i bias;  // kOffset: -128 * sum0 in lane 0, -128 * sum1 in lane 8
};

inline __m512i join(const uint8_t* lo, const uint8_t* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load32(lo)), load32(hi), 1);
}

template <class F, class Block, int kPasses>
inline void load_x_scales(const uint8_t* p, XBlock<kPasses>& x) {
  float d0, d1;
  int32_t s0, s1;
  std::memcpy(&d0, p + offsetof(Block, d), 4);
  std::memcpy(&s0, p + offsetof(Block, sum), 4);
  std::memcpy(&d1, p + sizeof(Block) + offsetof(Block, d), 4);
  std::memcpy(&s1, p + sizeof(Block) + offsetof(Block, sum), 4);
  x.dx =
      _mm512_mask_broadcastss_ps(_mm512_set1_ps(d0 * F::kFold), 0xff00, _mm_set_ss(d1 * F::kFold));
  if constexpr (F::kMin) {
    x.sx = _mm512_zextps128_ps512(_mm_set_ss(d0 * float(s0) + d1 * float(s1)));
  }
  if constexpr (F::kOffset) {
    x.bias = _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(0x0001, -128 * s0), 0x0100, -128 * s1);
  }
}

struct ActQ8 {
  static constexpr int kPasses = 1;
  static constexpr size_t kBytes = sizeof(BlockQ8x);
  template <class F>
  static void load(const uint8_t* p, XBlock<1>& x) {
    x.q[0] = join(p + offsetof(BlockQ8x, qs), p + kBytes + offsetof(BlockQ8x, qs));
    load_x_scales<F, BlockQ8x>(p, x);
  }
  template <class F>
  static __m512i dot(__m512i u, const XBlock<1>& x) {
    return _mm512_dpbusd_epi32(F::kOffset ? x.bias : _mm512_setzero_si512(), u, x.q[0]);
  }
};

// 256 * dot(hi) + dot(lo) in int32: each lane's hi dot is at most
// 4 * 255 * 127, so the shifted sum stays below 2^25; the offset's bias
// -128 * sum(X) below 2^27.
struct ActQ16 {
  static constexpr int kPasses = 2;
  static constexpr size_t kBytes = sizeof(BlockQ16x);
  template <class F>
  static void load(const uint8_t* p, XBlock<2>& x) {
    x.q[0] = join(p + offsetof(BlockQ16x, hi), p + kBytes + offsetof(BlockQ16x, hi));
    x.q[1] = join(p + offsetof(BlockQ16x, lo), p + kBytes + offsetof(BlockQ16x, lo));
    load_x_scales<F, BlockQ16x>(p, x);
  }
  template <class F>
  static __m512i dot(__m512i u, const XBlock<2>& x) {
    __m512i hi = _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, x.q[0]), 8);
    if constexpr (F::kOffset) hi = _mm512_add_epi32(hi, x.bias);
    return _mm512_dpbusd_epi32(hi, u, x.q[1]);
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
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < nb; ++k) {
    if (pf != nullptr) {
      for (size_t b = 0; b < pf_step; b += 64)
        __builtin_prefetch(pf + size_t(k) * pf_step + b, 0, 3);
    }
    XBlock<A::kPasses> xb[NT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) A::template load<F>(x + t * xs + 2 * k * A::kBytes, xb[t]);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m512i u = F::codes(w + r * ws, k);
      const __m512 a = F::scale(w + r * ws, k);
      const __m512 b = F::min(w + r * ws, k);
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const __m512 isum = _mm512_cvtepi32_ps(A::template dot<F>(u, xb[t]));
        acc[r][t] = _mm512_fmadd_ps(isum, _mm512_mul_ps(a, xb[t].dx), acc[r][t]);
        if constexpr (F::kMin) acc[r][t] = _mm512_fmadd_ps(b, xb[t].sx, acc[r][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

template <class F, class A>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  using Micro = void (*)(const uint8_t*, size_t, const uint8_t*, const uint8_t*, size_t, int64_t,
                         float*, int64_t);
  static constexpr Micro kDecode[4] = {micro<F, A, 1, 1>, micro<F, A, 2, 1>, micro<F, A, 3, 1>,
                                       micro<F, A, 4, 1>};
  static constexpr Micro kPrefill[2][4] = {
      {micro<F, A, 1, 1>, micro<F, A, 1, 2>, micro<F, A, 1, 3>, micro<F, A, 1, 4>},
      {micro<F, A, 2, 1>, micro<F, A, 2, 2>, micro<F, A, 2, 3>, micro<F, A, 2, 4>},
  };
  const int64_t nb = n / 64;
  if (T == 1) {
    for (int64_t r = 0; r < R; r += 4) {
      const int mr = R - r < 4 ? int(R - r) : 4;
      kDecode[mr - 1](w + r * ws, ws, w + (r + 4) * ws, x, xs, nb, y + r, ldy);
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
  return {type, isa, A::kPasses == 1 ? ActivationKind::kQ8 : ActivationKind::kQ16, tile<F, A>};
}

}  // namespace
}  // namespace memwall::kernels
