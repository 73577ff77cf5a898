// Causal attention for a block of consecutive queries of one head, with the
// score matrix of the block materialized ([nq x n_keys], the caller's
// scratch). Scores are one f32 GEMM tile (keys as the weight rows), the
// softmax and the value mix are SIMD (vector_ops.h). K and V rows of one
// KV head are `kv_stride` floats apart (the cache's position-major layout);
// GQA needs no copies: every query head reads its KV head's rows in place.
#pragma once

#include <cstdint>

#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/vector_ops.h"

namespace memwall::kernels {

struct AttentionBlock {
  const float* q;  // query 0 of the block; queries q_stride floats apart
  int64_t q_stride;
  int64_t nq;         // queries in the block
  int64_t first_pos;  // position of query 0: query i sees keys [0, first_pos + i * step]
  int64_t step = 1;   // 1: queries are consecutive tokens; 0: query heads of one
                      // token that share a KV head (GQA decode reads K and V once)
  const void* k;      // key row 0 of this head's KV head (f32, or f16 when kv_f16)
  const void* v;      // value row 0
  int64_t kv_stride;  // elements between consecutive positions' rows
  bool kv_f16 = false;
  int64_t head_dim;
  float scale;  // usually 1 / sqrt(head_dim)
  float* out;   // output row 0; rows out_stride floats apart
  int64_t out_stride;
};

// The kernels attention runs on one ISA target, looked up once per call site
// rather than once per block.
struct AttentionKernels {
  const GemmKernel* qk;      // f32 GEMM for the scores (keys as weight rows)
  const GemmKernel* qk_f16;  // the same over f16 keys
  const VectorOps* ops;      // softmax and the value mix
};
AttentionKernels attention_kernels(Isa isa);

// scratch: at least nq * (first_pos + (nq - 1) * step + 1) floats.
void attend_block(const AttentionBlock& b, float* scratch, const AttentionKernels& k);

}  // namespace memwall::kernels
