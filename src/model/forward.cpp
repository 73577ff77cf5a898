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
#include "model/weight_units.h"

namespace memwall {

using kernels::MatmulOutput;

namespace {

// Rows of scores one attention work item holds: a block of prefill queries,
// or decode's query heads of one KV head.
int64_t score_rows(const ModelSpec& s, int64_t max_batch, int64_t query_block) {
  return std::min(max_batch, query_block) * (s.n_head / s.n_head_kv);
}

// Flash decode splits each KV head's keys into up to this many parts of at
// least kMinDecodeKeys keys, so both threads work however few KV heads the
// model has (3 on the default model); the parts' results are then merged.
constexpr int64_t kMaxDecodeParts = 8;
constexpr int64_t kMinDecodeKeys = 256;

}  // namespace

size_t Forward::scratch_bytes(const ModelSpec& s, int64_t B, kernels::Precision precision,
                              kernels::InputForms forms) {
  const int64_t C = s.n_embd, F = s.n_ff, Q = s.q_dim(), KV = s.kv_dim();
  const int64_t floats = B * (3 * C + 2 * Q + 2 * KV + 2 * F + s.n_rot);
  const int64_t widest = std::max({C, F, Q});
  return size_t(floats) * sizeof(float) +
         kernels::MatmulInput::bytes_for(B, widest, precision, forms);
}

size_t Forward::attention_bytes(const ModelSpec& s, int64_t B, int64_t ctx, int threads,
                                AttentionConfig a) {
  const size_t per_thread = kernels::attention_scratch_floats(a.kind, score_rows(s, B, kQueryBlock),
                                                              a.page_tokens, s.head_dim);
  const int64_t gathered = 2 * score_rows(s, B, kQueryBlock) * s.head_dim;  // prefill's q and out
  size_t floats = size_t(threads) * (per_thread + size_t(gathered));
  if (a.kind == kernels::AttentionKind::kFlash) {  // decode's partial results
    floats += size_t(s.n_head) * size_t(kMaxDecodeParts) * size_t(s.head_dim + 2);
  }
  if (a.kind == kernels::AttentionKind::kMaterialized) {
    floats += size_t(s.n_head) * size_t(std::max<int64_t>(B, 1)) * size_t(ctx);
  }
  return floats * sizeof(float);
}

Forward::Forward(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
                 int64_t max_batch, int64_t max_ctx, AttentionConfig attention)
    : spec_(model.spec),
      w_(model.weights),
      store_(store),
      pool_(pool),
      precision_(store.precision()),
      max_batch_(std::max<int64_t>(1, max_batch)),
      max_ctx_(max_ctx),
      attention_(attention) {
  const ModelSpec& s = spec_;
  const int64_t B = max_batch_, C = s.n_embd, F = s.n_ff, Q = s.q_dim(), KV = s.kv_dim();
  const kernels::InputForms forms = input_forms(w_, precision_);
  reservation_ = ledger.reserve(MemCategory::kScratch, scratch_bytes(s, B, precision_, forms));
  x_.resize(size_t(B * C)), xn_.resize(size_t(B * C)), proj_.resize(size_t(B * C));
  q_.resize(size_t(B * Q)), att_.resize(size_t(B * Q));
  k_.resize(size_t(B * KV)), v_.resize(size_t(B * KV));
  gate_.resize(size_t(B * F)), up_.resize(size_t(B * F));
  rope_cs_.resize(size_t(B * s.n_rot));
  attention_reservation_ = ledger.reserve(MemCategory::kAttention,
                                          attention_bytes(s, B, max_ctx, pool.size(), attention_));
  attn_scratch_.resize(size_t(pool.size()));
  gather_.resize(size_t(pool.size()));
  for (auto& g : gather_) g.resize(size_t(2 * score_rows(s, B, kQueryBlock) * s.head_dim));
  for (auto& sc : attn_scratch_) {
    sc.resize(kernels::attention_scratch_floats(attention_.kind, score_rows(s, B, kQueryBlock),
                                                attention_.page_tokens, s.head_dim));
  }
  if (attention_.kind == kernels::AttentionKind::kMaterialized) {
    scores_.resize(size_t(s.n_head) * size_t(B) * size_t(max_ctx));
  } else {
    partial_.resize(size_t(s.n_head) * size_t(kMaxDecodeParts) * size_t(s.head_dim + 2));
  }
  input_.reserve(B, std::max({C, F, Q}), precision_, forms);
  if (s.rotation.residual) rot_residual_.emplace(C, s.rotation.seed);
  if (s.rotation.ffn_down) rot_ffn_.emplace(F, s.rotation.seed + 1);
}

void Forward::observe(std::initializer_list<const kernels::MatrixView*> readers, const float* x,
                      int64_t T, int64_t cols) {
  if (observer_ == nullptr) return;
  std::vector<std::string> names;
  for (const kernels::MatrixView* m : readers) names.push_back(m->name);
  observer_->observe(names, x, T, cols);
}

void Forward::rotate_rows(const kernels::HadamardRotation& r, float* x, int64_t T) {
  const int64_t n = r.size();
  pool_.parallel_for(T, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) r.apply_transposed(x + t * n);
  });
}

