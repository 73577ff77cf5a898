// A GGUF file as a TensorSource: tensors are decoded row by row with the
// engine's codecs, so any type memwall computes with can be requantized.
#pragma once

#include <memory>

#include "format/gguf_reader.h"
#include "quant/tensor_source.h"

namespace memwall::quant {

class GgufSource final : public TensorSource {
 public:
  // Throws Error when a tensor's type has no decoder.
  explicit GgufSource(const std::string& path);

  const std::string& path() const override { return file_.path(); }
  const std::vector<std::pair<std::string, gguf::Value>>& metadata() const override {
    return metadata_;
  }
  const std::vector<SourceTensor>& tensors() const override { return tensors_; }
  void read_rows(size_t index, uint64_t r0, uint64_t r1, float* dst) const override;
  uint64_t tensor_bytes() const override { return bytes_; }

 private:
  gguf::File file_;
  std::vector<std::pair<std::string, gguf::Value>> metadata_;
  std::vector<SourceTensor> tensors_;
  uint64_t bytes_ = 0;
};

}  // namespace memwall::quant
