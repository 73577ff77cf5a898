// AVX2 machinery for the quantized-weight GEMM kernels (q4_0, q4_1, q8_0 with
// BlockQ8x activations): the ymm twin of simd_avx512_q8.h, with blocks taken
// two at a time (a "pair": lo = the first 16 weights of each block, one block
// per 128-bit lane; hi = the last 16) and scales eight blocks (a "chunk") at
// a time. Include only from *_avx2.cpp files; anonymous namespace for the
// reason given in simd_avx512_q8.h.
//
// Integer dot: vpmaddubsw (unsigned x signed bytes -> int16 pairs) and
// vpmaddwd with ones (-> int32); int32 lanes 0..3 hold block 0 of the pair,
// 4..7 block 1.
//
// BlockQ16x activations (the fast path without AVX-512 VNNI): the halves are
// rebuilt into int16 words X = 256 hi + lo once per token and pair, and the
// weights widened to words, so one vpmaddwd per 16 products is exact
// (|w| <= 128, |X| < 2^15). The byte trick cannot take them: q8_0's sign
// moves onto the activations, and a lo of -128 has no negation in int8.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/activations.h"
#include "kernels/simd_avx2_hsum.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

constexpr int kQ8xBytes = sizeof(BlockQ8x);
static_assert(offsetof(BlockQ8x, d) == 0 && offsetof(BlockQ8x, sum) == 4 &&
              offsetof(BlockQ8x, qs) == 8);

inline __m128i load16(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// 16 bytes from p and (if count == 2) from p + stride, one per 128-bit lane.
inline __m256i load_pair_lanes(const uint8_t* p, size_t stride, int count) {
  const __m256i lo = _mm256_castsi128_si256(load16(p));
  return count == 2 ? _mm256_inserti128_si256(lo, load16(p + stride), 1)
                    : _mm256_inserti128_si256(lo, _mm_setzero_si128(), 1);
}

struct XPair {
  __m256i lo, hi;
};

// A pair's bytes as int16 words in vpunpck order: lo[0] holds bytes 0..7 of
// each lane of the pair's .lo, lo[1] bytes 8..15; hi[] likewise from .hi.
// widen() takes each word's high byte from `high`.
struct Words4 {
  __m256i lo[2], hi[2];
};
inline Words4 widen(const XPair& b, const XPair& high) {
  return {{_mm256_unpacklo_epi8(b.lo, high.lo), _mm256_unpackhi_epi8(b.lo, high.lo)},
          {_mm256_unpacklo_epi8(b.hi, high.hi), _mm256_unpackhi_epi8(b.hi, high.hi)}};
}
inline __m256i sign_bytes(__m256i b) {
  return _mm256_cmpgt_epi8(_mm256_setzero_si256(), b);
}

// The exact int32 dot of two pairs of words (lanes as dot_u4_s8's).
inline __m256i dot_words(const Words4& a, const Words4& b) {
  return _mm256_add_epi32(
      _mm256_add_epi32(_mm256_madd_epi16(a.lo[0], b.lo[0]), _mm256_madd_epi16(a.lo[1], b.lo[1])),
      _mm256_add_epi32(_mm256_madd_epi16(a.hi[0], b.hi[0]), _mm256_madd_epi16(a.hi[1], b.hi[1])));
}

// Activations: kBytes per block; X is one token's pair of blocks; dot<F>
// the int32 dot of a weight pair with it.
struct ActQ8 {
  static constexpr int kBytes = kQ8xBytes;
  using X = XPair;
  static X load(const uint8_t* x, int count) {
    const uint8_t* qs = x + offsetof(BlockQ8x, qs);
    return {load_pair_lanes(qs, kBytes, count), load_pair_lanes(qs + 16, kBytes, count)};
  }
  template <class F>
  static __m256i dot(const typename F::WPair& w, const X& x) {
    return F::dot(w, x);
  }
};

struct ActQ16 {
  static constexpr int kBytes = sizeof(BlockQ16x);
  static_assert(offsetof(BlockQ16x, d) == 0 && offsetof(BlockQ16x, sum) == 4);
  using X = Words4;
  static X load(const uint8_t* x, int count) {
    const uint8_t* hi = x + offsetof(BlockQ16x, hi);
    const uint8_t* lo = x + offsetof(BlockQ16x, lo);
    const XPair h{load_pair_lanes(hi, kBytes, count), load_pair_lanes(hi + 16, kBytes, count)};
    const XPair l{load_pair_lanes(lo, kBytes, count), load_pair_lanes(lo + 16, kBytes, count)};
    // lo is the word's low byte read as unsigned: borrow 1 from hi when lo < 0.
    const XPair high{_mm256_add_epi8(h.lo, sign_bytes(l.lo)),
                     _mm256_add_epi8(h.hi, sign_bytes(l.hi))};
    return widen(l, high);
  }
  template <class F>
  static __m256i dot(const typename F::WPair& w, const X& x) {
    return dot_words(F::words(w), x);
  }
};

// d_x and sum_x of up to 8 activation blocks kBytes apart (zero beyond `count`).
template <int kBytes>
inline void load_x_scales8(const uint8_t* x, int count, __m256& d, __m256& sum) {
  alignas(32) float dd[8] = {};
  alignas(32) int32_t ss[8] = {};
  for (int k = 0; k < count; ++k) {
    __builtin_memcpy(&dd[k], x + k * kBytes, 4);
    __builtin_memcpy(&ss[k], x + k * kBytes + 4, 4);
  }
  d = _mm256_load_ps(dd);
  sum = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(ss)));
}

