// AVX2 GEMM tiles for nf4, nf4_dq, q2_g64 and q3_g64 with BlockQ8x /
// BlockQ16x activations (integer form: lowbit_kernels.h). Include only from
// *_avx2.cpp files; anonymous namespace so each target gets its own copy (see
// simd_avx512_q8.h).
//
// A 64-weight block is two ymm of codes, one per 32-value activation block,
// so each half's int32 dot is scaled by a * d_x of its own activation block.
// q2/q3 codes are unsigned (<= 7) and go straight into vpmaddubsw. NF4 codes
// are signed (a 16-byte vpshufb table, as llama.cpp does for IQ4_NL): the
// sign moves to the codes and the unsigned operand is |x|, since 16-bit
// activations' low halves reach -128, whose negation int8 cannot hold but
// whose absolute value is 128 as an unsigned byte; pairs stay within
// 2 * 128 * 127.
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

inline float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

struct Codes {
  __m256i u[2];  // weights 0..31, 32..63
};

// nf4 / nf4_dq: 32 index bytes -> signed codes in weight order.
inline Codes nf4_codes(const uint8_t* qs) {
  const __m256i lut =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kNf4Codes)));
  const __m256i z = load32(qs), m = _mm256_set1_epi8(0x0f);
  return {{_mm256_shuffle_epi8(lut, _mm256_and_si256(z, m)),
           _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(z, 4), m))}};
}

struct FormatNf4 {
  static constexpr bool kSigned = true;
  static void load(const uint8_t* row, int64_t k, Codes& c, float& a, float& b) {
    const uint8_t* p = row + 34 * k;
    c = nf4_codes(p + 2);
    a = load_f16(p) * (1.0f / 127.0f);
    b = 0;
  }
};

struct FormatNf4Dq {
  static constexpr bool kSigned = true;
  static void load(const uint8_t* row, int64_t k, Codes& c, float& a, float& b) {
    const uint8_t* sb = row + 134 * (k / 4);
    const int i = int(k % 4);
    c = nf4_codes(sb + 6 + 32 * i);
    a = load_f16(sb) * (float(sb[2 + i]) / 255.0f) * (1.0f / 127.0f);
    b = 0;
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
  static constexpr bool kSigned = false;
  static void load(const uint8_t* row, int64_t k, Codes& c, float& a, float& b) {
    const uint8_t* p = row + (kThree ? 28 : 20) * k;
    const __m256i v =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4)));
    const __m256i m = _mm256_set1_epi8(3);
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
    a = load_f16(p);
    b = load_f16(p + 2);
  }
};

// Codes x one pass of 32 activations -> 8 int32 partial sums.
template <bool kSigned>
inline __m256i dot32(__m256i u, __m256i x, __m256i x_abs) {
  const __m256i p =
      kSigned ? _mm256_maddubs_epi16(x_abs, _mm256_sign_epi8(u, x)) : _mm256_maddubs_epi16(u, x);
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// One token's activations for one weight block: per half, the 8-bit passes
// (and their absolute values for signed codes) and d_x; the sum term's lane.
template <int kPasses>
struct XBlock {
  __m256i q[2][kPasses], q_abs[2][kPasses];
  __m256 dx[2];
  __m256 sx;  // d_x0 * sum0 + d_x1 * sum1 in lane 0
};

template <class Block, int kPasses, bool kSigned>
inline void load_x(const uint8_t* p, const size_t (&offsets)[kPasses], XBlock<kPasses>& x) {
  float sx = 0;
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const uint8_t* b = p + h * sizeof(Block);
#pragma GCC unroll 2
    for (int i = 0; i < kPasses; ++i) {
      x.q[h][i] = load32(b + offsets[i]);
      if constexpr (kSigned) x.q_abs[h][i] = _mm256_abs_epi8(x.q[h][i]);
    }
    float d;
    int32_t s;
    std::memcpy(&d, b + offsetof(Block, d), 4);
    std::memcpy(&s, b + offsetof(Block, sum), 4);
    x.dx[h] = _mm256_set1_ps(d);
    sx += d * float(s);
  }
  x.sx = _mm256_setr_ps(sx, 0, 0, 0, 0, 0, 0, 0);
}

struct ActQ8 {
  static constexpr int kPasses = 1;
  static constexpr size_t kBytes = sizeof(BlockQ8x);
  static constexpr size_t kOffsets[1] = {offsetof(BlockQ8x, qs)};
  template <bool kSigned>
  static void load(const uint8_t* p, XBlock<1>& x) {
    load_x<BlockQ8x, 1, kSigned>(p, kOffsets, x);
  }
  template <bool kSigned>
  static __m256i dot(__m256i u, const XBlock<1>& x, int h) {
    return dot32<kSigned>(u, x.q[h][0], x.q_abs[h][0]);
  }
};

// 256 * dot(hi) + dot(lo), exact in int32 (lanes hold 4 products each).
struct ActQ16 {
  static constexpr int kPasses = 2;
  static constexpr size_t kBytes = sizeof(BlockQ16x);
  static constexpr size_t kOffsets[2] = {offsetof(BlockQ16x, hi), offsetof(BlockQ16x, lo)};
  template <bool kSigned>
  static void load(const uint8_t* p, XBlock<2>& x) {
    load_x<BlockQ16x, 2, kSigned>(p, kOffsets, x);
  }
  template <bool kSigned>
  static __m256i dot(__m256i u, const XBlock<2>& x, int h) {
    const __m256i hi = dot32<kSigned>(u, x.q[h][0], x.q_abs[h][0]);
    return _mm256_add_epi32(_mm256_slli_epi32(hi, 8), dot32<kSigned>(u, x.q[h][1], x.q_abs[h][1]));
  }
};

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

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
    XBlock<A::kPasses> xb[NT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      A::template load<F::kSigned>(x + t * xs + 2 * k * A::kBytes, xb[t]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      Codes c;
      float a, b;
      F::load(w + r * ws, k, c, a, b);
      const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256 isum = _mm256_cvtepi32_ps(A::template dot<F::kSigned>(c.u[h], xb[t], h));
          acc[r][t] = _mm256_fmadd_ps(isum, _mm256_mul_ps(va, xb[t].dx[h]), acc[r][t]);
        }
        acc[r][t] = _mm256_fmadd_ps(vb, xb[t].sx, acc[r][t]);
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
  return {type, isa, A::kPasses == 1 ? ActivationKind::kQ8 : ActivationKind::kQ16, tile<F, A>};
}

}  // namespace
}  // namespace memwall::kernels
