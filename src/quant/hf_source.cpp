#include "quant/hf_source.h"

#include <cstring>

#include "base/error.h"
#include "base/fp16.h"

namespace memwall::quant {
namespace {

TensorType tensor_type(safetensors::DType t) {
  switch (t) {
    case safetensors::DType::F16:
      return TensorType::F16;
    case safetensors::DType::BF16:
      return TensorType::BF16;
    default:
      return TensorType::F32;  // hf::Model admits only F32, F16 and BF16
  }
}

// Safetensors data need not be aligned: elements are copied out, not cast.
void convert_row(safetensors::DType t, const uint8_t* src, uint64_t n, float* dst) {
  if (t == safetensors::DType::F32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  for (uint64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = t == safetensors::DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
  }
}

}  // namespace

HfSource::HfSource(const std::string& dir) : model_(hf::Model::open(dir)) {
  for (const hf::ModelTensor& t : model_.tensors()) {
    tensors_.push_back({t.name, t.dims, tensor_type(t.src->dtype)});
    bytes_ += t.src->bytes();
  }
}

void HfSource::read_rows(size_t index, uint64_t r0, uint64_t r1, float* dst) const {
  const hf::ModelTensor& t = model_.tensors()[index];
  const uint64_t cols = t.cols();
  const uint64_t row_bytes = cols * safetensors::dtype_size(t.src->dtype);
  if (r1 > t.rows() || r0 > r1) {
    fail(t.hf_name, ": rows [", r0, ", ", r1, ") requested of ", t.rows());
  }
  for (uint64_t r = r0; r < r1; ++r) {
    convert_row(t.src->dtype, t.src->data + t.source_row(r) * row_bytes, cols,
                dst + (r - r0) * cols);
  }
}

}  // namespace memwall::quant
