// A contiguous KV cache: for each layer, n_ctx positions of Hkv*D keys and
// values in f32. (The paged, quantized KvPool replaces it in a later issue.)
#pragma once

#include <cstdint>
#include <vector>

#include "model/model_spec.h"

namespace memwall {

class KvCache {
 public:
  KvCache(const ModelSpec& spec, int64_t n_ctx);

  int64_t n_ctx() const { return n_ctx_; }
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }
  float* k(int64_t layer, int64_t pos) { return k_.data() + offset(layer, pos); }
  float* v(int64_t layer, int64_t pos) { return v_.data() + offset(layer, pos); }

 private:
  size_t offset(int64_t layer, int64_t pos) const {
    return (size_t(layer) * size_t(n_ctx_) + size_t(pos)) * size_t(kv_dim_);
  }
  int64_t n_ctx_;
  int64_t kv_dim_;
  std::vector<float> k_, v_;
};

}  // namespace memwall
