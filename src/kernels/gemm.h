// GEMM micro-kernels: one per (weight format, ISA), each computing a tile
//   Y[t * ldy + r] = sum_c W[r, c] * X[t, c]    for r < R, t < T
// where W's rows are `w_stride` bytes apart in the format's block layout and
// X's rows are `x_stride` bytes apart: f32 values, or BlockQ8x blocks when the
// kernel's activation kind is kQ8 (then the caller quantizes X once with
// quantize_activations_q8 and shares it across every matrix that reads it),
// and so on for the other kinds below.
// Packed kernels (layout kPacked16, see packed_weights.h) read W as groups of
// 16 interleaved rows: `w` is the group holding the tile's first row (a
// multiple of 16), `w_stride` the bytes of one group.
// n (= cols) is a multiple of the format's block size. Kernels never
// allocate, never throw, and are called with disjoint Y ranges from many threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/tensor_type.h"
#include "kernels/isa.h"

namespace memwall::kernels {

// f32, BlockQ8x, BlockQ16x; BlockQ8K and BlockQ16K (activations_k.h) for the
// k-quant and ternary formats, whose kernels want one scale per 256 values;
// kQ8Row: one int8 record per token with a single scale (Q8RowHeader, then
// the values; x_stride = q8_row_stride(n)), for w8a8.
enum class ActivationKind { kF32, kQ8, kQ16, kQ8K, kQ16K, kQ8Row };
enum class WeightLayout { kRows, kPacked16 };

struct GemmKernel {
  TensorType type;
  Isa isa;  // the target this kernel was written for
  ActivationKind activation;
  void (*tile)(const uint8_t* w, size_t w_stride, int64_t R, const uint8_t* x, size_t x_stride,
               int64_t T, int64_t n, float* y, int64_t ldy);
  WeightLayout layout = WeightLayout::kRows;
  // Rows per prefill work item, for kernels with a per-call setup to amortize
  // (0: matmul's default).
  int64_t prefill_rows = 0;
};

// The best kernel for `type` and `layout` at or below `isa`; nullptr if none.
// Float formats' kernels take f32 whatever `activation` says; the others
// are matched on it (w8a8: kQ8Row).
const GemmKernel* find_gemm_kernel(TensorType type, Isa isa,
                                   WeightLayout layout = WeightLayout::kRows,
                                   ActivationKind activation = ActivationKind::kQ8);

}  // namespace memwall::kernels
