// Matrix products of weight matrices W [rows x cols] (any WeightFormat) with
// activations X [T x cols]: Y[t, r] = sum_c W[r, c] * X[t, c].
//
// Matrices that read the same input (Q, K and V; FFN gate and up) run as one
// group: the input is quantized once and every thread takes a share of the
// group's rows in a single dispatch, so a decode step pays few barriers.
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/activations.h"
#include "kernels/activations_k.h"
#include "kernels/gemm.h"
#include "kernels/matrix_view.h"

namespace memwall::kernels {

// What each weight format computes with, per precision (f32, f16 and bf16
// always take f32 activations in their SIMD kernels):
//
//   format               kExact           kFast                   kInt8
//   q4_0, q4_1, q8_0     codec, f32 x     packed kernel, Q16x     packed or row kernel, Q8x
//                                         (AVX-512 VNNI, AVX2;
//                                         row kernel, Q16x, for
//                                         mapped weights; scalar:
//                                         kExact)
//   q4_K, q5_K, q6_K,    codec, f32 x     row kernel, Q16K        row kernel, Q8K
//   tq1_0, tq2_0                          (every target)          (every target)
//   nf4, nf4_dq,         codec, f32 x     row kernel, Q16x        row kernel, Q8x
//   q2_g64, q3_g64,                       (every target)          (every target)
//   q5_0, q5_1
//   w8a8                 codec, f32 x     row kernel, Q8 per      the same: int8
//                                         token (every target)    activations are
//                                                                 the type's A8
//
// Q16x/Q8x scale each 32 activations; Q16K/Q8K each 256 (activations_k.h),
// since a k-quant super-block is 256 weights: 16-bit values keep relative
// error below 1/32512 of the super-block's largest activation. On synthetic
// k-quant models (C = 256, vs the numpy reference) that is max logit error
// 2-3e-4 of the largest logit under kFast, against 4e-5 for q4_0's Q16x,
// 2e-7 under kExact and 1.5e-2 under kInt8 (llama.cpp: 1.5e-2).
enum class Precision {
  kExact,  // f32 activations everywhere: matches an f32 reference to rounding
  kFast,   // quantized weights meet 16-bit activations (BlockQ16x, BlockQ16K)
           // in integer dot products: KL < 1e-7 from exact on the default
           // model. Formats without such kernels here run kExact instead.
  kInt8,   // 8-bit activations (BlockQ8x, BlockQ8K), as llama.cpp: faster
           // prefill, but KL ~3.5e-3 and ~96% top-1 agreement with exact on
           // the default model
};

// Which quantized forms of the input a model's matrices read under a
// precision (input_forms in model/weight_units.h says, from the weights):
// what MatmulInput::reserve and bytes_for size.
struct InputForms {
  bool blocks = false;   // BlockQ8x/Q16x (or the k-quants' 256-value blocks)
  bool q8_rows = false;  // per-token int8 records (w8a8)
};

// The activations a group of matrices reads: f32 rows, and their 8- or 16-bit
// blocks or per-token int8 records once a kernel asks for them (each made at
// most once per set()).
class MatmulInput {
 public:
  // x: [T x cols], row-major and contiguous; must stay valid while in use.
  void set(const float* x, int64_t T, int64_t cols);
  const float* f32() const { return x_; }
  const BlockQ8x* q8(ThreadPool& pool);     // cols must be a multiple of 32
  const BlockQ16x* q16(ThreadPool& pool);   // likewise
  const BlockQ8K* q8k(ThreadPool& pool);    // cols must be a multiple of 256
  const BlockQ16K* q16k(ThreadPool& pool);  // likewise
  // T records of q8_row_stride(cols) bytes (activations.h), 64-byte aligned.
  const uint8_t* q8_rows(ThreadPool& pool);  // cols must be a multiple of 32
  int64_t tokens() const { return T_; }
  // Sizes the forms the model reads for up to T rows of `cols` up front (so
  // a forward pass allocates nothing): the 8- or 16-bit blocks and the
  // per-token records; bytes_for says how much that holds (for blocks, the
  // larger of the 32- and 256-value forms). The 256-value blocks of k-quant
  // models are sized at their first use. Nothing under kExact.
  void reserve(int64_t T, int64_t cols, Precision precision, InputForms forms);
  static size_t bytes_for(int64_t T, int64_t cols, Precision precision, InputForms forms);
  int64_t cols() const { return cols_; }

 private:
  // Quantizes every row into `blocks` unless `done`; returns the blocks.
  template <class Block>
  const Block* quantized(ThreadPool& pool, std::vector<Block>& blocks, bool& done,
                         void (*quantize)(const float*, Block*, int64_t), int64_t values_per_block);

  const float* x_ = nullptr;
  int64_t T_ = 0, cols_ = 0;
  bool quantized_ = false, quantized16_ = false, quantized_k8_ = false, quantized_k16_ = false,
       quantized_rows_ = false;
  struct alignas(64) Line {
    uint8_t bytes[64];
  };
  std::vector<Line> q8_rows_;
  std::vector<BlockQ8x> q8_;
  std::vector<BlockQ16x> q16_;
  std::vector<BlockQ8K> q8k_;
  std::vector<BlockQ16K> q16k_;
};

struct MatmulOutput {
  const MatrixView* w;
  float* y;         // [T x w->rows], rows ldy floats apart
  int64_t ldy = 0;  // 0: w->rows (a part of a wider output sets it)
};

// The kernel matmul_group runs `w` with under `precision` on `isa` (`packed`:
// whether w is repacked, see packed_weights.h); null: the exact codec path.
const GemmKernel* choose_kernel(const MatrixView& w, Isa isa, Precision precision, bool packed);

// Runs every product of the group in one parallel dispatch. All matrices must
// have x.cols() columns (checked by the model when it binds weights).
void matmul_group(ThreadPool& pool, const std::vector<MatmulOutput>& group, MatmulInput& x,
                  Precision precision);

// One product; X is [T x w.cols], Y is [T x w.rows].
void matmul(ThreadPool& pool, const MatrixView& w, const float* x, int64_t T, float* y,
            Precision precision = Precision::kExact);

}  // namespace memwall::kernels
