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
  // softmax, exp_sum and the quantized value mixes: the scalar ones (not
  // written for AVX2 yet).
  static const VectorOps ops{dot,
                             axpy,
                             softmax,
                             exp_sum_scalar,
                             mix_rows,
                             mix_rows_f16,
                             mix_rows_q8_0_scalar,
                             mix_rows_q4_0_scalar};
  return ops;
}

}  // namespace memwall::kernels
