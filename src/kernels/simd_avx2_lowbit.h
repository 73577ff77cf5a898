// AVX2 GEMM tiles for nf4, nf4_dq, q2_g64 and q3_g64 with BlockQ8x /
// BlockQ16x activations (integer form: lowbit_kernels.h). Include only from
// *_avx2.cpp files; anonymous namespace so each target gets its own copy (see
// simd_avx512_q8.h).
//
// A 64-weight block is two ymm of codes, one per 32-value activation block,
// so each half's int32 dot is scaled by a * d_x of its own activation block.
// q2/q3 codes are unsigned (<= 7) and go straight into vpmaddubsw. NF4 with
// 8-bit activations: signed int8 codes from a 16-byte vpshufb table (as
// llama.cpp does for IQ4_NL). NF4 with 16-bit activations: int16 codes (two
// vpshufb tables for the low and high bytes, interleaved into words) against
// the activations rebuilt as int16 words the same way, through vpmaddwd, as
// simd_avx512_lowbit.h does with vpdpwssd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/lowbit_kernels.h"
#include "kernels/simd_avx2_hsum.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

inline __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// The f16 at p in every lane.
inline __m256 broadcast_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _mm256_cvtph_ps(_mm_set1_epi16(short(h)));
}

struct Table16 {
  uint8_t v[16];
};

inline __m256i broadcast_table(const Table16& t) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.v)));
}

// Byte codes of a block: ymm h holds weights 32h .. 32h + 31.
struct Bytes {
  __m256i u[2];
};
// Word codes: half h's bytes 0..7 of each 128-bit lane as words in lo[h],
// bytes 8..15 in hi[h] (vpunpck order).
struct Words {
  __m256i lo[2], hi[2];
};

// nf4 / nf4_dq: half h's 32 indices are the low (h = 0) or high nibbles.
inline void nf4_indices(const uint8_t* qs, __m256i (&idx)[2]) {
  const __m256i z = load32(qs), m = _mm256_set1_epi8(0x0f);
  idx[0] = _mm256_and_si256(z, m);
  idx[1] = _mm256_and_si256(_mm256_srli_epi16(z, 4), m);
}

// Where nf4 and nf4_dq keep block k's indices and its scale over kFold.
struct Nf4Layout {
  static constexpr float kFold = 1.0f;
  static const uint8_t* qs(const uint8_t* row, int64_t k) { return row + 34 * k + 2; }
  static __m256 scale(const uint8_t* row, int64_t k) { return broadcast_f16(row + 34 * k); }
};
// d_k = D * s_k / 255.
struct Nf4DqLayout {
  static constexpr float kFold = 1.0f / 255.0f;
  static const uint8_t* qs(const uint8_t* row, int64_t k) {
    return row + 134 * (k / 4) + 6 + 32 * (k % 4);
  }
  static __m256 scale(const uint8_t* row, int64_t k) {
    const uint8_t* sb = row + 134 * (k / 4);
    return _mm256_mul_ps(broadcast_f16(sb), _mm256_set1_ps(float(sb[2 + k % 4])));
  }
};

// Formats provide W weights(row, k), scale(row, k) = a / kFold in every lane
// (kFold rides on the activation scales) and, with kMin, min(row, k) = b.
// kSigned: byte codes are signed (the dot moves their sign to x).

// NF4 as signed bytes kNf4Codes (8-bit activations).
template <class L>
struct Nf4Bytes : L {
  using W = Bytes;
  static constexpr float kFold = L::kFold / 127.0f;
  static constexpr bool kSigned = true, kMin = false;
  static W weights(const uint8_t* row, int64_t k) {
    static constexpr Table16 kTable = [] {
      Table16 t{};
      for (int i = 0; i < 16; ++i) t.v[i] = uint8_t(kNf4Codes[i]);
      return t;
    }();
    __m256i idx[2];
    nf4_indices(L::qs(row, k), idx);
    const __m256i lut = broadcast_table(kTable);
    return {{_mm256_shuffle_epi8(lut, idx[0]), _mm256_shuffle_epi8(lut, idx[1])}};
  }
  static __m256 min(const uint8_t*, int64_t) { return _mm256_setzero_ps(); }
};

