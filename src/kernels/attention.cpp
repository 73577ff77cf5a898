#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/activations.h"

namespace memwall::kernels {
namespace {

// Flash attention scores this many keys (whole pages) per online-softmax
// step: one page of 16 keys is too little work per GEMM call and rescale.
constexpr int64_t kFlashTileKeys = 64;

int64_t tile_pages(int64_t page_tokens) {
  return std::max<int64_t>(1, kFlashTileKeys / page_tokens);
}

bool quantized(TensorType t) {
  return t == TensorType::Q8_0 || t == TensorType::Q4_0;
}

size_t q8_floats(int64_t nq, int64_t D) {  // quantized queries, in floats
  return size_t(nq) * size_t(D / 32) * sizeof(BlockQ8x) / sizeof(float);
}

// The pieces both kernels share: scores of one page, and its value mix.
class PageOps {
 public:
  PageOps(const AttentionBlock& b, const AttentionKernels& k, float* qx)
      : b_(b), kv_(b.kv), ops_(*k.ops) {
    const int64_t D = b.head_dim;
    switch (kv_.k_type) {
      case TensorType::F16:
        qk_ = k.qk_f16;
        break;
      case TensorType::Q8_0:
        qk_ = k.qk_q8_0;
        break;
      case TensorType::Q4_0:
        qk_ = k.qk_q4_0;
        break;
      default:
        qk_ = k.qk_f32;
    }
    if (quantized(kv_.k_type)) {
      auto* blocks = reinterpret_cast<BlockQ8x*>(qx);
      for (int64_t i = 0; i < b.nq; ++i) {
        quantize_activations_q8(b.q + i * b.q_stride, blocks + i * (D / 32), D);
      }
      x_ = reinterpret_cast<const uint8_t*>(blocks);
      x_stride_ = size_t(D / 32) * sizeof(BlockQ8x);
    } else {
      x_ = reinterpret_cast<const uint8_t*>(b.q);
      x_stride_ = size_t(b.q_stride) * sizeof(float);
    }
  }

  // y[i * ldy + j] = q_i . k_(first key of page p + j), j < nk.
  void scores(int64_t p, int64_t nk, float* y, int64_t ldy) const {
    qk_->tile(kv_.pages[p] + kv_.k_offset, kv_.k_row_bytes, nk, x_, x_stride_, b_.nq, b_.head_dim,
              y, ldy);
  }

  // out[i] = sum_j w[i * ldw + j] * v_(first key of page p + j), j < nk.
  void mix(int64_t p, int64_t nk, const float* w, int64_t ldw, float* out, int64_t ldo) const {
    const uint8_t* v = kv_.pages[p] + kv_.v_offset;
    const int64_t D = b_.head_dim;
    switch (kv_.v_type) {
      case TensorType::F32:
        ops_.mix_rows(w, ldw, b_.nq, reinterpret_cast<const float*>(v),
                      int64_t(kv_.v_row_bytes / sizeof(float)), nk, D, out, ldo);
        return;
      case TensorType::F16:
        ops_.mix_rows_f16(w, ldw, b_.nq, reinterpret_cast<const uint16_t*>(v),
                          int64_t(kv_.v_row_bytes / sizeof(uint16_t)), nk, D, out, ldo);
        return;
      case TensorType::Q8_0:
        ops_.mix_rows_q8_0(w, ldw, b_.nq, v, int64_t(kv_.v_row_bytes), nk, D, out, ldo);
        return;
      default:
        ops_.mix_rows_q4_0(w, ldw, b_.nq, v, int64_t(kv_.v_row_bytes), nk, D, out, ldo);
    }
  }

