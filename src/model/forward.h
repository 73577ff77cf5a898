// The llama-layout forward pass, written once over ModelWeights:
//   x = embed(tokens)
//   per layer: x += Wo attn(rope(Wq n(x)), rope(Wk n(x)), Wv n(x));  x += Wdown(silu(Wgate n(x)) *
//   Wup n(x)) logits = Wout norm(x)
// Matrices come from a WeightStore (resident, mapped or streamed), unit by
// unit in forward order. Activations for up to max_batch tokens and
// attention scores for up to max_ctx positions are allocated once, up front,
// from the ledger's scratch category; attention's per-thread tiles (flash) or
// score matrices for every head (materialized) from its attention category.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "base/memory_ledger.h"
#include "base/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/hadamard.h"
#include "kernels/matmul.h"
#include "model/kv_pool.h"
#include "model/model.h"
#include "runtime/weight_store.h"

namespace memwall {

// Sees the input of every matrix product as the matrices read it (after any
// online rotation): calibration statistics for importance-aware quantization.
class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // x: [T x cols], read by every matrix in `readers` (GGUF tensor names).
  virtual void observe(const std::vector<std::string>& readers, const float* x, int64_t T,
                       int64_t cols) = 0;
};

struct AttentionConfig {
  kernels::AttentionKind kind = kernels::AttentionKind::kFlash;
  int64_t page_tokens = 16;  // the KV pool's block size
};

class Forward {
 public:
  Forward(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
          int64_t max_batch, int64_t max_ctx, AttentionConfig attention = {});

  // The scratch (activation) and attention bytes a Forward with these limits reserves.
  // forms: input_forms(weights, precision) (model/weight_units.h).
  static size_t scratch_bytes(const ModelSpec& spec, int64_t max_batch,
                              kernels::Precision precision, kernels::InputForms forms);
  static size_t attention_bytes(const ModelSpec& spec, int64_t max_batch, int64_t max_ctx,
                                int threads, AttentionConfig attention);

  // Runs tokens[0..T) at the next positions of sequence `seq` of kv (from
  // kv.length(seq)), writing their K/V there and committing the tokens.
  // logits: [T x V] when all_logits, else [V] for the last token only.
  // Throws Error on a token id outside the vocabulary, T above max_batch or
  // a full context or pool.
  void run(const int32_t* tokens, int64_t T, KvPool& kv, KvPool::SeqId seq, float* logits,
           bool all_logits);

  AttentionConfig attention_config() const { return attention_; }
  // Null to stop observing. The observer must outlive the runs it sees.
  void set_observer(ActivationObserver* observer) { observer_ = observer; }

 private:
  void attention(int64_t layer, int64_t T, int64_t pos, const KvPool& kv, KvPool::SeqId seq);
  void observe(std::initializer_list<const kernels::MatrixView*> readers, const float* x, int64_t T,
               int64_t cols);
  // Rows [0, T) of x (n floats each) <- R^T x, across the pool.
  void rotate_rows(const kernels::HadamardRotation& r, float* x, int64_t T);
  // The output norm of a rotated residual stream: x' = R_C^T x, so
  // norm(x) * g = R_C (norm(x') applied in the unrotated basis); the head
  // then reads R_C^T of that (its weights carry R_C).
  void rotated_output_norm(const float* x, int64_t n, float* out);

  const ModelSpec& spec_;
  const ModelWeights& w_;  // norms and rope factors (the matrices come from store_)
  WeightStore& store_;
  ThreadPool& pool_;
  kernels::Precision precision_;
  int64_t max_batch_, max_ctx_;
  AttentionConfig attention_;
  MemoryLedger::Reservation reservation_, attention_reservation_;
  kernels::MatmulInput input_;  // shared by the matrices that read one activation
  // Activations, sized for max_batch tokens.
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, proj_, rope_cs_;
  // Queries per attention work item (their scores are materialized together).
  static constexpr int64_t kQueryBlock = 16;
  std::vector<std::vector<float>> attn_scratch_;  // per thread
  std::vector<std::vector<float>> gather_;        // per thread: prefill's grouped queries, outputs
  std::vector<float> scores_;                     // materialized: [n_head][max_batch][max_ctx]
  std::vector<float> partial_;  // flash decode's split-key results: rows, maxima, sums
  std::optional<kernels::HadamardRotation> rot_residual_, rot_ffn_;  // see ModelSpec::Rotation
  ActivationObserver* observer_ = nullptr;
};

}  // namespace memwall
