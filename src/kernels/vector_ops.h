// Small f32 vector primitives for attention, one implementation per ISA
// chosen at run time (scalar reference in vector_ops.cpp).
#pragma once

#include <cstdint>

#include "kernels/isa.h"

namespace memwall::kernels {

struct VectorOps {
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);  // y += a * x
};

const VectorOps& vector_ops(Isa isa);  // the best implementation at or below isa

const VectorOps& vector_ops_scalar();
const VectorOps& vector_ops_avx2();
const VectorOps& vector_ops_avx512();

}  // namespace memwall::kernels
