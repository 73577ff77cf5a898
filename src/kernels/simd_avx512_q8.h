// AVX-512 machinery shared by the quantized-weight GEMM kernels (q4_0, q4_1,
// q8_0 with BlockQ8x activations) of the avx512 and avx512vnni targets.
// Include it only from files compiled for those targets. Everything is in an
// anonymous namespace on purpose: each target's file gets its own copy, so the
// linker can never pick a copy built with instructions another CPU lacks.
//
// Scheme, per micro-tile of MR weight rows x NT tokens:
//   * Blocks go four at a time (a "quad"): one zmm holds the first 16 weights
//     of each of the 4 blocks (`lo`, one block per 128-bit lane), another the
//     last 16 (`hi`); activations are arranged the same way. An integer dot of
//     lo and hi leaves int32 lane l holding a partial sum of block l / 4 only.
//   * Scales are loaded 16 blocks (a "chunk") at a time into one zmm of
//     floats, d_w per row and d_x per token, and spread to the quad's lane
//     layout with one permute; acc += float(isum) * d_w * d_x keeps 16
//     partial sums per output, reduced once at the end.
//   * Per-block terms that need only the activation sum (q4_0's -8 * sum_x,
//     q4_1's m_w * d_x * sum_x) are a dot product over blocks: one FMA per
//     chunk per output, not one per block.
// Shuffles are this loop's scarce resource, so weights are gathered with one
// two-source word permute (vpermt2w) per quad rather than four inserts, and
// nothing uses vpgather (measured ~4x slower than the whole decode loop here).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/activations.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

constexpr int kQ8xBytes = sizeof(BlockQ8x);
static_assert(offsetof(BlockQ8x, d) == 0 && offsetof(BlockQ8x, sum) == 4 &&
              offsetof(BlockQ8x, qs) == 8);

// Word-index tables for vpermt2w / vpermt2d, built at compile time.
struct Index32 {
  uint16_t v[32] = {};
};

// 16 bytes at each of 4 places `stride` apart, starting `first` bytes into a
// 128-byte window, as the four 128-bit lanes of a zmm (words of the window).
constexpr Index32 quad_lane_words(int first, int stride) {
  Index32 r;
  for (int i = 0; i < 32; ++i) r.v[i] = uint16_t((first + (i / 8) * stride) / 2 + i % 8);
  return r;
}

// Loads the 128-byte window at p, reading only its first `bytes` bytes (the
// rest is masked, so a window at the end of the matrix cannot fault).
template <int kBytes>
inline __m512i window_permute(const uint8_t* p, const Index32& idx) {
  static_assert(kBytes > 64 && kBytes <= 128 && kBytes % 2 == 0);
  const __m512i a = _mm512_loadu_si512(p);
  constexpr int kHiWords = (kBytes - 64) / 2;
  const __mmask32 m = kHiWords == 32 ? ~__mmask32(0) : (__mmask32(1) << kHiWords) - 1;
  const __m512i b = _mm512_maskz_loadu_epi16(m, p + 64);
  return _mm512_permutex2var_epi16(a, _mm512_loadu_si512(idx.v), b);
}

// 16 bytes at each of `count` (< 4) places `stride` apart, one per 128-bit
// lane, the rest zero: the last quad of a row.
inline __m512i load_quad_lanes(const uint8_t* p, size_t stride, int count) {
  __m512i z = _mm512_setzero_si512();
  for (int i = 0; i < count; ++i) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i * stride));
    z = _mm512_mask_broadcast_i32x4(z, __mmask16(0xf << (4 * i)), v);
  }
  return z;
}

