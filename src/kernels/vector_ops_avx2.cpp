#include <immintrin.h>

#include "kernels/vector_ops.h"

#include "kernels/ops.h"

namespace memwall::kernels {
namespace {

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

// exp(x) as exp512 in vector_ops_avx512.cpp (x = n ln2 + r, degree-6
// polynomial for e^r), with 2^n built in the exponent field since AVX2 has
// no vscalefps. x is clamped to [-87.3, 88.7], so n stays in [-126, 128].
__m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504089f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2, split in two
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 e = _mm256_set1_ps(1.0f / 720);
  e = _mm256_fmadd_ps(e, r, _mm256_set1_ps(1.0f / 120));
  e = _mm256_fmadd_ps(e, r, _mm256_set1_ps(1.0f / 24));
  e = _mm256_fmadd_ps(e, r, _mm256_set1_ps(1.0f / 6));
  e = _mm256_fmadd_ps(e, r, _mm256_set1_ps(0.5f));
  e = _mm256_fmadd_ps(e, r, _mm256_set1_ps(1.0f));
  e = _mm256_fmadd_ps(e, r, _mm256_set1_ps(1.0f));
  // 2^n as (n + 127) << 23 in float bits, in two halves so that n = 128
  // (x near 88.7) does not overflow the exponent field.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i half = _mm256_srai_epi32(ni, 1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 p0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
  const __m256 p1 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(e, p0), p1);
}

// The first `left` (< 8) lanes set.
inline __m256i tail_mask8(int64_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(left)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float exp_sum(float* x, int64_t n, float shift) {
  const __m256 vs = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    sum = _mm256_add_ps(sum, e);
    _mm256_storeu_ps(x + i, e);
  }
  if (i < n) {
    const __m256i m = tail_mask8(n - i);
    const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vs)),
                                   _mm256_castsi256_ps(m));
    sum = _mm256_add_ps(sum, e);
    _mm256_maskstore_ps(x + i, m, e);
  }
  return hsum(sum);
}

inline __m256 load8(const float* v) {
  return _mm256_loadu_ps(v);
}
inline __m256 load8(const uint16_t* v) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
}
inline float to_f32(float x) {
  return x;
}
inline float to_f32(uint16_t h) {
  return _cvtsh_ss(h);
}

// kQ queries x 32 columns of D (4 ymm each), as in the AVX-512 version; V is
// f32 or f16.
template <int kQ, class V>
void mix_block(const float* p, int64_t ldp, const V* v, int64_t v_stride, int64_t n, float* out,
               int64_t ldo) {
  __m256 acc[kQ][4];
  for (int i = 0; i < kQ; ++i)
    for (int c = 0; c < 4; ++c) acc[i][c] = _mm256_loadu_ps(out + i * ldo + 8 * c);
  for (int64_t j = 0; j < n; ++j) {
    const V* vr = v + j * v_stride;
    __m256 vv[4];
    for (int c = 0; c < 4; ++c) vv[c] = load8(vr + 8 * c);
    for (int i = 0; i < kQ; ++i) {
      const __m256 pb = _mm256_set1_ps(p[i * ldp + j]);
      for (int c = 0; c < 4; ++c) acc[i][c] = _mm256_fmadd_ps(pb, vv[c], acc[i][c]);
    }
  }
  for (int i = 0; i < kQ; ++i)
    for (int c = 0; c < 4; ++c) _mm256_storeu_ps(out + i * ldo + 8 * c, acc[i][c]);
}

template <class V>
void mix_rows_of(const float* p, int64_t ldp, int64_t nq, const V* v, int64_t v_stride, int64_t n,
                 int64_t D, float* out, int64_t ldo) {
  int64_t d0 = 0;
  for (; d0 + 32 <= D; d0 += 32) {
    int64_t i = 0;
    for (; i + 4 <= nq; i += 4)
      mix_block<4, V>(p + i * ldp, ldp, v + d0, v_stride, n, out + i * ldo + d0, ldo);
    const float* pi = p + i * ldp;
    float* oi = out + i * ldo + d0;
    if (nq - i == 3) mix_block<3, V>(pi, ldp, v + d0, v_stride, n, oi, ldo);
    if (nq - i == 2) mix_block<2, V>(pi, ldp, v + d0, v_stride, n, oi, ldo);
    if (nq - i == 1) mix_block<1, V>(pi, ldp, v + d0, v_stride, n, oi, ldo);
  }
  for (int64_t i = 0; i < nq && d0 < D; ++i) {  // columns past the last multiple of 32
    float* o = out + i * ldo;
    for (int64_t j = 0; j < n; ++j) {
      const float pj = p[i * ldp + j];
      for (int64_t d = d0; d < D; ++d) o[d] += pj * to_f32(v[j * v_stride + d]);
    }
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

}  // namespace

const VectorOps& vector_ops_avx2() {
  // softmax and the quantized value mixes: the scalar ones (not written for
  // AVX2 yet).
  static const VectorOps ops{dot,
                             axpy,
                             softmax,
                             exp_sum,
                             mix_rows,
                             mix_rows_f16,
                             mix_rows_q8_0_scalar,
                             mix_rows_q4_0_scalar};
  return ops;
}

}  // namespace memwall::kernels
