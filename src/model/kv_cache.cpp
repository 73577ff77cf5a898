#include "model/kv_cache.h"

#include "base/error.h"

namespace memwall {

size_t KvCache::bytes_for(const ModelSpec& spec, int64_t max_ctx) {
  return 2 * size_t(spec.n_layer) * size_t(max_ctx) * size_t(spec.kv_dim()) * sizeof(float);
}

KvCache::KvCache(const ModelSpec& spec, int64_t max_ctx, MemoryLedger& ledger)
    : max_ctx_(max_ctx), n_layer_(spec.n_layer), kv_dim_(spec.kv_dim()) {
  if (max_ctx <= 0) fail("context size must be positive, got ", max_ctx);
  reservation_ = ledger.reserve(MemCategory::kKv, bytes_for(spec, max_ctx));
  const size_t elems = size_t(max_ctx) * size_t(kv_dim_);
  k_.resize(size_t(n_layer_));
  v_.resize(size_t(n_layer_));
  for (int64_t l = 0; l < n_layer_; ++l) {
    k_[size_t(l)].resize(elems);
    v_[size_t(l)].resize(elems);
  }
}

size_t KvCache::bytes_for_layers() const {
  return 2 * size_t(n_layer_) * size_t(max_ctx_) * size_t(kv_dim_) * sizeof(float);
}

void KvCache::reserve(int64_t n) const {
  if (n > max_ctx_)
    fail("context is full: ", n, " positions needed, limit is ", max_ctx_, " (raise --ctx)");
}

}  // namespace memwall