// Four activation blocks in quad layout. Masked broadcasts: one load uop each
// where an insert would also take a shuffle uop.
struct XQuad {
  __m512i lo, hi;
};
inline __m512i load_x_lanes(const uint8_t* p) {
  const auto lane = [&](int i) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i * kQ8xBytes));
  };
  __m512i z = _mm512_broadcast_i32x4(lane(0));
  z = _mm512_mask_broadcast_i32x4(z, 0x00f0, lane(1));
  z = _mm512_mask_broadcast_i32x4(z, 0x0f00, lane(2));
  return _mm512_mask_broadcast_i32x4(z, 0xf000, lane(3));
}
inline XQuad load_x_quad(const uint8_t* x, int count) {
  const uint8_t* qs = x + offsetof(BlockQ8x, qs);
  if (count == 4) return {load_x_lanes(qs), load_x_lanes(qs + 16)};
  return {load_quad_lanes(qs, kQ8xBytes, count), load_quad_lanes(qs + 16, kQ8xBytes, count)};
}

// 4-bit weights: the 16 nibble bytes of 4 blocks `kBytes` apart, starting
// kQs bytes into each block, split into low nibbles (weights 0..15 of each
// block, `lo`) and high nibbles (16..31, `hi`), as unsigned bytes 0..15.
template <int kBytes, int kQs>
inline void load_nibble_quad(const uint8_t* block, int count, __m512i& lo, __m512i& hi) {
  __m512i z;
  if (count == 4) {
    static constexpr Index32 kIdx = quad_lane_words(kQs, kBytes);
    z = window_permute<3 * kBytes + kQs + 16>(block, kIdx);
  } else {
    z = load_quad_lanes(block + kQs, kBytes, count);
  }
  const __m512i m = _mm512_set1_epi8(0x0f);
  lo = _mm512_and_si512(z, m);
  hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m);
}

// Gathering one field from each of 16 consecutive records without vpgather:
// 128-byte windows are loaded and one vpermt2w/vpermt2d picks the fields that
// fall inside each window.
struct FieldPlan {
  int windows = 0;
  int start[8] = {};      // window start, bytes from the first record
  uint16_t mask[8] = {};  // which of the 16 results this window supplies
  Index32 idx[8];         // element index (elem-size units) within the window
};

// Fields of `elem` bytes (2 or 4), the `first`-th such element of records
// `stride` bytes apart; each record's first `span` bytes lie inside one window.
constexpr FieldPlan make_field_plan(int stride, int elem, int span, int first) {
  FieldPlan p;
  const int end = 16 * stride;
  int k = 0;
  while (k < 16) {
    int start = k * stride;
    if (start + 128 > end) start = end - 128;
    const int w = p.windows++;
    p.start[w] = start;
    while (k < 16 && k * stride + span <= start + 128) {
      p.mask[w] = uint16_t(p.mask[w] | (1u << k));
      p.idx[w].v[k] = uint16_t((k * stride - start) / elem + first);
      ++k;
    }
  }
  return p;
}

// Element k < 16 of the result: the field at p + k * stride + first * elem.
// Reads 16 * stride bytes from p, no more.
template <int kStride, int kElem, int kSpan, int kFirst = 0>
inline __m512i gather_fields(const uint8_t* p) {
  static constexpr FieldPlan plan = make_field_plan(kStride, kElem, kSpan, kFirst);
  static_assert(plan.windows <= 8);
  __m512i r = _mm512_setzero_si512();
#pragma GCC unroll 8
  for (int w = 0; w < plan.windows; ++w) {
    const __m512i a = _mm512_loadu_si512(p + plan.start[w]);
    const __m512i b = _mm512_loadu_si512(p + plan.start[w] + 64);
    if constexpr (kElem == 2) {
      const __m512i idx = _mm512_loadu_si512(plan.idx[w].v);
      r = _mm512_mask_mov_epi16(r, plan.mask[w], _mm512_permutex2var_epi16(a, idx, b));
    } else {
      const __m512i idx = _mm512_cvtepu16_epi32(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.idx[w].v)));
      r = _mm512_mask_mov_epi32(r, plan.mask[w], _mm512_permutex2var_epi32(a, idx, b));
    }
  }
  return r;
}

