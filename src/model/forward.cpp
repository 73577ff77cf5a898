#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "kernels/attention.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/vector_ops.h"

namespace memwall {

using kernels::MatmulOutput;

Forward::Forward(const Model& model, ThreadPool& pool, kernels::Precision precision)
    : spec_(model.spec), w_(model.weights), pool_(pool), precision_(precision) {
  scores_.resize(size_t(pool.size()));
}

void Forward::run(const int32_t* tokens, int64_t T, int64_t pos, KvCache& kv, float* logits,
                  bool all_logits) {
  const ModelSpec& s = spec_;
  const int64_t C = s.n_embd, F = s.n_ff, Q = s.q_dim(), KV = s.kv_dim(), V = s.n_vocab;
  if (T <= 0) fail("forward pass over no tokens");
  if (pos < 0) fail("negative position ", pos);
  for (int64_t t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= V) {
      fail("token id ", tokens[t], " is outside the vocabulary of ", V, " tokens");
    }
  }
  kv.reserve(pos + T);
  auto grow = [](std::vector<float>& b, int64_t n) {
    if (b.size() < size_t(n)) b.resize(size_t(n));
  };
  grow(x_, T * C), grow(xn_, T * C), grow(q_, T * Q), grow(k_, T * KV), grow(v_, T * KV);
  grow(att_, T * Q), grow(gate_, T * F), grow(up_, T * F), grow(proj_, T * C);
  const int64_t heads_per_kv = s.n_head / s.n_head_kv;  // decode's block of queries
  for (auto& sc : scores_) grow(sc, std::max(std::min(T, kQueryBlock), heads_per_kv) * (pos + T));

  float* x = x_.data();  // (T, C) residual stream
  for (int64_t t = 0; t < T; ++t) {
    w_.token_embd.codec->dequantize_row(w_.token_embd.row(tokens[t]), x + t * C, C);
  }
  const float* freq = w_.rope_freqs.empty() ? nullptr : w_.rope_freqs.data();
  grow(rope_cs_, T * s.n_rot);  // (T, n_rot/2) (cos, sin) pairs, shared by every layer
  for (int64_t t = 0; t < T; ++t) {
    kernels::rope_angles(pos + t, s.n_rot, s.rope_base, s.rope_scale, freq,
                         rope_cs_.data() + t * s.n_rot);
  }

  for (int64_t l = 0; l < s.n_layer; ++l) {
    const LayerWeights& L = w_.layers[size_t(l)];
    // Attention block.
    for (int64_t t = 0; t < T; ++t) {
      kernels::rms_norm(x + t * C, L.attn_norm.data(), s.rms_eps, C, xn_.data() + t * C);
    }
    input_.set(xn_.data(), T, C);
    kernels::matmul_group(pool_,
                          {{&L.wq, q_.data()},   // (T, H*D)
                           {&L.wk, k_.data()},   // (T, Hkv*D)
                           {&L.wv, v_.data()}},  // (T, Hkv*D)
                          input_, precision_);
    for (int64_t t = 0; t < T; ++t) {
      const float* cs = rope_cs_.data() + t * s.n_rot;
      kernels::rope_apply(q_.data() + t * Q, s.n_head, s.head_dim, s.n_rot, cs, s.rope_style);
      kernels::rope_apply(k_.data() + t * KV, s.n_head_kv, s.head_dim, s.n_rot, cs, s.rope_style);
      std::memcpy(kv.k(l, pos + t), k_.data() + t * KV, size_t(KV) * sizeof(float));
      std::memcpy(kv.v(l, pos + t), v_.data() + t * KV, size_t(KV) * sizeof(float));
    }
    attention(l, T, pos, kv);  // att_ (T, H*D)
    input_.set(att_.data(), T, Q);
    kernels::matmul_group(pool_, {{&L.wo, proj_.data()}}, input_, precision_);  // (T, C)
    for (int64_t i = 0; i < T * C; ++i) x[i] += proj_[size_t(i)];

    // FFN block.
    for (int64_t t = 0; t < T; ++t) {
      kernels::rms_norm(x + t * C, L.ffn_norm.data(), s.rms_eps, C, xn_.data() + t * C);
    }
    input_.set(xn_.data(), T, C);
    kernels::matmul_group(pool_, {{&L.w_gate, gate_.data()}, {&L.w_up, up_.data()}}, input_,
                          precision_);  // (T, F) each
    kernels::swiglu(gate_.data(), up_.data(), T * F);
    input_.set(gate_.data(), T, F);
    kernels::matmul_group(pool_, {{&L.w_down, proj_.data()}}, input_, precision_);  // (T, C)
    for (int64_t i = 0; i < T * C; ++i) x[i] += proj_[size_t(i)];
  }

  // Output head: every position, or only the last.
  const int64_t first = all_logits ? 0 : T - 1;
  const int64_t n_out = T - first;
  for (int64_t t = first; t < T; ++t) {
    kernels::rms_norm(x + t * C, w_.output_norm.data(), s.rms_eps, C, xn_.data() + (t - first) * C);
  }
  input_.set(xn_.data(), n_out, C);
  kernels::matmul_group(pool_, {{&w_.output, logits}}, input_, precision_);  // (n_out, V)
}

void Forward::attention(int64_t layer, int64_t T, int64_t pos, KvCache& kv) {
  const ModelSpec& s = spec_;
  const int64_t H = s.n_head, D = s.head_dim, Q = s.q_dim();
  const int64_t group = s.n_head / s.n_head_kv;  // query heads per KV head
  const int64_t blocks = (T + kQueryBlock - 1) / kQueryBlock;
  const kernels::AttentionKernels attn = kernels::attention_kernels(kernels::active_isa());
  const int64_t kv_stride = kv.row_stride();
  const float scale = 1.0f / std::sqrt(float(D));
  // nq queries of KV head kvh, rows `stride` floats apart from `offset` in q_
  // (and at the same place in att_); step 1: consecutive tokens of one head,
  // step 0: query heads of one token.
  auto attend = [&](int thread, int64_t offset, int64_t stride, int64_t nq, int64_t first_pos,
                    int64_t step, int64_t kvh) {
    kernels::AttentionBlock b;
    b.q = q_.data() + offset;
    b.q_stride = stride;
    b.nq = nq;
    b.first_pos = first_pos;
    b.step = step;
    b.k = kv.k(layer, 0) + kvh * D;
    b.v = kv.v(layer, 0) + kvh * D;
    b.kv_stride = kv_stride;
    b.head_dim = D;
    b.scale = scale;
    b.out = att_.data() + offset;
    b.out_stride = stride;
    kernels::attend_block(b, scores_[size_t(thread)].data(), attn);
  };
  if (T == 1) {
    // Decode: one item per KV head, its query heads as the block's queries,
    // so each K and V row is read once per group rather than once per head.
    pool_.parallel_for(s.n_head_kv, [&](int64_t begin, int64_t end, int thread) {
      for (int64_t g = begin; g < end; ++g) attend(thread, g * group * D, D, group, pos, 0, g);
    });
    return;
  }
  // Prefill: items are (query block, head); one block's scores at a time per thread.
  pool_.parallel_for(blocks * H, [&](int64_t begin, int64_t end, int thread) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t0 = (i / H) * kQueryBlock, h = i % H;
      attend(thread, t0 * Q + h * D, Q, std::min(kQueryBlock, T - t0), pos + t0, 1, h / group);
    }
  });
}

}  // namespace memwall