// The f16 at byte `offset` of up to 8 blocks `kBytes` apart, as floats.
template <int kBytes>
inline __m256 load_w_f16x8(const uint8_t* w, int offset, int count) {
  uint16_t v[8] = {};
  for (int k = 0; k < count; ++k) __builtin_memcpy(&v[k], w + k * kBytes + offset, 2);
  const __m128i h = _mm_setr_epi16(short(v[0]), short(v[1]), short(v[2]), short(v[3]), short(v[4]),
                                   short(v[5]), short(v[6]), short(v[7]));
  return _mm256_cvtph_ps(h);
}

// The unsigned x signed byte dot of 4-bit weights: exact, each int16 at most
// 2 * 15 * 128 per half, 7680 for both.
inline __m256i dot_u4_s8(__m256i a_lo, __m256i a_hi, __m256i b_lo, __m256i b_hi) {
  const __m256i p =
      _mm256_add_epi16(_mm256_maddubs_epi16(a_lo, b_lo), _mm256_maddubs_epi16(a_hi, b_hi));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// q4_0 {f16 d; u8 qs[16]} and q4_1 {f16 d; f16 m; u8 qs[16]}; fix terms as in
// simd_avx512_q8.h's Q4Format.
template <bool kHasMin>
struct Q4Format {
  static constexpr int kBytes = kHasMin ? 20 : 18;
  static constexpr int kQs = kHasMin ? 4 : 2;
  static constexpr bool kFix = true;
  static constexpr float kFixScale = kHasMin ? 1.0f : -8.0f;
  struct WPair {
    __m256i lo, hi;
  };
  static WPair load_w(const uint8_t* block, int count) {
    const __m256i z = load_pair_lanes(block + kQs, kBytes, count);
    const __m256i m = _mm256_set1_epi8(0x0f);
    return {_mm256_and_si256(z, m), _mm256_and_si256(_mm256_srli_epi16(z, 4), m)};
  }
  static __m256i dot(const WPair& w, const XPair& x) { return dot_u4_s8(w.lo, w.hi, x.lo, x.hi); }
  static Words4 words(const WPair& w) {
    const __m256i zero = _mm256_setzero_si256();
    return widen({w.lo, w.hi}, {zero, zero});
  }
  static void scales(const uint8_t* block, int count, __m256& d, __m256& fix) {
    d = load_w_f16x8<kBytes>(block, 0, count);
    fix = kHasMin ? load_w_f16x8<kBytes>(block, 2, count) : d;
  }
};

// q8_0 {f16 d; i8 qs[32]}. vpmaddubsw needs one unsigned operand and
// saturates int16, so the sign moves to the activations: |w| * (x negated
// where w < 0); pairs stay within 2 * 128 * 127. Activations are in
// [-127, 127] (the quantizer's range), so negating cannot overflow.
struct Q8_0Format {
  static constexpr int kBytes = 34;
  static constexpr bool kFix = false;
  static constexpr float kFixScale = 0.0f;
  struct WPair {
    __m256i lo, hi;
  };
  static WPair load_w(const uint8_t* block, int count) {
    return {load_pair_lanes(block + 2, kBytes, count), load_pair_lanes(block + 18, kBytes, count)};
  }
  static __m256i dot(const WPair& w, const XPair& x) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i lo =
        _mm256_maddubs_epi16(_mm256_sign_epi8(w.lo, w.lo), _mm256_sign_epi8(x.lo, w.lo));
    const __m256i hi =
        _mm256_maddubs_epi16(_mm256_sign_epi8(w.hi, w.hi), _mm256_sign_epi8(x.hi, w.hi));
    return _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, ones));
  }
  static Words4 words(const WPair& w) {
    return widen({w.lo, w.hi}, {sign_bytes(w.lo), sign_bytes(w.hi)});
  }
  static void scales(const uint8_t* block, int count, __m256& d, __m256& fix) {
    fix = d = load_w_f16x8<kBytes>(block, 0, count);
  }
};