// The first `count` < 16 fields, the rest zero: the end of a row, where a
// full window could read past the matrix.
template <int kStride, int kElem>
inline __m512i gather_fields_partial(const uint8_t* p, int count) {
  alignas(64) uint8_t tmp[64] = {};
  for (int k = 0; k < count; ++k) __builtin_memcpy(tmp + k * kElem, p + k * kStride, kElem);
  return _mm512_load_si512(tmp);
}

// d_x and sum_x of 16 activation blocks (zero beyond `count`).
inline void load_x_scales(const uint8_t* x, int count, __m512& d, __m512& sum) {
  __m512i dd, ss;
  if (count == 16) {
    dd = gather_fields<kQ8xBytes, 4, 8>(x);
    ss = gather_fields<kQ8xBytes, 4, 8, 1>(x);  // the same windows as d
  } else {
    dd = gather_fields_partial<kQ8xBytes, 4>(x, count);
    ss = gather_fields_partial<kQ8xBytes, 4>(x + 4, count);
  }
  d = _mm512_castsi512_ps(dd);
  sum = _mm512_cvtepi32_ps(ss);
}

// f16 d of 16 weight blocks (q4_0, q8_0: d leads each block).
template <int kBytes>
inline __m512 load_w_d(const uint8_t* w, int count) {
  const __m512i h =
      count == 16 ? gather_fields<kBytes, 2, 2>(w) : gather_fields_partial<kBytes, 2>(w, count);
  return _mm512_cvtph_ps(_mm512_castsi512_si256(h));
}

// f16 d and m of 16 q4_1 blocks.
template <int kBytes>
inline void load_w_dm(const uint8_t* w, int count, __m512& d, __m512& m) {
  const __m512i dm =
      count == 16 ? gather_fields<kBytes, 4, 4>(w) : gather_fields_partial<kBytes, 4>(w, count);
  d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
  m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)));
}

// The unsigned x signed byte dot without VNNI (avx512 target): vpmaddubsw
// pairs into int16, then vpmaddwd with ones into int32. Exact for 4-bit
// weights: each int16 is at most 2 * 15 * 128 per half, 7680 for both.
struct DotMaddubs {
  static __m512i dot(__m512i a_lo, __m512i a_hi, __m512i b_lo, __m512i b_hi) {
    const __m512i p =
        _mm512_add_epi16(_mm512_maddubs_epi16(a_lo, b_lo), _mm512_maddubs_epi16(a_hi, b_hi));
    return _mm512_madd_epi16(p, _mm512_set1_epi16(1));
  }
};

// The two 4-bit formats. Nibbles are unsigned (0..15), activations signed,
// which is the operand order both vpdpbusd and vpmaddubsw take.
//   q4_0 {f16 d; u8 qs[16]}:          w = d * (q - 8)  -> fix term d * (-8 * d_x * sum_x)
//   q4_1 {f16 d; f16 m; u8 qs[16]}:   w = d * q + m    -> fix term m * (d_x * sum_x)
// Dot::dot(w_lo, w_hi, x_lo, x_hi) is the target's unsigned x signed byte dot.
template <bool kHasMin, class Dot>
struct Q4Format {
  static constexpr int kBytes = kHasMin ? 20 : 18;
  static constexpr int kQs = kHasMin ? 4 : 2;
  static constexpr bool kFix = true;
  static constexpr float kFixScale = kHasMin ? 1.0f : -8.0f;
  struct WQuad {
    __m512i lo, hi;
  };
  static WQuad load_w(const uint8_t* block, int count) {
    WQuad q;
    load_nibble_quad<kBytes, kQs>(block, count, q.lo, q.hi);
    return q;
  }
  static XQuad load_x(const uint8_t* block, int count) { return load_x_quad(block, count); }
  static __m512i dot(const WQuad& w, const XQuad& x) { return Dot::dot(w.lo, w.hi, x.lo, x.hi); }
  static void scales(const uint8_t* block, int count, __m512& d, __m512& fix) {
    if constexpr (kHasMin) {
      load_w_dm<kBytes>(block, count, d, fix);
    } else {
      fix = d = load_w_d<kBytes>(block, count);
    }
  }
};

