#include "model/kv_cache.h"

#include "base/error.h"

namespace memwall {

KvCache::KvCache(const ModelSpec& spec, int64_t n_ctx) : n_ctx_(n_ctx), kv_dim_(spec.kv_dim()) {
  if (n_ctx <= 0) fail("context size must be positive, got ", n_ctx);
  size_t n = size_t(spec.n_layer) * size_t(n_ctx) * size_t(kv_dim_);
  k_.assign(n, 0.0f);
  v_.assign(n, 0.0f);
}

}  // namespace memwall
