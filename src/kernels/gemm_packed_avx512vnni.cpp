// GEMM tiles over packed weights (layout: packed_weights.h), AVX-512 VNNI.
//
// One zmm of packed quants is 4 consecutive weights of each of 16 rows, so
// one vpdpbusd with 4 activation bytes broadcast (an embedded-broadcast
// memory operand) adds 4 products into each row's int32 lane: a block of 32
// weights is 8 vpdpbusd per token, no shuffles. The weights are unpacked
// once per block and reused for every token of the micro-tile (up to
// kTokens), which is what makes prefill matrix-matrix work.
//
// With BlockQ16x activations (the fast path) each block takes two chains of
// 8 vpdpbusd, one per activation half, combined exactly as
// 256 * dot(w, hi) + dot(w, lo) before the one conversion to float.
//
// Per block and token the int32 sums become floats once:
//   q4_0: acc += d_w * d_x * (isum - 8 * sum_x)    (weights 0..15)
//   q8_0: acc += d_w * d_x * (isum - 128 * sum_x)  (weights stored as w + 128)
//   q4_1: acc += d_w * d_x * isum + m_w * d_x * sum_x
// with the offset folded into the integer accumulator's starting value.
#include <cstring>
#include <type_traits>

#include "kernels/packed_weights.h"
#include "kernels/simd_kernels.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

constexpr int kTokens = 8;  // tokens per micro-tile: 8 float accumulators
// Decode streams weights from DRAM once: prefetch this far ahead of the
// quants being read (and of the scales) into L1, and again much further ahead
// into L2, so enough misses are in flight: a core's L1 tracks too few
// outstanding misses to cover DRAM latency alone. Measured here (q4_0,
// 8192 x 2048, 2 threads): 84% -> 94% of a plain read of the same bytes, and
// 1B-shape q4_0 decode +16% end to end; nearer or farther distances gained less.
constexpr size_t kPrefetchAhead = 2048;
constexpr size_t kPrefetchFar = 16384;

template <TensorType kType>
struct Packed {
  static constexpr size_t kQuant = kType == TensorType::Q8_0 ? 512 : 256;
  static constexpr size_t kScale = kType == TensorType::Q4_1 ? 64 : 32;
  static constexpr int32_t kOffset = kType == TensorType::Q8_0   ? 128
                                     : kType == TensorType::Q4_0 ? 8
                                                                 : 0;
};

inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// The integer dot of one block of 16 rows (weights unpacked in w) with one
// token's activation block xb, and its float contribution to acc.
template <TensorType kType, class X>
inline __m512 block_dot(const __m512i (&w)[8], __m512 d, __m512 m, const uint8_t* xb, __m512 acc) {
  using P = Packed<kType>;
  constexpr bool kQ16 = std::is_same_v<X, BlockQ16x>;
  const int32_t sum = load_i32(xb + offsetof(X, sum));
  const __m512i seed = P::kOffset ? _mm512_set1_epi32(-P::kOffset * sum) : _mm512_setzero_si512();
  __m512i s;
  if constexpr (kQ16) {
    const uint8_t* hi = xb + offsetof(BlockQ16x, hi);
    const uint8_t* lo = xb + offsetof(BlockQ16x, lo);
    __m512i sh = _mm512_setzero_si512(), sl = seed;
    for (int p = 0; p < 8; ++p) {
      sh = _mm512_dpbusd_epi32(sh, w[p], _mm512_set1_epi32(load_i32(hi + 4 * p)));
      sl = _mm512_dpbusd_epi32(sl, w[p], _mm512_set1_epi32(load_i32(lo + 4 * p)));
    }
    s = _mm512_add_epi32(_mm512_slli_epi32(sh, 8), sl);
  } else {
    // Two chains of 4: one chain of 8 dependent vpdpbusd is latency-bound
    // when a single token leaves nothing else to overlap with.
    const uint8_t* xq = xb + offsetof(BlockQ8x, qs);
    __m512i s0 = seed, s1 = _mm512_setzero_si512();
    for (int p = 0; p < 8; p += 2) {
      s0 = _mm512_dpbusd_epi32(s0, w[p], _mm512_set1_epi32(load_i32(xq + 4 * p)));
      s1 = _mm512_dpbusd_epi32(s1, w[p + 1], _mm512_set1_epi32(load_i32(xq + 4 * p + 4)));
    }
    s = _mm512_add_epi32(s0, s1);
  }
  const float dx = load_f32(xb + offsetof(X, d));
  acc = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(dx)), _mm512_cvtepi32_ps(s), acc);
  if constexpr (kType == TensorType::Q4_1) {
    acc = _mm512_fmadd_ps(m, _mm512_set1_ps(dx * float(sum)), acc);
  }
  return acc;
}

template <TensorType kType>
inline void unpack_block(const uint8_t* q, __m512i (&w)[8]) {
  if constexpr (kType == TensorType::Q8_0) {
    for (int p = 0; p < 8; ++p) w[p] = _mm512_loadu_si512(q + 64 * p);
  } else {
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (int p = 0; p < 4; ++p) {
      const __m512i z = _mm512_loadu_si512(q + 64 * p);
      w[p] = _mm512_and_si512(z, low);
      w[p + 4] = _mm512_and_si512(_mm512_srli_epi16(z, 4), low);
    }
  }
}

