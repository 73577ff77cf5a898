#include "kernels/simd_x86.h"

#include <cmath>
#include <cstring>

#include "kernels/vector_ops.h"

namespace memwall::kernels {
namespace {

// Not _mm512_reduce_add_ps: GCC 12 warns (falsely) inside it at -O3.
float hsum(__m512 v) {
  // Swap the 256-bit halves and add: the low half then holds the sum of both.
  const __m256 s8 = _mm512_castps512_ps256(_mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float dot(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  }
  if (i < n) {  // masked tail
    const __mmask16 m = __mmask16((1u << (n - i)) - 1);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  return hsum(_mm512_add_ps(acc0, acc1));
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(
        y + i, m,
        _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

__mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

// exp(x) to about 2 ulp: x = n ln2 + r with |r| <= ln2 / 2, a degree-6
// Taylor polynomial for e^r (error < 2e-7), and vscalefps for the 2^n.
// Below -87.3 the result flushes toward 0 instead of going denormal.
__m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2, split in two
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 e = _mm512_set1_ps(1.0f / 720);
  e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(1.0f / 120));
  e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(1.0f / 24));
  e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(1.0f / 6));
  e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(0.5f));
  e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(1.0f));
  e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(e, n);
}

void softmax(float* x, int64_t n) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, tail_mask(n - i), x + i));
  }
  // Not _mm512_reduce_max_ps: GCC 12 warns (falsely) inside it, as for hsum.
  __m256 m8 = _mm256_max_ps(_mm512_castps512_ps256(mx),
                            _mm512_castps512_ps256(_mm512_shuffle_f32x4(mx, mx, 0x4E)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const __m512 vmax = _mm512_set1_ps(_mm_cvtss_f32(m4));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax));
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
    _mm512_mask_storeu_ps(x + i, m, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / hsum(sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
  }
}

float exp_sum(float* x, int64_t n, float shift) {
  const __m512 vs = _mm512_set1_ps(shift);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
    _mm512_mask_storeu_ps(x + i, m, e);
  }
  return hsum(sum);
}

inline __m512 load16(__mmask16 m, const float* v) {
  return _mm512_maskz_loadu_ps(m, v);
}
inline __m512 load16(__mmask16 m, const uint16_t* v) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, v));
}

// kQ queries x 64 columns of D: 4 * kQ accumulators stay in registers while
// each value row (f32 or f16) is loaded once for all kQ queries.
template <int kQ, class V>
void mix_block(const float* p, int64_t ldp, const V* v, int64_t v_stride, int64_t n, int64_t dn,
               float* out, int64_t ldo) {
  __mmask16 m[4];
  for (int c = 0; c < 4; ++c) m[c] = tail_mask(dn - 16 * c > 0 ? dn - 16 * c : 0);
  __m512 acc[kQ][4];
  for (int i = 0; i < kQ; ++i)
    for (int c = 0; c < 4; ++c) acc[i][c] = _mm512_maskz_loadu_ps(m[c], out + i * ldo + 16 * c);
  for (int64_t j = 0; j < n; ++j) {
    const V* vr = v + j * v_stride;
    __m512 vv[4];
    for (int c = 0; c < 4; ++c) vv[c] = load16(m[c], vr + 16 * c);
    for (int i = 0; i < kQ; ++i) {
      const __m512 pb = _mm512_set1_ps(p[i * ldp + j]);
      for (int c = 0; c < 4; ++c) acc[i][c] = _mm512_fmadd_ps(pb, vv[c], acc[i][c]);
    }
  }
  for (int i = 0; i < kQ; ++i)
    for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(out + i * ldo + 16 * c, m[c], acc[i][c]);
}

template <class V>
void mix_rows_of(const float* p, int64_t ldp, int64_t nq, const V* v, int64_t v_stride, int64_t n,
                 int64_t D, float* out, int64_t ldo) {
  for (int64_t d0 = 0; d0 < D; d0 += 64) {
    const int64_t dn = D - d0 < 64 ? D - d0 : 64;
    int64_t i = 0;
    for (; i + 4 <= nq; i += 4) {
      mix_block<4, V>(p + i * ldp, ldp, v + d0, v_stride, n, dn, out + i * ldo + d0, ldo);
    }
    // The rest in one pass over V (GQA decode: a KV head's 2 or 3 query heads).
    const float* pi = p + i * ldp;
    float* oi = out + i * ldo + d0;
    if (nq - i == 3) mix_block<3, V>(pi, ldp, v + d0, v_stride, n, dn, oi, ldo);
    if (nq - i == 2) mix_block<2, V>(pi, ldp, v + d0, v_stride, n, dn, oi, ldo);
    if (nq - i == 1) mix_block<1, V>(pi, ldp, v + d0, v_stride, n, dn, oi, ldo);
  }
}

