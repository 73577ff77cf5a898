// A KV cache in f32, one contiguous [pos][Hkv*D] array per layer and for K
// and V, so attention over one layer reads rows a fixed Hkv*D floats apart
// (a position-major layout across layers put them n_layer times further
// apart: a page, and a TLB miss, per key on a 1B model). Each layer's arrays
// grow geometrically as a conversation does.
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
  size_t bytes() const;
  // Makes positions [0, n) addressable; n must not exceed max_ctx.
  void reserve(int64_t n);
  float* k(int64_t layer, int64_t pos) { return k_[size_t(layer)].data() + offset(pos); }
  float* v(int64_t layer, int64_t pos) { return v_[size_t(layer)].data() + offset(pos); }
  // Floats between consecutive positions' rows within a layer.
  int64_t row_stride() const { return kv_dim_; }

 private:
  size_t offset(int64_t pos) const { return size_t(pos) * size_t(kv_dim_); }
  int64_t max_ctx_;
  int64_t n_layer_;
  int64_t kv_dim_;
  int64_t reserved_ = 0;
  std::vector<std::vector<float>> k_, v_;  // [layer] -> [pos][kv_dim]
};

}  // namespace memwall