template <TensorType kType>
inline void load_scales(const uint8_t* sc, __m512& d, __m512& m) {
  d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc)));
  m = _mm512_setzero_ps();
  if constexpr (kType == TensorType::Q4_1) {
    m = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + 32)));
  }
}

// 16 rows x kT tokens, over all nb blocks; y rows masked by `rows`.
template <TensorType kType, class X, int kT>
void micro_tile(const uint8_t* group, int64_t nb, const uint8_t* x, size_t x_stride, float* y,
                int64_t ldy, __mmask16 rows) {
  using P = Packed<kType>;
  const uint8_t* scales = group;
  const uint8_t* quants = group + size_t(nb) * P::kScale;
  __m512 acc[kT];
  for (int t = 0; t < kT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* q = quants + size_t(b) * P::kQuant;
    if constexpr (kT == 1) {
      // Groups lie back to back, so this runs on into the next group's
      // scales and quants: the one stream never restarts cold.
      for (size_t p = 0; p < P::kQuant; p += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(q + kPrefetchAhead + p), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(q + kPrefetchFar + p), _MM_HINT_T1);
      }
    }
    __m512i w[8];
    unpack_block<kType>(q, w);
    __m512 d, m;
    load_scales<kType>(scales + size_t(b) * P::kScale, d, m);
    for (int t = 0; t < kT; ++t) {
      acc[t] =
          block_dot<kType, X>(w, d, m, x + size_t(t) * x_stride + size_t(b) * sizeof(X), acc[t]);
    }
  }
  for (int t = 0; t < kT; ++t) _mm512_mask_storeu_ps(y + t * ldy, rows, acc[t]);
}

template <TensorType kType, class X, int kT>
void tokens_tail(const uint8_t* g, int64_t nb, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                 __mmask16 rows, int64_t left) {
  if constexpr (kT > 1) {
    if (left < kT) return tokens_tail<kType, X, kT - 1>(g, nb, x, xs, y, ldy, rows, left);
  }
  micro_tile<kType, X, kT>(g, nb, x, xs, y, ldy, rows);
}

template <TensorType kType, class X>
void packed_tile(const uint8_t* w, size_t w_stride, int64_t R, const uint8_t* x, size_t x_stride,
                 int64_t T, int64_t n, float* y, int64_t ldy) {
  const int64_t nb = n / 32;
  for (int64_t r = 0; r < R; r += kPackRows) {
    const uint8_t* group = w + size_t(r / kPackRows) * w_stride;
    const int64_t live = R - r < kPackRows ? R - r : kPackRows;
    const __mmask16 rows = __mmask16((1u << live) - 1);
    int64_t t = 0;
    for (; t + kTokens <= T; t += kTokens) {
      micro_tile<kType, X, kTokens>(group, nb, x + size_t(t) * x_stride, x_stride, y + t * ldy + r,
                                    ldy, rows);
    }
    if (t < T) {
      tokens_tail<kType, X, kTokens - 1>(group, nb, x + size_t(t) * x_stride, x_stride,
                                         y + t * ldy + r, ldy, rows, T - t);
    }
  }
}

}  // namespace

const GemmKernel kGemmQ8_0PackedAvx512Vnni{TensorType::Q8_0, Isa::kAvx512Vnni, ActivationKind::kQ8,
                                           packed_tile<TensorType::Q8_0, BlockQ8x>,
                                           WeightLayout::kPacked16};
const GemmKernel kGemmQ4_0PackedAvx512Vnni{TensorType::Q4_0, Isa::kAvx512Vnni, ActivationKind::kQ8,
                                           packed_tile<TensorType::Q4_0, BlockQ8x>,
                                           WeightLayout::kPacked16};
const GemmKernel kGemmQ4_1PackedAvx512Vnni{TensorType::Q4_1, Isa::kAvx512Vnni, ActivationKind::kQ8,
                                           packed_tile<TensorType::Q4_1, BlockQ8x>,
                                           WeightLayout::kPacked16};
const GemmKernel kGemmQ8_0Q16PackedAvx512Vnni{
    TensorType::Q8_0, Isa::kAvx512Vnni, ActivationKind::kQ16,
    packed_tile<TensorType::Q8_0, BlockQ16x>, WeightLayout::kPacked16};
const GemmKernel kGemmQ4_0Q16PackedAvx512Vnni{
    TensorType::Q4_0, Isa::kAvx512Vnni, ActivationKind::kQ16,
    packed_tile<TensorType::Q4_0, BlockQ16x>, WeightLayout::kPacked16};
const GemmKernel kGemmQ4_1Q16PackedAvx512Vnni{
    TensorType::Q4_1, Isa::kAvx512Vnni, ActivationKind::kQ16,
    packed_tile<TensorType::Q4_1, BlockQ16x>, WeightLayout::kPacked16};

}  // namespace memwall::kernels