// NF4 as int16 kNf4Codes16 (16-bit activations): each code's low and high
// byte from two tables, interleaved into words.
template <class L>
struct Nf4Words : L {
  using W = Words;
  static constexpr float kFold = L::kFold / float(kNf4Wide);
  static constexpr bool kSigned = false, kMin = false;
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
    __m256i idx[2];
    nf4_indices(L::qs(row, k), idx);
    const __m256i tl = broadcast_table(kLow), th = broadcast_table(kHigh);
    W w;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256i lo = _mm256_shuffle_epi8(tl, idx[h]), hi = _mm256_shuffle_epi8(th, idx[h]);
      w.lo[h] = _mm256_unpacklo_epi8(lo, hi);
      w.hi[h] = _mm256_unpackhi_epi8(lo, hi);
    }
    return w;
  }
  static __m256 min(const uint8_t*, int64_t) {
    return _mm256_setzero_ps();
  }
};

// 32 bits -> 32 bytes, 0xff where the bit is set.
inline __m256i expand_bits(uint32_t bits) {
  const __m256i v = _mm256_set1_epi32(int(bits));
  const __m256i byte_of_bit = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                               2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  const __m256i s = _mm256_and_si256(_mm256_shuffle_epi8(v, byte_of_bit), bit);
  return _mm256_cmpeq_epi8(s, bit);
}

// q2_g64 / q3_g64: the 16 low-bit bytes in both 128-bit lanes, each lane
// shifted to the bits of its 16 weights (ymm 0: shifts 0, 2; ymm 1: 4, 6).
template <bool kThree>
struct FormatGroup {
  using W = Bytes;
  static constexpr int kBytes = kThree ? 28 : 20;
  static constexpr float kFold = 1.0f;
  static constexpr bool kSigned = false, kMin = true;
  static W weights(const uint8_t* row, int64_t k) {
    const uint8_t* p = row + kBytes * k;
    const __m256i v =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4)));
    const __m256i m = _mm256_set1_epi8(3);
    W c;
    c.u[0] = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 2, 2)), m);
    c.u[1] = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(4, 4, 6, 6)), m);
    if constexpr (kThree) {
      uint32_t lo, hi;
      std::memcpy(&lo, p + 20, 4);
      std::memcpy(&hi, p + 24, 4);
      const __m256i four = _mm256_set1_epi8(4);
      c.u[0] = _mm256_add_epi8(c.u[0], _mm256_and_si256(expand_bits(lo), four));
      c.u[1] = _mm256_add_epi8(c.u[1], _mm256_and_si256(expand_bits(hi), four));
    }
    return c;
  }
  static __m256 scale(const uint8_t* row, int64_t k) { return broadcast_f16(row + kBytes * k); }
  static __m256 min(const uint8_t* row, int64_t k) { return broadcast_f16(row + kBytes * k + 2); }
};

// Byte codes x one pass of 32 activations -> 8 int32 partial sums. Signed
// codes: |x| is the unsigned side (16-bit activations' low halves reach
// -128, whose negation int8 cannot hold but whose absolute value is 128 as
// an unsigned byte) and the codes carry x's sign; pairs stay within
// 2 * 128 * 127.
template <bool kSigned>
inline __m256i dot32(__m256i u, __m256i x) {
  const __m256i p = kSigned ? _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(u, x))
                            : _mm256_maddubs_epi16(u, x);
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// Per half h: d_x(h) * kFold in every lane; sx: d_x0 * sum0 + d_x1 * sum1 in
// lane 0 (q2/q3's m * sum term).
template <class F, class Block>
inline void load_x_scales(const uint8_t* p, __m256 (&dx)[2], __m256& sx) {
  float s = 0;
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    float d;
    int32_t sum;
    std::memcpy(&d, p + h * sizeof(Block) + offsetof(Block, d), 4);
    std::memcpy(&sum, p + h * sizeof(Block) + offsetof(Block, sum), 4);
    dx[h] = _mm256_set1_ps(d * F::kFold);
    s += d * float(sum);
  }
  sx = _mm256_setr_ps(s, 0, 0, 0, 0, 0, 0, 0);
}

// Activations: A::X holds one token's two activation blocks for one weight
// block; A::dot(w, x, h) is half h's int32 partial sums.
struct ActQ8 {
  static constexpr size_t kBytes = sizeof(BlockQ8x);
  struct X {
    __m256i q[2];
    __m256 dx[2], sx;
  };
  template <class F>
  static void load(const uint8_t* p, X& x) {
    for (int h = 0; h < 2; ++h) x.q[h] = load32(p + h * kBytes + offsetof(BlockQ8x, qs));
    load_x_scales<F, BlockQ8x>(p, x.dx, x.sx);
  }
  template <class F>
  static __m256i dot(const Bytes& w, const X& x, int h) {
    return dot32<F::kSigned>(w.u[h], x.q[h]);
  }
};

