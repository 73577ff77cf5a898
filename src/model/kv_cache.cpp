#include "model/kv_cache.h"

#include <algorithm>

#include "base/error.h"

namespace memwall {

KvCache::KvCache(const ModelSpec& spec, int64_t max_ctx)
    : max_ctx_(max_ctx),
      n_layer_(spec.n_layer),
      kv_dim_(spec.kv_dim()),
      k_(size_t(spec.n_layer)),
      v_(size_t(spec.n_layer)) {
  if (max_ctx <= 0) fail("context size must be positive, got ", max_ctx);
}

size_t KvCache::bytes() const {
  size_t n = 0;
  for (int64_t l = 0; l < n_layer_; ++l) n += k_[size_t(l)].capacity() + v_[size_t(l)].capacity();
  return n * sizeof(float);
}

void KvCache::reserve(int64_t n) {
  if (n > max_ctx_)
    fail("context is full: ", n, " positions needed, limit is ", max_ctx_, " (raise --ctx)");
  if (n <= reserved_) return;
  // Grow geometrically so a token-by-token conversation copies O(n) in total.
  int64_t grown = std::min(max_ctx_, std::max(n, reserved_ + reserved_ / 2));
  const size_t elems = size_t(grown) * size_t(kv_dim_);
  for (int64_t l = 0; l < n_layer_; ++l) {
    for (auto* a : {&k_[size_t(l)], &v_[size_t(l)]}) {
      a->reserve(elems);
      a->resize(elems);
    }
  }
  reserved_ = grown;
}

}  // namespace memwall
