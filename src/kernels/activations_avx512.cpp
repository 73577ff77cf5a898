// quantize_activations_q8 (_q16, _q8_row) for the AVX-512 targets: one block
// of 32 = two zmm. Bit-identical to the scalar versions (see activations.cpp).
#include <cstring>

#include "kernels/simd_kernels.h"
#include "kernels/simd_q8_scale.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

float block_amax(__m512 v0, __m512 v1) {
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
}

}  // namespace

void quantize_activations_q8_avx512(const float* x, BlockQ8x* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * 32);
    const __m512 v1 = _mm512_loadu_ps(x + b * 32 + 16);
    const float amax = block_amax(v0, v1);
    float d, id;
    q8_block_scale(amax, d, id);
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
    // |q| <= 127, so the truncating narrow (vpmovdb) is exact.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].qs), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].qs + 16), _mm512_cvtepi32_epi8(q1));
    out[b].d = d;
    out[b].sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
  }
}

void quantize_activations_q16_avx512(const float* x, BlockQ16x* out, int64_t n) {
  const __m512i c128 = _mm512_set1_epi32(128);
  for (int64_t b = 0; b < n / 32; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * 32);
    const __m512 v1 = _mm512_loadu_ps(x + b * 32 + 16);
    const float amax = block_amax(v0, v1);
    float d, id;
    q16_block_scale(amax, d, id);
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
    const __m512i h0 = _mm512_srai_epi32(_mm512_add_epi32(q0, c128), 8);
    const __m512i h1 = _mm512_srai_epi32(_mm512_add_epi32(q1, c128), 8);
    const __m512i l0 = _mm512_sub_epi32(q0, _mm512_slli_epi32(h0, 8));
    const __m512i l1 = _mm512_sub_epi32(q1, _mm512_slli_epi32(h1, 8));
    // Both halves fit int8, so the truncating narrow (vpmovdb) is exact.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].hi), _mm512_cvtepi32_epi8(h0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].hi + 16), _mm512_cvtepi32_epi8(h1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].lo), _mm512_cvtepi32_epi8(l0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].lo + 16), _mm512_cvtepi32_epi8(l1));
    out[b].d = d;
    out[b].sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
  }
}

// One scale per token: max|x| over the whole row first, then the same
// rounding as the block quantizers, 32 values per step.
void quantize_activations_q8_row_avx512(const float* x, uint8_t* out, int64_t cols) {
  __m512 m = _mm512_setzero_ps();
  for (int64_t i = 0; i < cols; i += 32) {
    m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i + 16)));
  }
  float d, id;
  q8_block_scale(_mm512_reduce_max_ps(m), d, id);
  const __m512 vid = _mm512_set1_ps(id);
  uint8_t* q = out + sizeof(Q8RowHeader);
  __m512i sum = _mm512_setzero_si512();
  for (int64_t i = 0; i < cols; i += 32) {
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), vid));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i + 16), vid));
    // |q| <= 127, so the truncating narrow (vpmovdb) is exact.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i + 16), _mm512_cvtepi32_epi8(q1));
    sum = _mm512_add_epi32(sum, _mm512_add_epi32(q0, q1));
  }
  const Q8RowHeader h{d, _mm512_reduce_add_epi32(sum)};
  std::memcpy(out, &h, sizeof h);
  const size_t used = sizeof(Q8RowHeader) + size_t(cols);
  std::memset(out + used, 0, q8_row_stride(cols) - used);
}

}  // namespace memwall::kernels
