// A Session is one sequence being run: the tokens fed so far, their KV cache,
// and the logits of the last one. Prompts are fed in chunks of `batch` so
// activation memory stays bounded however long the prompt is. Its KV cache,
// activations and logits are reserved from the ledger when it is made.
#pragma once

#include <cstdint>
#include <vector>

#include "base/memory_ledger.h"
#include "base/thread_pool.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "runtime/weight_store.h"

namespace memwall {

class Session {
 public:
  Session(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
          int64_t max_ctx, int64_t batch, KvType kv_type = KvType::kF32);

  // Bytes a session reserves: KV cache and scratch (activations, logits).
  static size_t kv_bytes_for(const ModelSpec& spec, int64_t max_ctx, KvType kv_type);
  static size_t scratch_bytes_for(const ModelSpec& spec, int64_t max_ctx, int64_t batch,
                                  int threads, kernels::Precision precision);

  // Appends tokens to the sequence; afterwards logits() is the next-token
  // distribution after the last one. Throws Error when the context is full.
  void feed(const std::vector<int32_t>& tokens);
  // Drops everything after the first n tokens (to reuse a shared prefix).
  void truncate(int64_t n);

  const float* logits() const { return logits_.data(); }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t position() const { return int64_t(tokens_.size()); }
  int64_t max_ctx() const { return kv_.max_ctx(); }
  int64_t n_vocab() const { return model_.spec.n_vocab; }
  size_t kv_bytes() const { return kv_.bytes(); }

 private:
  const Model& model_;
  KvCache kv_;
  Forward forward_;
  int64_t batch_;
  MemoryLedger::Reservation logits_reservation_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
};

}  // namespace memwall
