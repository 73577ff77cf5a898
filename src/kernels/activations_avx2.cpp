// quantize_activations_q8 (_q16, _q8_row) for the AVX2 target: one block of
// 32 = four ymm. Bit-identical to the scalar versions (see activations.cpp).
#include <cstring>

#include "kernels/simd_kernels.h"
#include "kernels/simd_q8_scale.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {

namespace {

__m256 abs8(__m256 v) {
  return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

float hmax8(__m256 m) {
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

int32_t hsum8_epi32(__m256i s) {
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s4);
}

// Four int32 vectors of values in int8 range as 32 int8 at q, in order.
void store_bytes32(const __m256i (&v)[4], int8_t* q) {
  // Saturating packs are exact in range; they interleave 128-bit lanes,
  // which the final dword permute undoes.
  const __m256i p16a = _mm256_packs_epi32(v[0], v[1]);
  const __m256i p16b = _mm256_packs_epi32(v[2], v[3]);
  const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b),
                                                 _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), p8);
}

// round(x[0..32) * id) as four int32 vectors.
void round32(const float* x, __m256 vid, __m256i (&v)[4]) {
  for (int i = 0; i < 4; ++i)
    v[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), vid));
}

__m256i sum4(const __m256i (&v)[4]) {
  return _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
}

// round(x[0..32) * id) as 32 int8 at q (|q| <= 127); returns their sum by lane.
__m256i quantize32(const float* x, __m256 vid, int8_t* q) {
  __m256i v[4];
  round32(x, vid, v);
  store_bytes32(v, q);
  return sum4(v);
}

float block_amax(const float* xb) {
  const __m256 m =
      _mm256_max_ps(_mm256_max_ps(abs8(_mm256_loadu_ps(xb)), abs8(_mm256_loadu_ps(xb + 8))),
                    _mm256_max_ps(abs8(_mm256_loadu_ps(xb + 16)), abs8(_mm256_loadu_ps(xb + 24))));
  return hmax8(m);
}

}  // namespace

void quantize_activations_q8_avx2(const float* x, BlockQ8x* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float d, id;
    q8_block_scale(block_amax(xb), d, id);
    out[b].sum = hsum8_epi32(quantize32(xb, _mm256_set1_ps(id), out[b].qs));
    out[b].d = d;
  }
}

void quantize_activations_q16_avx2(const float* x, BlockQ16x* out, int64_t n) {
  const __m256i c128 = _mm256_set1_epi32(128);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float d, id;
    q16_block_scale(block_amax(xb), d, id);
    __m256i q[4], hi[4], lo[4];
    round32(xb, _mm256_set1_ps(id), q);
    for (int i = 0; i < 4; ++i) {
      hi[i] = _mm256_srai_epi32(_mm256_add_epi32(q[i], c128), 8);
      lo[i] = _mm256_sub_epi32(q[i], _mm256_slli_epi32(hi[i], 8));
    }
    store_bytes32(hi, out[b].hi);  // |hi| <= 127, lo in -128..127
    store_bytes32(lo, out[b].lo);
    out[b].sum = hsum8_epi32(sum4(q));
    out[b].d = d;
  }
}

// One scale per token: max|x| over the whole row first, then 32 values per step.
void quantize_activations_q8_row_avx2(const float* x, uint8_t* out, int64_t cols) {
  __m256 m = _mm256_setzero_ps();
  for (int64_t i = 0; i < cols; i += 8) m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + i)));
  float d, id;
  q8_block_scale(hmax8(m), d, id);
  const __m256 vid = _mm256_set1_ps(id);
  auto* q = reinterpret_cast<int8_t*>(out + sizeof(Q8RowHeader));
  __m256i sum = _mm256_setzero_si256();
  for (int64_t i = 0; i < cols; i += 32) sum = _mm256_add_epi32(sum, quantize32(x + i, vid, q + i));
  const Q8RowHeader h{d, hsum8_epi32(sum)};
  std::memcpy(out, &h, sizeof h);
  const size_t used = sizeof(Q8RowHeader) + size_t(cols);
  std::memset(out + used, 0, q8_row_stride(cols) - used);
}

}  // namespace memwall::kernels