// q8_0 {f16 d; i8 qs[32]}: signed weights in quad layout, lo = bytes 0..15 of
// each block, hi = bytes 16..31, each half gathered from one 128-byte window.
inline void load_q8_0_quad(const uint8_t* block, int count, __m512i& lo, __m512i& hi) {
  constexpr int kBytes = 34;
  if (count == 4) {
    static constexpr Index32 kIdx = quad_lane_words(2, kBytes);
    lo = window_permute<3 * kBytes + 2 + 16>(block, kIdx);
    hi = window_permute<3 * kBytes + 2 + 16>(block + 16, kIdx);
  } else {
    lo = load_quad_lanes(block + 2, kBytes, count);
    hi = load_quad_lanes(block + 18, kBytes, count);
  }
}

// Lane l of a quad's int32 result belongs to block l / 4 of the quad.
inline __m512i quad_scale_index(int quad) {
  return _mm512_add_epi32(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                          _mm512_set1_epi32(4 * quad));
}

// Prefetches every line of [p, p + bytes) into the cache level kLocality
// names (3: all levels, like _MM_HINT_T0; 2: L2 and out, like _MM_HINT_T1).
// __builtin_prefetch, not _mm_prefetch: GCC and clang type its hint differently.
template <int kLocality>
inline void prefetch_range(const uint8_t* p, int bytes) {
#pragma GCC unroll 4
  for (int b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, kLocality);
  __builtin_prefetch(p + bytes - 1, 0, kLocality);
}

// One chunk of `count` <= 16 blocks starting at block k0 into acc. kFull:
// count == 16 (the loop body without tail checks).
//
// F provides:
//   kBytes                          bytes per weight block
//   kFix, kFixScale                 whether acc += fix_w * kFixScale * d_x * sum_x
//   struct WQuad; static WQuad load_w(const uint8_t* block, int count)
//   static XQuad load_x(const uint8_t* block, int count)
//   static __m512i dot(const WQuad&, const XQuad&)          int32 lanes
//   static void scales(const uint8_t* block, int count, __m512& d, __m512& fix_w)
template <class F, int MR, int NT, bool kFull>
__attribute__((always_inline)) inline void chunk(const uint8_t* w, size_t ws, const uint8_t* pf,
                                                 const uint8_t* x, size_t xs, int64_t k0, int count,
                                                 __m512 (&acc)[MR][NT]) {
  // s[r][t] = d_w * d_x per block of the chunk; spread to each quad's lanes
  // with one permute where it is used.
  __m512 dw[MR], fw[MR], s[MR][NT];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) F::scales(w + r * ws + k0 * F::kBytes, count, dw[r], fw[r]);
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) {
    __m512 dx, sum;
    load_x_scales(x + t * xs + k0 * kQ8xBytes, count, dx, sum);
    const __m512 cx = _mm512_mul_ps(_mm512_mul_ps(dx, sum), _mm512_set1_ps(F::kFixScale));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      s[r][t] = _mm512_mul_ps(dw[r], dx);
      if constexpr (F::kFix) acc[r][t] = _mm512_fmadd_ps(fw[r], cx, acc[r][t]);
    }
  }
  const bool pf_to_l1 = size_t(MR) * ws <= 12 * 1024;
  for (int q = 0; q < count; q += 4) {
    const int qc = kFull ? 4 : (count - q < 4 ? count - q : 4);
    const int64_t k = k0 + q;
    const __m512i sidx = quad_scale_index(q / 4);
    XQuad xq[NT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) xq[t] = F::load_x(x + t * xs + k * kQ8xBytes, qc);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      if (kFull && pf != nullptr) {
        // The micro-tile reads MR short rows side by side (1 KiB each for
        // q4_0 at n = 2048), a pattern that measured 9 GB/s from DRAM here
        // against 24 for one sequential stream: the hardware prefetcher
        // does not follow it. So the next micro-tile's rows (contiguous from
        // pf) are fetched in address order, a quad's worth per quad: into L1
        // when two micro-tiles fit in it with room to spare, else into L2
        // (measured: q4_0's 9 KiB tiles gain from L1, q8_0's 17 KiB lose).
        const uint8_t* p = pf + (k0 * MR + (q / 4 * MR + r) * 4) * F::kBytes;
        if (pf_to_l1) {
          prefetch_range<3>(p, 4 * F::kBytes);
        } else {
          prefetch_range<2>(p, 4 * F::kBytes);
        }
      }
      const typename F::WQuad wq = F::load_w(w + r * ws + k * F::kBytes, qc);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const __m512 isum = _mm512_cvtepi32_ps(F::dot(wq, xq[t]));
        acc[r][t] = _mm512_fmadd_ps(isum, _mm512_permutexvar_ps(sidx, s[r][t]), acc[r][t]);
      }
    }
  }
}

