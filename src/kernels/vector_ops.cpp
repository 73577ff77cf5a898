#include "kernels/vector_ops.h"

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

const VectorOps& vector_ops_scalar() {
  static const VectorOps ops{dot, axpy};
  return ops;
}

const VectorOps& vector_ops(Isa isa) {
  if (isa >= Isa::kAvx512) return vector_ops_avx512();
  if (isa >= Isa::kAvx2) return vector_ops_avx2();
  return vector_ops_scalar();
}

}  // namespace memwall::kernels