// 16-bit activations against byte codes: 256 * dot(hi) + dot(lo), exact in
// int32 (lanes hold 4 products each).
struct ActQ16 {
  static constexpr size_t kBytes = sizeof(BlockQ16x);
  struct X {
    __m256i hi[2], lo[2];
    __m256 dx[2], sx;
  };
  template <class F>
  static void load(const uint8_t* p, X& x) {
    for (int h = 0; h < 2; ++h) {
      x.hi[h] = load32(p + h * kBytes + offsetof(BlockQ16x, hi));
      x.lo[h] = load32(p + h * kBytes + offsetof(BlockQ16x, lo));
    }
    load_x_scales<F, BlockQ16x>(p, x.dx, x.sx);
  }
  template <class F>
  static __m256i dot(const Bytes& w, const X& x, int h) {
    return _mm256_add_epi32(_mm256_slli_epi32(dot32<F::kSigned>(w.u[h], x.hi[h]), 8),
                            dot32<F::kSigned>(w.u[h], x.lo[h]));
  }
};

// 16-bit activations as int16 words (interleaved as Words: lo as the low
// byte, hi less lo's sign bit as the high one, so the word is 256 hi + lo)
// against int16 NF4 codes: lanes sum 4 products, at most 4 * 16383 * 32512.
struct ActQ16Words {
  static constexpr size_t kBytes = sizeof(BlockQ16x);
  struct X {
    Words q;
    __m256 dx[2], sx;
  };
  template <class F>
  static void load(const uint8_t* p, X& x) {
    for (int h = 0; h < 2; ++h) {
      const __m256i hi = load32(p + h * kBytes + offsetof(BlockQ16x, hi));
      const __m256i lo = load32(p + h * kBytes + offsetof(BlockQ16x, lo));
      const __m256i hi_adj = _mm256_add_epi8(hi, _mm256_cmpgt_epi8(_mm256_setzero_si256(), lo));
      x.q.lo[h] = _mm256_unpacklo_epi8(lo, hi_adj);
      x.q.hi[h] = _mm256_unpackhi_epi8(lo, hi_adj);
    }
    load_x_scales<F, BlockQ16x>(p, x.dx, x.sx);
  }
  template <class F>
  static __m256i dot(const Words& w, const X& x, int h) {
    return _mm256_add_epi32(_mm256_madd_epi16(w.lo[h], x.q.lo[h]),
                            _mm256_madd_epi16(w.hi[h], x.q.hi[h]));
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
  __m256 acc[MR][NT];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < nb; ++k) {
    if (pf != nullptr) {
      for (size_t b = 0; b < pf_step; b += 64)
        __builtin_prefetch(pf + size_t(k) * pf_step + b, 0, 3);
    }
    typename A::X xb[NT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) A::template load<F>(x + t * xs + 2 * k * A::kBytes, xb[t]);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const typename F::W c = F::weights(w + r * ws, k);
      const __m256 a = F::scale(w + r * ws, k);
      const __m256 b = F::min(w + r * ws, k);
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256 isum = _mm256_cvtepi32_ps(A::template dot<F>(c, xb[t], h));
          acc[r][t] = _mm256_fmadd_ps(isum, _mm256_mul_ps(a, xb[t].dx[h]), acc[r][t]);
        }
        if constexpr (F::kMin) acc[r][t] = _mm256_fmadd_ps(b, xb[t].sx, acc[r][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum8(acc[r][t]);
  }
}

// Decode: 4 rows x 1 token; prefill: 2 rows x up to 2 tokens (16 ymm).
template <class F, class A>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  using Micro = void (*)(const uint8_t*, size_t, const uint8_t*, const uint8_t*, size_t, int64_t,
                         float*, int64_t);
  static constexpr Micro kDecode[4] = {micro<F, A, 1, 1>, micro<F, A, 2, 1>, micro<F, A, 3, 1>,
                                       micro<F, A, 4, 1>};
  static constexpr Micro kPrefill[2][2] = {{micro<F, A, 1, 1>, micro<F, A, 1, 2>},
                                           {micro<F, A, 2, 1>, micro<F, A, 2, 2>}};
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
    for (int64_t t = 0; t < T; t += 2) {
      const int nt = T - t < 2 ? int(T - t) : 2;
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