// One micro-tile: Y[t * ldy + r] for r < MR, t < NT over nb blocks. pf: where
// the next micro-tile's rows start, to prefetch (prefetches never fault), or
// null when the rows are already cached.
template <class F, int MR, int NT>
void micro(const uint8_t* w, size_t ws, const uint8_t* pf, const uint8_t* x, size_t xs, int64_t nb,
           float* y, int64_t ldy) {
  __m512 acc[MR][NT];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  int64_t k0 = 0;
  for (; k0 + 16 <= nb; k0 += 16) chunk<F, MR, NT, true>(w, ws, pf, x, xs, k0, 16, acc);
  if (k0 < nb) chunk<F, MR, NT, false>(w, ws, pf, x, xs, k0, int(nb - k0), acc);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

using MicroFn = void (*)(const uint8_t*, size_t, const uint8_t*, const uint8_t*, size_t, int64_t,
                         float*, int64_t);

// The whole tile, rows outer so a few rows of weights stay in L1 while every
// token of the tile reuses them; micro-tiles of 4 rows x 4 tokens.
template <class F>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  static constexpr MicroFn kMicro[4][4] = {
      {micro<F, 1, 1>, micro<F, 1, 2>, micro<F, 1, 3>, micro<F, 1, 4>},
      {micro<F, 2, 1>, micro<F, 2, 2>, micro<F, 2, 3>, micro<F, 2, 4>},
      {micro<F, 3, 1>, micro<F, 3, 2>, micro<F, 3, 3>, micro<F, 3, 4>},
      {micro<F, 4, 1>, micro<F, 4, 2>, micro<F, 4, 3>, micro<F, 4, 4>},
  };
  const int64_t nb = n / 32;
  int64_t r = 0;
  // Decode takes 8 rows at a time (the activation shuffles spread over more
  // rows) while two such micro-tiles fit in L1 (see the prefetch in chunk),
  // else 4.
  if (T == 1 && 8 * ws <= 12 * 1024) {
    for (; r + 8 <= R; r += 8) {
      micro<F, 8, 1>(w + r * ws, ws, w + (r + 8) * ws, x, xs, nb, y + r, ldy);
    }
  }
  for (; r < R; r += 4) {
    const int mr = R - r < 4 ? int(R - r) : 4;
    for (int64_t t = 0; t < T; t += 4) {
      const int nt = T - t < 4 ? int(T - t) : 4;
      kMicro[mr - 1][nt - 1](w + r * ws, ws, w + (r + 4) * ws, x + t * xs, xs, nb, y + t * ldy + r,
                             ldy);
    }
  }
}

}  // namespace
}  // namespace memwall::kernels