void Forward::rotated_output_norm(const float* x, int64_t n_out, float* out) {
  const int64_t C = spec_.n_embd;
  const kernels::HadamardRotation& r = *rot_residual_;
  pool_.parallel_for(n_out, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* y = out + t * C;
      const float* xt = x + t * C;
      double ss = 0;
      for (int64_t i = 0; i < C; ++i) ss += double(xt[i]) * xt[i];
      const float scale = float(1.0 / std::sqrt(ss / double(C) + spec_.rms_eps));
      for (int64_t i = 0; i < C; ++i) y[i] = xt[i] * scale;
      r.apply(y);
      for (int64_t i = 0; i < C; ++i) y[i] *= w_.output_norm[size_t(i)];
      r.apply_transposed(y);
    }
  });
}

void Forward::run(const int32_t* tokens, int64_t T, KvPool& kv, KvPool::SeqId seq, float* logits,
                  bool all_logits) {
  const int64_t pos = kv.length(seq);
  const ModelSpec& s = spec_;
  const int64_t C = s.n_embd, F = s.n_ff, Q = s.q_dim(), KV = s.kv_dim(), V = s.n_vocab;
  if (T <= 0) fail("forward pass over no tokens");
  for (int64_t t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= V) {
      fail("token id ", tokens[t], " is outside the vocabulary of ", V, " tokens");
    }
  }
  if (T > max_batch_) fail("forward pass over ", T, " tokens; this one holds ", max_batch_);
  if (pos + T > max_ctx_) {
    fail("context is full: ", pos + T, " positions needed, limit is ", max_ctx_, " (raise --ctx)");
  }
  if (kv.block_tokens() != attention_.page_tokens) {
    fail("KV pool blocks of ", kv.block_tokens(), " tokens, attention planned for ",
         attention_.page_tokens);
  }
  kv.prepare(seq, T);

  float* x = x_.data();  // (T, C) residual stream
  for (int64_t t = 0; t < T; ++t) store_.embed(tokens[t], x + t * C);
  const float* freq = w_.rope_freqs.empty() ? nullptr : w_.rope_freqs.data();
  // (T, n_rot/2) (cos, sin) pairs, shared by every layer
  for (int64_t t = 0; t < T; ++t) {
    kernels::rope_angles(pos + t, s.n_rot, s.rope_base, s.rope_scale, freq,
                         rope_cs_.data() + t * s.n_rot);
  }

  for (int64_t l = 0; l < s.n_layer; ++l) {
    const LayerWeights& N = w_.layers[size_t(l)];  // its norms
    const LayerMatrices& L = store_.acquire_layer(l);
    // Attention block.
    for (int64_t t = 0; t < T; ++t) {
      kernels::rms_norm(x + t * C, N.attn_norm.data(), s.rms_eps, C, xn_.data() + t * C);
    }
    input_.set(xn_.data(), T, C);
    observe({&L.wq, &L.wk, &L.wv}, xn_.data(), T, C);
    kernels::matmul_group(pool_,
                          {{&L.wq, q_.data()},   // (T, H*D)
                           {&L.wk, k_.data()},   // (T, Hkv*D)
                           {&L.wv, v_.data()}},  // (T, Hkv*D)
                          input_, precision_);
    for (int64_t t = 0; t < T; ++t) {
      const float* cs = rope_cs_.data() + t * s.n_rot;
      kernels::rope_apply(q_.data() + t * Q, s.n_head, s.head_dim, s.n_rot, cs, s.rope_style);
      kernels::rope_apply(k_.data() + t * KV, s.n_head_kv, s.head_dim, s.n_rot, cs, s.rope_style);
      kv.store(seq, l, pos + t, k_.data() + t * KV, v_.data() + t * KV);
    }
    attention(l, T, pos, kv, seq);  // att_ (T, H*D)
    input_.set(att_.data(), T, Q);
    observe({&L.wo}, att_.data(), T, Q);
    kernels::matmul_group(pool_, {{&L.wo, proj_.data()}}, input_, precision_);  // (T, C)
    for (int64_t i = 0; i < T * C; ++i) x[i] += proj_[size_t(i)];

    // FFN block.
    for (int64_t t = 0; t < T; ++t) {
      kernels::rms_norm(x + t * C, N.ffn_norm.data(), s.rms_eps, C, xn_.data() + t * C);
    }
    input_.set(xn_.data(), T, C);
    observe({&L.w_gate, &L.w_up}, xn_.data(), T, C);
    kernels::matmul_group(pool_, {{&L.w_gate, gate_.data()}, {&L.w_up, up_.data()}}, input_,
                          precision_);  // (T, F) each
    kernels::swiglu(gate_.data(), up_.data(), T * F);
    if (rot_ffn_) rotate_rows(*rot_ffn_, gate_.data(), T);
    input_.set(gate_.data(), T, F);
    observe({&L.w_down}, gate_.data(), T, F);
    kernels::matmul_group(pool_, {{&L.w_down, proj_.data()}}, input_, precision_);  // (T, C)
    store_.release_layer(l);
    for (int64_t i = 0; i < T * C; ++i) x[i] += proj_[size_t(i)];
  }

  // Output head: every position, or only the last.
  const int64_t first = all_logits ? 0 : T - 1;
  const int64_t n_out = T - first;
  if (rot_residual_) {
    rotated_output_norm(x + first * C, n_out, xn_.data());
  } else {
    for (int64_t t = first; t < T; ++t) {
      kernels::rms_norm(x + t * C, w_.output_norm.data(), s.rms_eps, C,
                        xn_.data() + (t - first) * C);
    }
  }
  input_.set(xn_.data(), n_out, C);
  observe({&w_.output}, xn_.data(), n_out, C);
  for (int64_t p = 0; p < store_.output_parts(); ++p) {  // (n_out, V), a part of its rows at a time
    int64_t first_row = 0;
    const kernels::MatrixView& head = store_.acquire_output(p, &first_row);
    kernels::matmul_group(pool_, {{&head, logits + first_row, V}}, input_, precision_);
    store_.release_output(p);
  }
  kv.commit(seq, tokens, T);
}

