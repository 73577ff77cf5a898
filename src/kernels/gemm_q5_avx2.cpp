// q5_0 and q5_1 weights x BlockQ8x / BlockQ16x activations, AVX2 (integer
// form: q5_kernels.h). Also what the avx512 target without VNNI runs.
//
// A block's 32 levels are one ymm of unsigned bytes in weight order: the 16
// nibble bytes in both lanes (lane 0 masked to the low nibbles, lane 1
// shifted to the high), OR 0x10 where qh's bit is set (qh broadcast, each
// byte's bit picked by a shuffle and a per-byte mask). vpmaddubsw takes them
// against the signed activations (pairs <= 2 * 31 * 128, no saturation),
// vpmaddwd with ones sums to int32. q5_0's -16 offset is folded into the
// int16 pairs: vpmaddubsw(16, x) is computed once per token and block and
// subtracted, leaving pairs of (q - 16) x within 2 * 16 * 128. BlockQ16x
// takes both halves: 256 * dot(q, hi) + dot(q, lo), exact in int32.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/activations.h"
#include "kernels/q5_kernels.h"
#include "kernels/simd_avx2_hsum.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

inline __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// The 32 levels of the block whose qh starts at p (the nibbles follow).
inline __m256i levels(const uint8_t* p) {
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  const __m256i v =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4)));
  const __m256i nib = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)),
                                       _mm256_set1_epi8(0x0f));
  const __m256i byte_of_bit = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                               2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  const __m256i s =
      _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(int(qh)), byte_of_bit), bit);
  return _mm256_or_si256(nib, _mm256_and_si256(_mm256_cmpeq_epi8(s, bit), _mm256_set1_epi8(0x10)));
}

// int16 pairs of q * x, less 16 * x when kOffset (q5_0).
template <bool kOffset>
inline __m256i pairs(__m256i q, __m256i x, __m256i x16) {
  const __m256i p = _mm256_maddubs_epi16(q, x);
  return kOffset ? _mm256_sub_epi16(p, x16) : p;
}

// One token's activation block: values, the offset pairs, d_x and d_x * sum.
struct ActQ8 {
  static constexpr size_t kBytes = sizeof(BlockQ8x);
  static constexpr ActivationKind kKind = ActivationKind::kQ8;
  struct X {
    __m256i q, q16;
    float dx, cx;
  };
  template <bool kOffset>
  static void load(const uint8_t* p, X& x) {
    x.q = load32(p + offsetof(BlockQ8x, qs));
    if constexpr (kOffset) x.q16 = _mm256_maddubs_epi16(_mm256_set1_epi8(16), x.q);
    int32_t sum;
    std::memcpy(&x.dx, p, 4);
    std::memcpy(&sum, p + 4, 4);
    x.cx = x.dx * float(sum);
  }
  template <bool kOffset>
  static __m256i dot(__m256i w, const X& x) {
    return _mm256_madd_epi16(pairs<kOffset>(w, x.q, x.q16), _mm256_set1_epi16(1));
  }
};

struct ActQ16 {
  static constexpr size_t kBytes = sizeof(BlockQ16x);
  static constexpr ActivationKind kKind = ActivationKind::kQ16;
  struct X {
    __m256i hi, lo, hi16, lo16;
    float dx, cx;
  };
  template <bool kOffset>
  static void load(const uint8_t* p, X& x) {
    x.hi = load32(p + offsetof(BlockQ16x, hi));
    x.lo = load32(p + offsetof(BlockQ16x, lo));
    if constexpr (kOffset) {
      x.hi16 = _mm256_maddubs_epi16(_mm256_set1_epi8(16), x.hi);
      x.lo16 = _mm256_maddubs_epi16(_mm256_set1_epi8(16), x.lo);
    }
    int32_t sum;
    std::memcpy(&x.dx, p, 4);
    std::memcpy(&sum, p + 4, 4);
    x.cx = x.dx * float(sum);
  }
  template <bool kOffset>
  static __m256i dot(__m256i w, const X& x) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i h = _mm256_madd_epi16(pairs<kOffset>(w, x.hi, x.hi16), ones);
    const __m256i l = _mm256_madd_epi16(pairs<kOffset>(w, x.lo, x.lo16), ones);
    return _mm256_add_epi32(_mm256_slli_epi32(h, 8), l);
  }
};

// MR rows x NT tokens over nb blocks. kMin: q5_1 (24-byte blocks), else q5_0
// (22). pf: where the next micro-tile's rows start, or null; MR short rows
// read side by side defeat the hardware prefetcher, so each block step also
// fetches its share of the next micro-tile, in address order.
template <bool kMin, class A, int MR, int NT>
void micro(const uint8_t* w, size_t ws, const uint8_t* pf, const uint8_t* x, size_t xs, int64_t nb,
           float* y, int64_t ldy) {
  constexpr int kBytes = kMin ? 24 : 22;
  constexpr int kQh = kMin ? 4 : 2;
  const size_t pf_step = (MR * ws + size_t(nb) - 1) / size_t(nb);
  __m256 acc[MR][NT];
  float fix[MR][NT] = {};
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
    for (int t = 0; t < NT; ++t) A::template load<!kMin>(x + t * xs + k * A::kBytes, xb[t]);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const uint8_t* b = w + r * ws + k * kBytes;
      const __m256i q = levels(b + kQh);
      const float d = f16_at(b);
      const float m = kMin ? f16_at(b + 2) : 0.0f;
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const __m256 isum = _mm256_cvtepi32_ps(A::template dot<!kMin>(q, xb[t]));
        acc[r][t] = _mm256_fmadd_ps(isum, _mm256_set1_ps(d * xb[t].dx), acc[r][t]);
        if constexpr (kMin) fix[r][t] += m * xb[t].cx;
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum8(acc[r][t]) + fix[r][t];
  }
}

// Decode: 4 rows x 1 token, prefetching the next 4 rows; prefill: up to 4
// rows x 2 tokens, each block's levels unpacked once for both tokens.
template <bool kMin, class A>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  using Micro = void (*)(const uint8_t*, size_t, const uint8_t*, const uint8_t*, size_t, int64_t,
                         float*, int64_t);
  static constexpr Micro kMicro[4][2] = {
      {micro<kMin, A, 1, 1>, micro<kMin, A, 1, 2>},
      {micro<kMin, A, 2, 1>, micro<kMin, A, 2, 2>},
      {micro<kMin, A, 3, 1>, micro<kMin, A, 3, 2>},
      {micro<kMin, A, 4, 1>, micro<kMin, A, 4, 2>},
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

template <bool kMin, class A>
constexpr GemmKernel q5_kernel(Isa isa) {
  return {kMin ? TensorType::Q5_1 : TensorType::Q5_0, isa, A::kKind, tile<kMin, A>};
}

}  // namespace

const GemmKernel kGemmQ5Avx2[kQ5Kernels] = {
    q5_kernel<false, ActQ8>(Isa::kAvx2),
    q5_kernel<false, ActQ16>(Isa::kAvx2),
    q5_kernel<true, ActQ8>(Isa::kAvx2),
    q5_kernel<true, ActQ16>(Isa::kAvx2),
};

}  // namespace memwall::kernels
