// A KV cache in f32 or f16, one contiguous [pos][Hkv*D] array per layer and
// for K and V, so attention over one layer reads rows a fixed Hkv*D elements
// apart (a position-major layout across layers put them n_layer times
// further apart: a page, and a TLB miss, per key on a 1B model). f16 halves
// the bytes attention reads per decoded token, as llama.cpp's default does.
// The whole context is reserved from the ledger and allocated up front: what
// the plan promised is what the process holds, from the first token.
// (The paged, quantized KvPool replaces it in a later issue.)
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/memory_ledger.h"
#include "model/model_spec.h"

namespace memwall {

enum class KvType { kF32, kF16 };
std::string_view kv_type_name(KvType t);  // "f32", "f16"

class KvCache {
 public:
  KvCache(const ModelSpec& spec, int64_t max_ctx, MemoryLedger& ledger, KvType type = KvType::kF32);

  // Bytes a cache of max_ctx positions holds.
  static size_t bytes_for(const ModelSpec& spec, int64_t max_ctx, KvType type = KvType::kF32);

  int64_t max_ctx() const { return max_ctx_; }
  KvType type() const { return type_; }
  size_t bytes() const { return bytes_for_layers(); }
  // Checks that positions [0, n) fit; n must not exceed max_ctx.
  void reserve(int64_t n) const;
  // Writes one position's K and V rows (kv_dim f32 values each), converted.
  void store(int64_t layer, int64_t pos, const float* k, const float* v);
  // Element `col` of position pos's row, in the cache's type.
  const uint8_t* k(int64_t layer, int64_t pos, int64_t col = 0) const {
    return k_[size_t(layer)].data() + offset(pos, col);
  }
  const uint8_t* v(int64_t layer, int64_t pos, int64_t col = 0) const {
    return v_[size_t(layer)].data() + offset(pos, col);
  }
  // Elements between consecutive positions' rows within a layer.
  int64_t row_stride() const { return kv_dim_; }

 private:
  size_t bytes_for_layers() const;
  size_t offset(int64_t pos, int64_t col) const {
    return (size_t(pos) * size_t(kv_dim_) + size_t(col)) * elem_;
  }
  int64_t max_ctx_;
  int64_t n_layer_;
  int64_t kv_dim_;
  KvType type_;
  size_t elem_;
  MemoryLedger::Reservation reservation_;
  std::vector<std::vector<uint8_t>> k_, v_;  // [layer] -> [pos][kv_dim] elements
};

}  // namespace memwall
