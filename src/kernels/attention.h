// Causal attention for a block of queries that share one KV head, over K/V
// rows held in fixed-size pages (the KV pool's blocks), in two kernels:
//
//   materialized: the block's whole score matrix [nq x n_keys] in the
//     caller's scratch, then one softmax per row and one pass over V. Its
//     memory grows with the context (and, over a prefill, with its square).
//   flash: one page of keys at a time with an online softmax (running max
//     and sum per query, the output rescaled when the max grows), so scratch
//     is [nq x page] + [nq x D] whatever the context length.
//
// GQA needs no copies: every query head reads its KV head's rows in place.
// Scores are GEMM tiles with the keys as the weight rows: f32 and f16 keys
// against f32 queries, q8_0 and q4_0 keys against queries quantized to 8-bit
// blocks (as llama.cpp does for quantized caches). Values are mixed by
// VectorOps (f32, f16 directly; q8_0, q4_0 decoded a page at a time).
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/tensor_type.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/vector_ops.h"

namespace memwall::kernels {

// Where one KV head's K and V rows of one layer live.
struct PagedKv {
  const uint8_t* const* pages;      // each page's base, in position order
  int64_t page_tokens;              // positions per page
  size_t k_offset, v_offset;        // bytes from a page's base to its first K (V) row at this head
  size_t k_row_bytes, v_row_bytes;  // bytes between consecutive positions' rows
  TensorType k_type, v_type;        // F32, F16, Q8_0 or Q4_0
};

struct AttentionBlock {
  const float* q;  // query 0 of the block; queries q_stride floats apart
  int64_t q_stride;
  int64_t nq;  // queries in the block
  // Query i is at position first_pos + (i / heads) * step and sees keys
  // [0, that position]. step 1, heads 1: consecutive tokens of one head;
  // step 0: query heads of one token sharing a KV head (GQA decode); step 1,
  // heads = group: each token's group of query heads (GQA prefill). Sharing
  // a KV head's queries reads its K and V once for all of them.
  int64_t first_pos;
  int64_t step = 1;
  int64_t heads = 1;
  PagedKv kv;
  int64_t head_dim;
  float scale;  // usually 1 / sqrt(head_dim)
  float* out;   // output row 0; rows out_stride floats apart
  int64_t out_stride;
  // Flash only: attend over keys [key_begin, min(key_end, attention_keys))
  // (key_begin a multiple of the page size; key_end <= 0: no limit), and when
  // partial_max/partial_sum are set, leave out unnormalized and write each
  // query's running max and sum there, for merge_partials. One decode step
  // splits its keys this way so every thread has work whatever the KV heads.
  int64_t key_begin = 0, key_end = 0;
  float* partial_max = nullptr;
  float* partial_sum = nullptr;
};

enum class AttentionKind { kFlash, kMaterialized };
const char* attention_kind_name(AttentionKind k);  // "flash", "materialized"

// The kernels attention runs on one ISA target, looked up once per call site.
struct AttentionKernels {
  const GemmKernel* qk_f32;
  const GemmKernel* qk_f16;
  const GemmKernel* qk_q8_0;  // BlockQ8x queries
  const GemmKernel* qk_q4_0;
  const VectorOps* ops;
};
AttentionKernels attention_kernels(Isa isa);

// True when the KV cache can hold `type` (and head_dim fits its blocks).
bool kv_type_supported(TensorType type, int64_t head_dim);

// Floats of per-thread scratch one call needs: independent of the context.
size_t attention_scratch_floats(AttentionKind kind, int64_t nq, int64_t page_tokens,
                                int64_t head_dim);
// Keys the block's last query sees: the materialized kernel's score columns.
inline int64_t attention_keys(const AttentionBlock& b) {
  return b.first_pos + ((b.nq - 1) / b.heads) * b.step + 1;
}

// Combines `parts` partial flash results for nq queries (part c's
// unnormalized rows at out + c * nq * D, its max and sum at max/sum + c * nq)
// into normalized rows of merged (ldm floats apart).
void merge_partials(const float* out, const float* max, const float* sum, int64_t parts, int64_t nq,
                    int64_t D, float* merged, int64_t ldm);

// scores: the materialized kernel's [nq x attention_keys(b)] matrix (unused,
// may be null, for flash).
void attend(AttentionKind kind, const AttentionBlock& b, float* scratch, float* scores,
            const AttentionKernels& k);

}  // namespace memwall::kernels