void mix_rows(const float* p, int64_t ldp, int64_t nq, const float* v, int64_t v_stride, int64_t n,
              int64_t D, float* out, int64_t ldo) {
  mix_rows_of(p, ldp, nq, v, v_stride, n, D, out, ldo);
}
void mix_rows_f16(const float* p, int64_t ldp, int64_t nq, const uint16_t* v, int64_t v_stride,
                  int64_t n, int64_t D, float* out, int64_t ldo) {
  mix_rows_of(p, ldp, nq, v, v_stride, n, D, out, ldo);
}

// 16 values of a q8_0 / q4_0 row starting at value 16 * c, decoded with their
// block's scale.
inline __m512 q8_0_values(const uint8_t* row, int64_t c) {
  const uint8_t* block = row + (c / 2) * 34;
  uint16_t d;
  std::memcpy(&d, block, 2);
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 + (c % 2) * 16));
  return _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(d)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
}
inline __m512 q4_0_values(const uint8_t* row, int64_t c) {
  const uint8_t* block = row + (c / 2) * 18;
  uint16_t d;
  std::memcpy(&d, block, 2);
  // Values 0..15 of a block are the low nibbles of its 16 bytes, 16..31 the high ones.
  __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2)));
  if (c % 2) q = _mm512_srli_epi32(q, 4);
  q = _mm512_sub_epi32(_mm512_and_si512(q, _mm512_set1_epi32(0x0f)), _mm512_set1_epi32(8));
  return _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(d)), _mm512_cvtepi32_ps(q));
}

// kQ queries x 64 values (4 chunks of 16, all whole: D is a multiple of 32).
template <int kQ, __m512 (*kLoad)(const uint8_t*, int64_t)>
void mix_block_quant(const float* p, int64_t ldp, const uint8_t* v, int64_t v_stride, int64_t n,
                     int64_t c0, int chunks, float* out, int64_t ldo) {
  __m512 acc[kQ][4];
  for (int i = 0; i < kQ; ++i)
    for (int c = 0; c < chunks; ++c) acc[i][c] = _mm512_loadu_ps(out + i * ldo + 16 * c);
  for (int64_t j = 0; j < n; ++j) {
    const uint8_t* vr = v + j * v_stride;
    __m512 vv[4];
    for (int c = 0; c < chunks; ++c) vv[c] = kLoad(vr, c0 + c);
    for (int i = 0; i < kQ; ++i) {
      const __m512 pb = _mm512_set1_ps(p[i * ldp + j]);
      for (int c = 0; c < chunks; ++c) acc[i][c] = _mm512_fmadd_ps(pb, vv[c], acc[i][c]);
    }
  }
  for (int i = 0; i < kQ; ++i)
    for (int c = 0; c < chunks; ++c) _mm512_storeu_ps(out + i * ldo + 16 * c, acc[i][c]);
}

template <__m512 (*kLoad)(const uint8_t*, int64_t)>
void mix_rows_quant(const float* p, int64_t ldp, int64_t nq, const uint8_t* v, int64_t v_stride,
                    int64_t n, int64_t D, float* out, int64_t ldo) {
  for (int64_t d0 = 0; d0 < D; d0 += 64) {
    const int chunks = D - d0 >= 64 ? 4 : int((D - d0) / 16);
    const int64_t c0 = d0 / 16;
    int64_t i = 0;
    for (; i + 4 <= nq; i += 4) {
      mix_block_quant<4, kLoad>(p + i * ldp, ldp, v, v_stride, n, c0, chunks, out + i * ldo + d0,
                                ldo);
    }
    const float* pi = p + i * ldp;
    float* oi = out + i * ldo + d0;
    if (nq - i == 3) mix_block_quant<3, kLoad>(pi, ldp, v, v_stride, n, c0, chunks, oi, ldo);
    if (nq - i == 2) mix_block_quant<2, kLoad>(pi, ldp, v, v_stride, n, c0, chunks, oi, ldo);
    if (nq - i == 1) mix_block_quant<1, kLoad>(pi, ldp, v, v_stride, n, c0, chunks, oi, ldo);
  }
}

}  // namespace

const VectorOps& vector_ops_avx512() {
  static const VectorOps ops{dot,
                             axpy,
                             softmax,
                             exp_sum,
                             mix_rows,
                             mix_rows_f16,
                             mix_rows_quant<q8_0_values>,
                             mix_rows_quant<q4_0_values>};
  return ops;
}

}  // namespace memwall::kernels
