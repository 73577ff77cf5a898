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

size_t Session::kv_bytes_for(const ModelSpec& spec, int64_t max_ctx, KvTypes kv,
                             int64_t block_tokens) {
  const int64_t blocks = (max_ctx + block_tokens - 1) / block_tokens;
  return size_t(blocks) * AlignedBuffer::footprint(KvPool::block_bytes(spec, kv, block_tokens));
}

size_t Session::scratch_bytes_for(const ModelSpec& spec, int64_t max_ctx, int64_t batch,
                                  kernels::Precision precision, kernels::InputForms forms) {
  return Forward::scratch_bytes(spec, std::min(batch, max_ctx), precision, forms) +
         logits_bytes(spec);
}

size_t Session::attention_bytes_for(const ModelSpec& spec, int64_t max_ctx, int64_t batch,
                                    int threads, AttentionConfig attention) {
  return Forward::attention_bytes(spec, std::min(batch, max_ctx), max_ctx, threads, attention);
}

namespace {

std::unique_ptr<KvPool> own_pool(const Model& model, MemoryLedger& ledger, const SessionConfig& c) {
  if (c.max_ctx <= 0) fail("context size must be positive, got ", c.max_ctx);
  KvPoolConfig pc;
  pc.types = c.kv;
  pc.block_tokens = c.attention.page_tokens;
  pc.max_blocks = (c.max_ctx + pc.block_tokens - 1) / pc.block_tokens;
  return std::make_unique<KvPool>(model.spec, pc, ledger);
}

AttentionConfig paged_by(AttentionConfig a, const KvPool& kv) {
  a.page_tokens = kv.block_tokens();
  return a;
}

}  // namespace

Session::Session(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
                 const SessionConfig& config)
    : Session(model, store, pool, ledger, config, own_pool(model, ledger, config), nullptr) {}

Session::Session(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
                 const SessionConfig& config, KvPool& shared)
    : Session(model, store, pool, ledger, config, nullptr, &shared) {}

Session::Session(const Model& model, WeightStore& store, ThreadPool& pool, MemoryLedger& ledger,
                 const SessionConfig& config, std::unique_ptr<KvPool> own, KvPool* shared)
    : model_(model),
      max_ctx_(config.max_ctx),
      own_kv_(std::move(own)),
      kv_(own_kv_ ? *own_kv_ : *shared),
      seq_(kv_.create()),
      forward_(model, store, pool, ledger,
               std::min(std::max<int64_t>(1, config.batch), config.max_ctx), config.max_ctx,
               paged_by(config.attention, kv_)),
      batch_(std::min(std::max<int64_t>(1, config.batch), config.max_ctx)),
      logits_reservation_(ledger.reserve(MemCategory::kScratch, logits_bytes(model.spec))) {
  logits_.resize(size_t(model.spec.n_vocab));
}

Session::~Session() {
  kv_.release(seq_);
}

void Session::feed(const std::vector<int32_t>& tokens) {
  reused_ = 0;
  if (tokens.empty()) return;
  const int64_t needed = position() + int64_t(tokens.size());
  if (needed > max_ctx_) {
    fail("context is full: ", needed, " tokens needed, the context holds ", max_ctx_,
         " (raise --ctx, up to the model's ", model_.spec.n_ctx_train, ")");
  }
  size_t at = 0;
  if (position() == 0) {
    // The last token is always run: its logits are what the caller wants.
    reused_ =
        kv_.attach_prefix(seq_, tokens.data(), int64_t(tokens.size()), int64_t(tokens.size()) - 1);
    at = size_t(reused_);
  }
  for (; at < tokens.size(); at += size_t(batch_)) {
    const int64_t n = std::min<int64_t>(batch_, int64_t(tokens.size() - at));
    forward_.run(tokens.data() + at, n, kv_, seq_, logits_.data(), false);
  }
}

void Session::truncate(int64_t n) {
  if (n < position()) kv_.truncate(seq_, std::max<int64_t>(0, n));
}

}  // namespace memwall
