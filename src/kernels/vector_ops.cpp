#include "kernels/vector_ops.h"

#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/ops.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

float dot(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

float exp_sum_scalar(float* x, int64_t n, float shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - shift));
  return float(sum);
}

// Decodes one value row (the codec's reference dequantization) and adds it
// in with each query's weight.
template <TensorType kType>
void mix_rows_quant(const float* p, int64_t ldp, int64_t nq, const uint8_t* v, int64_t v_stride,
                    int64_t n, int64_t D, float* out, int64_t ldo) {
  const WeightCodec& codec = kType == TensorType::Q8_0 ? codec_q8_0() : codec_q4_0();
  float row[512];
  for (int64_t d0 = 0; d0 < D; d0 += 512) {  // rows in pieces of at most 512 values
    const int64_t dn = std::min<int64_t>(512, D - d0);
    const size_t offset = size_t(d0 / 32) * (kType == TensorType::Q8_0 ? 34 : 18);
    for (int64_t j = 0; j < n; ++j) {
      codec.dequantize_row(v + j * v_stride + offset, row, dn);
      for (int64_t i = 0; i < nq; ++i) {
        const float pj = p[i * ldp + j];
        float* o = out + i * ldo + d0;
        for (int64_t d = 0; d < dn; ++d) o[d] += pj * row[d];
      }
    }
  }
}

void mix_rows_q8_0_scalar(const float* p, int64_t ldp, int64_t nq, const uint8_t* v,
                          int64_t v_stride, int64_t n, int64_t D, float* out, int64_t ldo) {
  mix_rows_quant<TensorType::Q8_0>(p, ldp, nq, v, v_stride, n, D, out, ldo);
}
void mix_rows_q4_0_scalar(const float* p, int64_t ldp, int64_t nq, const uint8_t* v,
                          int64_t v_stride, int64_t n, int64_t D, float* out, int64_t ldo) {
  mix_rows_quant<TensorType::Q4_0>(p, ldp, nq, v, v_stride, n, D, out, ldo);
}

namespace {

void mix_rows(const float* p, int64_t ldp, int64_t nq, const float* v, int64_t v_stride, int64_t n,
              int64_t D, float* out, int64_t ldo) {
  for (int64_t i = 0; i < nq; ++i) {
    float* o = out + i * ldo;
    for (int64_t j = 0; j < n; ++j) axpy(p[i * ldp + j], v + j * v_stride, o, D);
  }
}

void mix_rows_f16(const float* p, int64_t ldp, int64_t nq, const uint16_t* v, int64_t v_stride,
                  int64_t n, int64_t D, float* out, int64_t ldo) {
  for (int64_t i = 0; i < nq; ++i) {
    float* o = out + i * ldo;
    for (int64_t j = 0; j < n; ++j) {
      const float pj = p[i * ldp + j];
      for (int64_t d = 0; d < D; ++d) o[d] += pj * fp16_to_fp32(v[j * v_stride + d]);
    }
  }
}

}  // namespace

const VectorOps& vector_ops_scalar() {
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

const VectorOps& vector_ops(Isa isa) {
  if (isa >= Isa::kAvx512) return vector_ops_avx512();
  if (isa >= Isa::kAvx2) return vector_ops_avx2();
  return vector_ops_scalar();
}

}  // namespace memwall::kernels
