// A contiguous KV cache in f32, position-major ([pos][layer][Hkv*D]) so it
// can grow as a conversation does without re-laying out what it holds.
// (The paged, quantized KvPool replaces it in a later issue.)
#pragma once

#include <cstdint>
#include <vector>

#include "model/model_spec.h"

namespace memwall {

class KvCache {
 public:
  // Holds up to max_ctx positions; memory grows on demand up to that.
  KvCache(const ModelSpec& spec, int64_t max_ctx);

  int64_t max_ctx() const { return max_ctx_; }
  size_t bytes() const { return (k_.capacity() + v_.capacity()) * sizeof(float); }
  // Makes positions [0, n) addressable; n must not exceed max_ctx.
  void reserve(int64_t n);
  float* k(int64_t layer, int64_t pos) { return k_.data() + offset(layer, pos); }
  float* v(int64_t layer, int64_t pos) { return v_.data() + offset(layer, pos); }

 private:
  size_t offset(int64_t layer, int64_t pos) const {
    return (size_t(pos) * size_t(n_layer_) + size_t(layer)) * size_t(kv_dim_);
  }
  int64_t max_ctx_;
  int64_t n_layer_;
  int64_t kv_dim_;
  int64_t reserved_ = 0;
  std::vector<float> k_, v_;
};

}  // namespace memwall
