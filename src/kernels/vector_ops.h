// Small f32 vector primitives for attention, one implementation per ISA
// chosen at run time (scalar reference in vector_ops.cpp).
#pragma once

#include <cstdint>

#include "kernels/isa.h"

namespace memwall::kernels {

struct VectorOps {
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);  // y += a * x
  // In place: x = exp(x - max) / sum, over n >= 1 values.
  void (*softmax)(float* x, int64_t n);
  // In place: x = exp(x - shift) over n >= 0 values; returns their sum. The
  // online softmax of flash attention rescales by hand, so it needs the
  // unnormalized weights and their sum, not softmax's quotient.
  float (*exp_sum)(float* x, int64_t n, float shift);
  // out[i * ldo + d] += sum_j p[i * ldp + j] * v[j * v_stride + d], for i < nq,
  // j < n, d < D: attention's probabilities times its value rows, added to
  // what out holds (attention sums a page of values at a time).
  void (*mix_rows)(const float* p, int64_t ldp, int64_t nq, const float* v, int64_t v_stride,
                   int64_t n, int64_t D, float* out, int64_t ldo);
  // The same with f16 value rows (an f16 KV cache).
  void (*mix_rows_f16)(const float* p, int64_t ldp, int64_t nq, const uint16_t* v, int64_t v_stride,
                       int64_t n, int64_t D, float* out, int64_t ldo);
  // The same with q8_0 or q4_0 value rows (GGUF blocks of 32), v_stride in
  // bytes; D is a multiple of 32.
  void (*mix_rows_q8_0)(const float* p, int64_t ldp, int64_t nq, const uint8_t* v, int64_t v_stride,
                        int64_t n, int64_t D, float* out, int64_t ldo);
  void (*mix_rows_q4_0)(const float* p, int64_t ldp, int64_t nq, const uint8_t* v, int64_t v_stride,
                        int64_t n, int64_t D, float* out, int64_t ldo);
};

const VectorOps& vector_ops(Isa isa);  // the best implementation at or below isa

const VectorOps& vector_ops_scalar();
float exp_sum_scalar(float* x, int64_t n, float shift);  // targets without a vector exp
// Quantized value mixing for targets without their own.
void mix_rows_q8_0_scalar(const float* p, int64_t ldp, int64_t nq, const uint8_t* v,
                          int64_t v_stride, int64_t n, int64_t D, float* out, int64_t ldo);
void mix_rows_q4_0_scalar(const float* p, int64_t ldp, int64_t nq, const uint8_t* v,
                          int64_t v_stride, int64_t n, int64_t D, float* out, int64_t ldo);
const VectorOps& vector_ops_avx2();
const VectorOps& vector_ops_avx512();

}  // namespace memwall::kernels