 private:
  const AttentionBlock& b_;
  const PagedKv& kv_;
  const VectorOps& ops_;
  const GemmKernel* qk_ = nullptr;
  const uint8_t* x_ = nullptr;
  size_t x_stride_ = 0;
};

int64_t keys_seen(const AttentionBlock& b, int64_t i) {
  return b.first_pos + (i / b.heads) * b.step + 1;
}

// scratch: [qx]
void attend_materialized(const AttentionBlock& b, float* scratch, float* scores,
                         const AttentionKernels& k) {
  const int64_t D = b.head_dim, P = b.kv.page_tokens, nq = b.nq;
  const int64_t n_keys = attention_keys(b);
  float* qx = scratch;
  const PageOps page(b, k, qx);
  const int64_t pages = (n_keys + P - 1) / P;
  for (int64_t p = 0; p < pages; ++p) {
    page.scores(p, std::min(P, n_keys - p * P), scores + p * P, n_keys);
  }
  for (int64_t i = 0; i < nq; ++i) {
    float* row = scores + i * n_keys;
    const int64_t seen = keys_seen(b, i);
    for (int64_t j = 0; j < seen; ++j) row[j] *= b.scale;
    k.ops->softmax(row, seen);
    std::fill(row + seen, row + n_keys, 0.0f);  // causal mask
  }
  for (int64_t i = 0; i < nq; ++i)
    std::fill(b.out + i * b.out_stride, b.out + i * b.out_stride + D, 0.0f);
  for (int64_t p = 0; p < pages; ++p) {
    page.mix(p, std::min(P, n_keys - p * P), scores + p * P, n_keys, b.out, b.out_stride);
  }
}

// scratch: [qx][scores nq x tile][max nq][sum nq]
void attend_flash(const AttentionBlock& b, float* scratch, const AttentionKernels& k) {
  const int64_t D = b.head_dim, P = b.kv.page_tokens, nq = b.nq;
  const int64_t n_keys = std::min(attention_keys(b), b.key_end > 0 ? b.key_end : INT64_MAX);
  const int64_t tile = tile_pages(P) * P;
  float* qx = scratch;
  float* s = qx + q8_floats(nq, D);
  float* mx = b.partial_max ? b.partial_max : s + nq * tile;
  float* sum = b.partial_sum ? b.partial_sum : s + nq * tile + nq;
  const PageOps page(b, k, qx);
  for (int64_t i = 0; i < nq; ++i) {
    std::fill(b.out + i * b.out_stride, b.out + i * b.out_stride + D, 0.0f);
    mx[i] = -INFINITY;
    sum[i] = 0.0f;
  }
  for (int64_t j0 = b.key_begin; j0 < n_keys; j0 += tile) {
    const int64_t nt = std::min(tile, n_keys - j0);
    for (int64_t off = 0; off < nt; off += P) {
      page.scores((j0 + off) / P, std::min(P, nt - off), s + off, tile);
    }
    for (int64_t i = 0; i < nq; ++i) {
      float* row = s + i * tile;
      const int64_t valid = std::clamp<int64_t>(keys_seen(b, i) - j0, 0, nt);
      std::fill(row + valid, row + nt, 0.0f);  // causal mask
      if (valid == 0) continue;
      float m = -INFINITY;
      for (int64_t j = 0; j < valid; ++j) m = std::max(m, row[j] *= b.scale);
      const float m_new = std::max(mx[i], m);
      const float rescale = std::exp(mx[i] - m_new);  // 0 on the first tile
      sum[i] = sum[i] * rescale + k.ops->exp_sum(row, valid, m_new);
      if (rescale != 1.0f) {
        float* o = b.out + i * b.out_stride;
        for (int64_t d = 0; d < D; ++d) o[d] *= rescale;
      }
      mx[i] = m_new;
    }
    for (int64_t off = 0; off < nt; off += P) {
      page.mix((j0 + off) / P, std::min(P, nt - off), s + off, tile, b.out, b.out_stride);
    }
  }
  if (b.partial_max) return;  // the caller merges the partial results
  for (int64_t i = 0; i < nq; ++i) {
    const float inv = 1.0f / sum[i];
    float* o = b.out + i * b.out_stride;
    for (int64_t d = 0; d < D; ++d) o[d] *= inv;
  }
}

}  // namespace

const char* attention_kind_name(AttentionKind k) {
  return k == AttentionKind::kFlash ? "flash" : "materialized";
}

AttentionKernels attention_kernels(Isa isa) {
  return {find_gemm_kernel(TensorType::F32, isa), find_gemm_kernel(TensorType::F16, isa),
          find_gemm_kernel(TensorType::Q8_0, isa), find_gemm_kernel(TensorType::Q4_0, isa),
          &vector_ops(isa)};
}

bool kv_type_supported(TensorType type, int64_t head_dim) {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
      return true;
    case TensorType::Q8_0:
    case TensorType::Q4_0:
      return head_dim % 32 == 0;
    default:
      return false;
  }
}

size_t attention_scratch_floats(AttentionKind kind, int64_t nq, int64_t page_tokens,
                                int64_t head_dim) {
  const size_t shared = q8_floats(nq, head_dim);
  if (kind == AttentionKind::kMaterialized) return shared;
  return shared + size_t(nq * tile_pages(page_tokens) * page_tokens + 2 * nq);
}

void merge_partials(const float* out, const float* max, const float* sum, int64_t parts, int64_t nq,
                    int64_t D, float* merged, int64_t ldm) {
  for (int64_t i = 0; i < nq; ++i) {
    float m = -INFINITY;
    for (int64_t c = 0; c < parts; ++c) m = std::max(m, max[c * nq + i]);
    float l = 0;
    float* o = merged + i * ldm;
    std::fill(o, o + D, 0.0f);
    for (int64_t c = 0; c < parts; ++c) {
      if (max[c * nq + i] == -INFINITY) continue;  // a part with no keys for this query
      const float w = std::exp(max[c * nq + i] - m);
      l += w * sum[c * nq + i];
      const float* oc = out + (c * nq + i) * D;
      for (int64_t d = 0; d < D; ++d) o[d] += w * oc[d];
    }
    const float inv = 1.0f / l;
    for (int64_t d = 0; d < D; ++d) o[d] *= inv;
  }
}

void attend(AttentionKind kind, const AttentionBlock& b, float* scratch, float* scores,
            const AttentionKernels& k) {
  if (kind == AttentionKind::kMaterialized) {
    attend_materialized(b, scratch, scores, k);
  } else {
    attend_flash(b, scratch, k);
  }
}

}  // namespace memwall::kernels
