#include "model/kv_cache.h"

#include <cstring>

#include "base/error.h"
#include "kernels/weight_format.h"

namespace memwall {
namespace {

size_t elem_bytes(KvType t) {
  return t == KvType::kF16 ? 2 : 4;
}

}  // namespace

std::string_view kv_type_name(KvType t) {
  return t == KvType::kF16 ? "f16" : "f32";
}

size_t KvCache::bytes_for(const ModelSpec& spec, int64_t max_ctx, KvType type) {
  return 2 * size_t(spec.n_layer) * size_t(max_ctx) * size_t(spec.kv_dim()) * elem_bytes(type);
}

KvCache::KvCache(const ModelSpec& spec, int64_t max_ctx, MemoryLedger& ledger, KvType type)
    : max_ctx_(max_ctx),
      n_layer_(spec.n_layer),
      kv_dim_(spec.kv_dim()),
      type_(type),
      elem_(elem_bytes(type)) {
  if (max_ctx <= 0) fail("context size must be positive, got ", max_ctx);
  reservation_ = ledger.reserve(MemCategory::kKv, bytes_for(spec, max_ctx, type));
  const size_t bytes = size_t(max_ctx) * size_t(kv_dim_) * elem_;
  k_.resize(size_t(n_layer_));
  v_.resize(size_t(n_layer_));
  for (int64_t l = 0; l < n_layer_; ++l) {
    k_[size_t(l)].resize(bytes);
    v_[size_t(l)].resize(bytes);
  }
}

size_t KvCache::bytes_for_layers() const {
  return 2 * size_t(n_layer_) * size_t(max_ctx_) * size_t(kv_dim_) * elem_;
}

void KvCache::reserve(int64_t n) const {
  if (n > max_ctx_)
    fail("context is full: ", n, " positions needed, limit is ", max_ctx_, " (raise --ctx)");
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  uint8_t* kd = k_[size_t(layer)].data() + offset(pos, 0);
  uint8_t* vd = v_[size_t(layer)].data() + offset(pos, 0);
  if (type_ == KvType::kF32) {
    std::memcpy(kd, k, size_t(kv_dim_) * sizeof(float));
    std::memcpy(vd, v, size_t(kv_dim_) * sizeof(float));
    return;
  }
  static const kernels::WeightCodec& f16 = kernels::codec_for(TensorType::F16, "kv cache");
  f16.quantize_row(k, kd, kv_dim_);
  f16.quantize_row(v, vd, kv_dim_);
}

}  // namespace memwall
