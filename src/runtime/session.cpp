#include "runtime/session.h"

#include <algorithm>

#include "base/error.h"

namespace memwall {

namespace {
// The logits, and about what a sampler keeps per vocabulary entry.
size_t logits_bytes(const ModelSpec& spec) {
  return size_t(spec.n_vocab) * (sizeof(float) + 2 * sizeof(float));
}
}  // namespace

size_t Session::kv_bytes_for(const ModelSpec& spec, int64_t max_ctx, KvType kv_type) {
  return KvCache::bytes_for(spec, max_ctx, kv_type);
}

size_t Session::scratch_bytes_for(const ModelSpec& spec, int64_t max_ctx, int64_t batch,
                                  int threads, kernels::Precision precision) {
  return Forward::scratch_bytes(spec, std::min(batch, max_ctx), max_ctx, threads, precision) +
         logits_bytes(spec);
}

Session::Session(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
                 int64_t max_ctx, int64_t batch, KvType kv_type)
    : model_(model),
      kv_(model.spec, max_ctx, ledger, kv_type),
      forward_(model, store, pool, ledger, std::min(std::max<int64_t>(1, batch), max_ctx), max_ctx),
      batch_(std::min(std::max<int64_t>(1, batch), max_ctx)),
      logits_reservation_(ledger.reserve(MemCategory::kScratch, logits_bytes(model.spec))) {
  logits_.resize(size_t(model.spec.n_vocab));
}

void Session::feed(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) return;
  const int64_t needed = position() + int64_t(tokens.size());
  if (needed > kv_.max_ctx()) {
    fail("context is full: ", needed, " tokens needed, the context holds ", kv_.max_ctx(),
         " (raise --ctx, up to the model's ", model_.spec.n_ctx_train, ")");
  }
  for (size_t at = 0; at < tokens.size(); at += size_t(batch_)) {
    const int64_t n = std::min<int64_t>(batch_, int64_t(tokens.size() - at));
    forward_.run(tokens.data() + at, n, position(), kv_, logits_.data(), false);
    tokens_.insert(tokens_.end(), tokens.begin() + long(at), tokens.begin() + long(at) + n);
  }
}

void Session::truncate(int64_t n) {
  if (n < position()) tokens_.resize(size_t(std::max<int64_t>(0, n)));
}

}  // namespace memwall
