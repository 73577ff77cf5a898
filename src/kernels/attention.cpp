#include "kernels/attention.h"

namespace memwall::kernels {

AttentionKernels attention_kernels(Isa isa) {
  return {find_gemm_kernel(TensorType::F32, isa), find_gemm_kernel(TensorType::F16, isa),
          &vector_ops(isa)};
}

void attend_block(const AttentionBlock& b, float* scratch, const AttentionKernels& k) {
  const int64_t n_keys = b.first_pos + (b.nq - 1) * b.step + 1;  // what the last query sees
  const GemmKernel* qk = b.kv_f16 ? k.qk_f16 : k.qk;
  const VectorOps& ops = *k.ops;
  const size_t elem = b.kv_f16 ? sizeof(uint16_t) : sizeof(float);
  // scores[i * n_keys + j] = q_i . k_j: keys are the "weight rows".
  qk->tile(static_cast<const uint8_t*>(b.k), size_t(b.kv_stride) * elem, n_keys,
           reinterpret_cast<const uint8_t*>(b.q), size_t(b.q_stride) * sizeof(float), b.nq,
           b.head_dim, scratch, n_keys);
  for (int64_t i = 0; i < b.nq; ++i) {
    float* row = scratch + i * n_keys;
    const int64_t seen = b.first_pos + i * b.step + 1;
    for (int64_t j = 0; j < seen; ++j) row[j] *= b.scale;
    ops.softmax(row, seen);
    for (int64_t j = seen; j < n_keys; ++j) row[j] = 0.0f;  // causal mask
  }
  if (b.kv_f16) {
    ops.mix_rows_f16(scratch, n_keys, b.nq, static_cast<const uint16_t*>(b.v), b.kv_stride, n_keys,
                     b.head_dim, b.out, b.out_stride);
  } else {
    ops.mix_rows(scratch, n_keys, b.nq, static_cast<const float*>(b.v), b.kv_stride, n_keys,
                 b.head_dim, b.out, b.out_stride);
  }
}

}  // namespace memwall::kernels