void Forward::attention(int64_t layer, int64_t T, int64_t pos, const KvPool& kv,
                        KvPool::SeqId seq) {
  const ModelSpec& s = spec_;
  const int64_t D = s.head_dim, Q = s.q_dim();
  const int64_t group = s.n_head / s.n_head_kv;  // query heads per KV head
  const kernels::AttentionKernels attn = kernels::attention_kernels(kernels::active_isa());
  const float scale = 1.0f / std::sqrt(float(D));
  if (T == 1) {
    // Decode: items are (KV head g, part c of the keys): g's query heads as
    // one block, so each K and V row is read once per group rather than once
    // per head. Flash splits long contexts into page-aligned parts that write
    // unnormalized rows, merged afterwards, so every thread has work however
    // few KV heads there are.
    const int64_t n_keys = pos + 1, P = attention_.page_tokens;
    const int64_t parts =
        attention_.kind == kernels::AttentionKind::kFlash
            ? std::clamp<int64_t>(
                  n_keys / kMinDecodeKeys, 1,
                  std::min(kMaxDecodeParts, (4 * pool_.size() + s.n_head_kv - 1) / s.n_head_kv))
            : 1;
    const int64_t chunk = ((n_keys + parts - 1) / parts + P - 1) / P * P;
    float* out = partial_.data();
    float* mx = out + s.n_head * parts * D;
    float* sum = mx + s.n_head * parts;
    pool_.parallel_for(s.n_head_kv * parts, [&](int64_t begin, int64_t end, int thread) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t g = item / parts, c = item % parts;
        kernels::AttentionBlock b;
        b.q = q_.data() + g * group * D;
        b.q_stride = D;
        b.nq = group;
        b.first_pos = pos;
        b.step = 0;
        b.kv = kv.view(seq, layer, g);
        b.head_dim = D;
        b.scale = scale;
        b.out = att_.data() + g * group * D;
        b.out_stride = D;
        if (parts > 1) {
          b.out = out + item * group * D;
          b.key_begin = c * chunk;
          b.key_end = (c + 1) * chunk;
          b.partial_max = mx + item * group;
          b.partial_sum = sum + item * group;
        }
        kernels::attend(attention_.kind, b, attn_scratch_[size_t(thread)].data(),
                        scores_.empty() ? nullptr : scores_.data() + g * group * max_ctx_, attn);
      }
    });
    for (int64_t g = 0; parts > 1 && g < s.n_head_kv; ++g) {
      kernels::merge_partials(out + g * parts * group * D, mx + g * parts * group,
                              sum + g * parts * group, parts, group, D, att_.data() + g * group * D,
                              D);
    }
    return;
  }
  // Prefill: items are (query block, KV head): the block's tokens times the
  // KV head's query heads, gathered into one block so each K and V page is
  // read once per group rather than once per head.
  const int64_t blocks = (T + kQueryBlock - 1) / kQueryBlock;
  pool_.parallel_for(blocks * s.n_head_kv, [&](int64_t begin, int64_t end, int thread) {
    float* qg = gather_[size_t(thread)].data();
    float* og = qg + score_rows(s, max_batch_, kQueryBlock) * D;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t0 = (i / s.n_head_kv) * kQueryBlock, g = i % s.n_head_kv;
      const int64_t nt = std::min(kQueryBlock, T - t0);
      for (int64_t t = 0; t < nt; ++t) {
        std::memcpy(qg + t * group * D, q_.data() + (t0 + t) * Q + g * group * D,
                    size_t(group * D) * sizeof(float));
      }
      kernels::AttentionBlock b;
      b.q = qg;
      b.q_stride = D;
      b.nq = nt * group;
      b.first_pos = pos + t0;
      b.step = 1;
      b.heads = group;
      b.kv = kv.view(seq, layer, g);
      b.head_dim = D;
      b.scale = scale;
      b.out = og;
      b.out_stride = D;
      kernels::attend(attention_.kind, b, attn_scratch_[size_t(thread)].data(),
                      scores_.empty() ? nullptr
                                      : scores_.data() + (size_t(g) * size_t(group * max_batch_) +
                                                          size_t(t0 * group)) *
                                                             size_t(max_ctx_),
                      attn);
      for (int64_t t = 0; t < nt; ++t) {
        std::memcpy(att_.data() + (t0 + t) * Q + g * group * D, og + t * group * D,
                    size_t(group * D) * sizeof(float));
      }
    }
  });
}

}  // namespace memwall
