// q5_0 and q5_1 weights x BlockQ8x / BlockQ16x activations, AVX-512 VNNI
// (integer form: q5_kernels.h).
//
// Blocks go two at a time, one per 256-bit half of a zmm, levels in weight
// order: each block's 16 nibble bytes in two 128-bit lanes (low nibbles,
// then high), and the 5th bits straight from the two qh words as a 64-bit
// byte mask: one masked add of 16. vpdpbusd takes the unsigned levels
// against the signed activations; int32 lanes 0..7 belong to the first
// block, 8..15 to the second. q5_0's -16 offset starts the accumulator:
// -16 * (4-value sums of x) is computed once per token and block pair.
// BlockQ16x: (dot(q, hi) << 8) + dot(q, lo), exact in int32.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/activations.h"
#include "kernels/q5_kernels.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The levels of the blocks whose qh start at p and p + kBytes (only p when
// count == 1; the second half is then zero).
template <int kBytes>
inline __m512i levels(const uint8_t* p, int count) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4));
  const __m128i b = count == 2 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kBytes + 4))
                               : _mm_setzero_si128();
  const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(a)),
                                       _mm256_broadcastsi128_si256(b), 1);
  const __m512i nib = _mm512_and_si512(
      _mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), _mm512_set1_epi8(0x0f));
  const uint64_t qh = uint64_t(u32_at(p)) | (count == 2 ? uint64_t(u32_at(p + kBytes)) << 32 : 0);
  return _mm512_mask_add_epi8(nib, _cvtu64_mask64(qh), nib, _mm512_set1_epi8(16));
}

// 32 bytes at p and (count == 2) at p + stride, one per 256-bit half.
inline __m512i load_halves(const uint8_t* p, size_t stride, int count) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i b = count == 2 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + stride))
                               : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

// The value of block 0 in lanes 0..7, block 1 in 8..15.
inline __m512 halves(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

// -16 * (sums of 4 consecutive x), the q5_0 offset as a starting accumulator.
inline __m512i offset_start(__m512i x) {
  return _mm512_sub_epi32(_mm512_setzero_si512(),
                          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(16), x));
}

// One token's activation pair: values, q5_0's start, d_x per half and
// d_x * sum X per block.
struct ActQ8 {
  static constexpr size_t kBytes = sizeof(BlockQ8x);
  static constexpr ActivationKind kKind = ActivationKind::kQ8;
  struct X {
    __m512i q, start;
    __m512 dx;
    float cx[2];  // d_x * sum X per block
  };
  template <bool kOffset>
  static void load(const uint8_t* p, int count, X& x) {
    x.q = load_halves(p + offsetof(BlockQ8x, qs), kBytes, count);
    x.start = kOffset ? offset_start(x.q) : _mm512_setzero_si512();
    float d[2] = {};
    x.cx[1] = 0;
    for (int i = 0; i < count; ++i) {
      std::memcpy(&d[i], p + i * kBytes, 4);
      x.cx[i] = d[i] * float(int32_t(u32_at(p + i * kBytes + 4)));
    }
    x.dx = halves(d[0], d[1]);
  }
  static __m512i dot(__m512i w, const X& x) { return _mm512_dpbusd_epi32(x.start, w, x.q); }
};

struct ActQ16 {
  static constexpr size_t kBytes = sizeof(BlockQ16x);
  static constexpr ActivationKind kKind = ActivationKind::kQ16;
  struct X {
    __m512i hi, lo, start;
    __m512 dx;
    float cx[2];  // d_x * sum X per block
  };
  template <bool kOffset>
  static void load(const uint8_t* p, int count, X& x) {
    x.hi = load_halves(p + offsetof(BlockQ16x, hi), kBytes, count);
    x.lo = load_halves(p + offsetof(BlockQ16x, lo), kBytes, count);
    x.start = kOffset
                  ? _mm512_add_epi32(_mm512_slli_epi32(offset_start(x.hi), 8), offset_start(x.lo))
                  : _mm512_setzero_si512();
    float d[2] = {};
    x.cx[1] = 0;
    for (int i = 0; i < count; ++i) {
      std::memcpy(&d[i], p + i * kBytes, 4);
      x.cx[i] = d[i] * float(int32_t(u32_at(p + i * kBytes + 4)));
    }
    x.dx = halves(d[0], d[1]);
  }
  static __m512i dot(__m512i w, const X& x) {
    const __m512i h = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x.hi);
    return _mm512_dpbusd_epi32(_mm512_add_epi32(x.start, _mm512_slli_epi32(h, 8)), w, x.lo);
  }
};

