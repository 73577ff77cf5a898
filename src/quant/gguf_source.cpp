#include "quant/gguf_source.h"

#include "base/error.h"
#include "kernels/weight_format.h"

namespace memwall::quant {

GgufSource::GgufSource(const std::string& path) : file_(gguf::File::open(path)) {
  for (const auto& [key, value] : file_.metadata()) {
    // The writer sets its own alignment; the rest describes the model and stays.
    if (key == "general.alignment") continue;
    metadata_.emplace_back(key, value);
  }
  for (const gguf::TensorInfo& t : file_.tensors()) {
    if (!kernels::find_codec(t.type)) {
      fail(path, ": tensor '", t.name, "' is ", tensor_type_name(t.type),
           ", which memwall cannot decode (it reads ", kernels::supported_formats(), ")");
    }
    SourceTensor s{t.name, {}, t.type};
    for (uint32_t d = 0; d < t.n_dims; ++d) s.dims.push_back(t.ne[d]);
    tensors_.push_back(std::move(s));
    bytes_ += t.n_bytes;
  }
}

void GgufSource::read_rows(size_t index, uint64_t r0, uint64_t r1, float* dst) const {
  const gguf::TensorInfo& t = file_.tensors()[index];
  const kernels::WeightCodec& codec = *kernels::find_codec(t.type);
  const uint64_t cols = t.ne[0], stride = row_bytes(t.type, cols);
  for (uint64_t r = r0; r < r1; ++r) {
    codec.dequantize_row(t.data + r * stride, dst + (r - r0) * cols, int64_t(cols));
  }
}

}  // namespace memwall::quant
