// A KV cache in f32, one contiguous [pos][Hkv*D] array per layer and for K
// and V, so attention over one layer reads rows a fixed Hkv*D floats apart
// (a position-major layout across layers put them n_layer times further
// apart: a page, and a TLB miss, per key on a 1B model). The whole context
// is reserved from the ledger and allocated up front: what the plan
// promised is what the process holds, from the first token.
// (The paged, quantized KvPool replaces it in a later issue.)
#pragma once

#include <cstdint>
#include <vector>

#include "base/memory_ledger.h"
#include "model/model_spec.h"

namespace memwall {

class KvCache {
 public:
  KvCache(const ModelSpec& spec, int64_t max_ctx, MemoryLedger& ledger);

  // Bytes a cache of max_ctx positions holds.
  static size_t bytes_for(const ModelSpec& spec, int64_t max_ctx);

  int64_t max_ctx() const { return max_ctx_; }
  size_t bytes() const { return bytes_for_layers(); }
  // Checks that positions [0, n) fit; n must not exceed max_ctx.
  void reserve(int64_t n) const;
  float* k(int64_t layer, int64_t pos) { return k_[size_t(layer)].data() + offset(pos); }
  float* v(int64_t layer, int64_t pos) { return v_[size_t(layer)].data() + offset(pos); }
  // Floats between consecutive positions' rows within a layer.
  int64_t row_stride() const { return kv_dim_; }

 private:
  size_t bytes_for_layers() const;
  size_t offset(int64_t pos) const { return size_t(pos) * size_t(kv_dim_); }
  int64_t max_ctx_;
  int64_t n_layer_;
  int64_t kv_dim_;
  MemoryLedger::Reservation reservation_;
  std::vector<std::vector<float>> k_, v_;  // [layer] -> [pos][kv_dim]
};

}  // namespace memwall