// MR rows x NT tokens over nb blocks, a pair of blocks per step. kMin: q5_1
// (24-byte blocks), else q5_0 (22). pf: where the next micro-tile's rows
// start, or null: MR short rows read side by side defeat the hardware
// prefetcher, so each step also fetches its share of the next micro-tile.
template <bool kMin, class A, int MR, int NT>
void micro(const uint8_t* w, size_t ws, const uint8_t* pf, const uint8_t* x, size_t xs, int64_t nb,
           float* y, int64_t ldy) {
  constexpr int kBytes = kMin ? 24 : 22;
  constexpr int kQh = kMin ? 4 : 2;
  const int64_t steps = (nb + 1) / 2;
  const size_t pf_step = (MR * ws + size_t(steps) - 1) / size_t(steps);
  __m512 acc[MR][NT];
  float fix[MR][NT] = {};
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < nb; k += 2) {
    const int count = nb - k < 2 ? 1 : 2;
    if (pf != nullptr) {
      for (size_t b = 0; b < pf_step; b += 64)
        __builtin_prefetch(pf + size_t(k / 2) * pf_step + b, 0, 3);
    }
    typename A::X xb[NT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) A::template load<!kMin>(x + t * xs + k * A::kBytes, count, xb[t]);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const uint8_t* b = w + r * ws + k * kBytes;
      const __m512i q = levels<kBytes>(b + kQh, count);
      const __m512 d = halves(f16_at(b), count == 2 ? f16_at(b + kBytes) : 0.0f);
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const __m512 isum = _mm512_cvtepi32_ps(A::dot(q, xb[t]));
        acc[r][t] = _mm512_fmadd_ps(isum, _mm512_mul_ps(d, xb[t].dx), acc[r][t]);
      }
      if constexpr (kMin) {
        // m * d_x * sum X per block (a lone last block's second term is 0).
        const float m0 = f16_at(b + 2), m1 = count == 2 ? f16_at(b + kBytes + 2) : 0.0f;
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) fix[r][t] += m0 * xb[t].cx[0] + m1 * xb[t].cx[1];
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]) + fix[r][t];
  }
}

// Decode: 8 rows x 1 token, prefetching the next 8 rows; prefill: up to 4
// rows x 4 tokens, each pair's levels unpacked once for every token.
template <bool kMin, class A>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  using Micro = void (*)(const uint8_t*, size_t, const uint8_t*, const uint8_t*, size_t, int64_t,
                         float*, int64_t);
  static constexpr Micro kMicro[4][4] = {
      {micro<kMin, A, 1, 1>, micro<kMin, A, 1, 2>, micro<kMin, A, 1, 3>, micro<kMin, A, 1, 4>},
      {micro<kMin, A, 2, 1>, micro<kMin, A, 2, 2>, micro<kMin, A, 2, 3>, micro<kMin, A, 2, 4>},
      {micro<kMin, A, 3, 1>, micro<kMin, A, 3, 2>, micro<kMin, A, 3, 3>, micro<kMin, A, 3, 4>},
      {micro<kMin, A, 4, 1>, micro<kMin, A, 4, 2>, micro<kMin, A, 4, 3>, micro<kMin, A, 4, 4>},
  };
  const int64_t nb = n / 32;
  int64_t r = 0;
  if (T == 1) {
    for (; r + 8 <= R; r += 8)
      micro<kMin, A, 8, 1>(w + r * ws, ws, w + (r + 8) * ws, x, xs, nb, y + r, ldy);
  }
  for (; r < R; r += 4) {
    const int mr = R - r < 4 ? int(R - r) : 4;
    for (int64_t t = 0; t < T; t += 4) {
      const int nt = T - t < 4 ? int(T - t) : 4;
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

const GemmKernel kGemmQ5Avx512Vnni[kQ5Kernels] = {
    q5_kernel<false, ActQ8>(Isa::kAvx512Vnni),
    q5_kernel<false, ActQ16>(Isa::kAvx512Vnni),
    q5_kernel<true, ActQ8>(Isa::kAvx512Vnni),
    q5_kernel<true, ActQ16>(Isa::kAvx512Vnni),
};

}  // namespace memwall::kernels
