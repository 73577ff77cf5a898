// A Session is one sequence being run: the tokens fed so far, their K/V in a
// KV pool (its own, sized for max_ctx, or one shared with other sessions so
// prompts can reuse cached prefixes), and the logits of the last one. Prompts
// are fed in chunks of `batch` so activation memory stays bounded however
// long the prompt is. Activations, attention scratch and logits are reserved
// from the ledger when it is made; KV blocks as the sequence grows.
#pragma once

#include <cstdint>
#include <vector>

#include <memory>
#include "base/memory_ledger.h"
#include "base/thread_pool.h"
#include "model/forward.h"

#include "model/kv_pool.h"
#include "model/model.h"
#include "runtime/weight_store.h"

namespace memwall {

struct SessionConfig {
  int64_t max_ctx = 0;
  int64_t batch = 1;
  KvTypes kv;
  AttentionConfig attention;  // its page_tokens is the KV block size
};

class Session {
 public:
  // With its own KV pool of just enough blocks for max_ctx positions.
  Session(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
          const SessionConfig& config);
  // A sequence in a shared pool (whose types and block size win).
  Session(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
          const SessionConfig& config, KvPool& shared);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Bytes a session reserves: KV blocks for max_ctx positions, activations
  // and logits (scratch), attention's scratch.
  static size_t kv_bytes_for(const ModelSpec& spec, int64_t max_ctx, KvTypes kv,
                             int64_t block_tokens);
  static size_t scratch_bytes_for(const ModelSpec& spec, int64_t max_ctx, int64_t batch,
                                  kernels::Precision precision, kernels::InputForms forms);
  static size_t attention_bytes_for(const ModelSpec& spec, int64_t max_ctx, int64_t batch,
                                    int threads, AttentionConfig attention);

  // Appends tokens to the sequence; afterwards logits() is the next-token
  // distribution after the last one. Throws Error when the context is full.
  // On an empty sequence, full blocks of the prompt found in the pool's
  // prefix cache are reused rather than recomputed (all but the last token).
  void feed(const std::vector<int32_t>& tokens);
  // Drops everything after the first n tokens (to reuse a shared prefix).
  void truncate(int64_t n);

  const float* logits() const { return logits_.data(); }
  const std::vector<int32_t>& tokens() const { return kv_.tokens(seq_); }
  int64_t position() const { return kv_.length(seq_); }
  int64_t max_ctx() const { return max_ctx_; }
  int64_t n_vocab() const { return model_.spec.n_vocab; }
  int64_t reused_tokens() const { return reused_; }  // by the last feed, from the prefix cache
  KvPool& kv() { return kv_; }
  // Bytes of KV blocks the pool holds now.
  size_t kv_bytes() const { return size_t(kv_.stats().blocks_allocated) * kv_.block_bytes(); }
  KvPool::SeqId sequence() const { return seq_; }

 private:
  Session(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
          const SessionConfig& config, std::unique_ptr<KvPool> own, KvPool* shared);

  const Model& model_;
  int64_t max_ctx_;
  std::unique_ptr<KvPool> own_kv_;
  KvPool& kv_;
  KvPool::SeqId seq_;
  Forward forward_;
  int64_t batch_;
  int64_t reused_ = 0;
  MemoryLedger::Reservation logits_reservation_;
  std::vector<float> logits_;
};

}  // namespace memwall