// Lane l of a pair's int32 result belongs to block l / 4 of the pair.
inline __m256i pair_scale_index(int pair) {
  return _mm256_add_epi32(_mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), _mm256_set1_epi32(2 * pair));
}

// pf: where the next micro-tile's rows start, or null (see simd_avx512_q8.h).
template <class F, class A, int MR, int NT>
void micro(const uint8_t* w, size_t ws, const uint8_t* pf, const uint8_t* x, size_t xs, int64_t nb,
           float* y, int64_t ldy) {
  __m256 acc[MR][NT];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  for (int64_t k0 = 0; k0 < nb; k0 += 8) {
    const int count = nb - k0 < 8 ? int(nb - k0) : 8;
    __m256 dw[MR], fw[MR], dx[NT];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) F::scales(w + r * ws + k0 * F::kBytes, count, dw[r], fw[r]);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      __m256 sum;
      load_x_scales8<A::kBytes>(x + t * xs + k0 * A::kBytes, count, dx[t], sum);
      if constexpr (F::kFix) {
        const __m256 cx = _mm256_mul_ps(_mm256_mul_ps(dx[t], sum), _mm256_set1_ps(F::kFixScale));
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) acc[r][t] = _mm256_fmadd_ps(fw[r], cx, acc[r][t]);
      }
    }
    for (int p = 0; p < count; p += 2) {
      const int pc = count - p < 2 ? 1 : 2;
      const int64_t k = k0 + p;
      const __m256i sidx = pair_scale_index(p / 2);
      typename A::X xp[NT];
      __m256 dxp[NT];
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        xp[t] = A::load(x + t * xs + k * A::kBytes, pc);
        dxp[t] = _mm256_permutevar8x32_ps(dx[t], sidx);
      }
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        if (pf != nullptr && count == 8) {
          // Short rows side by side defeat the hardware prefetcher; fetch the
          // next micro-tile in address order, a pair's worth per pair.
          const uint8_t* ahead = pf + (k0 * MR + (p / 2 * MR + r) * 2) * F::kBytes;
#pragma GCC unroll 4
          for (int b = 0; b < 2 * F::kBytes; b += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(ahead + b), _MM_HINT_T0);
          }
          _mm_prefetch(reinterpret_cast<const char*>(ahead + 2 * F::kBytes - 1), _MM_HINT_T0);
        }
        const typename F::WPair wp = F::load_w(w + r * ws + k * F::kBytes, pc);
        const __m256 dwp = _mm256_permutevar8x32_ps(dw[r], sidx);
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
          const __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(A::template dot<F>(wp, xp[t])), dwp);
          acc[r][t] = _mm256_fmadd_ps(s, dxp[t], acc[r][t]);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum8(acc[r][t]);
  }
}

// Rows outer; micro-tiles of up to 4 rows x 2 tokens (16 ymm registers).
template <class F, class A = ActQ8>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  using Micro = void (*)(const uint8_t*, size_t, const uint8_t*, const uint8_t*, size_t, int64_t,
                         float*, int64_t);
  static constexpr Micro kMicro[4][2] = {
      {micro<F, A, 1, 1>, micro<F, A, 1, 2>},
      {micro<F, A, 2, 1>, micro<F, A, 2, 2>},
      {micro<F, A, 3, 1>, micro<F, A, 3, 2>},
      {micro<F, A, 4, 1>, micro<F, A, 4, 2>},
  };
  const int64_t nb = n / 32;
  for (int64_t r = 0; r < R; r += 4) {
    const int mr = R - r < 4 ? int(R - r) : 4;
    for (int64_t t = 0; t < T; t += 2) {
      const int nt = T - t < 2 ? int(T - t) : 2;
      const uint8_t* pf = t == 0 ? w + (r + 4) * ws : nullptr;
      kMicro[mr - 1][nt - 1](w + r * ws, ws, pf, x + t * xs, xs, nb, y + t * ldy + r, ldy);
    }
  }
}

}  // namespace
}  // namespace memwall::kernels
