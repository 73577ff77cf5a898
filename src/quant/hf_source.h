// A Hugging Face safetensors directory as a TensorSource: the GGUF metadata
// and tensors convert_hf_to_gguf.py would make (see format/hf_model.h), with
// rows converted from f32/f16/bf16 to f32 on demand, Q and K rows read in
// llama.cpp's RoPE order.
#pragma once

#include <string>

#include "format/hf_model.h"
#include "quant/tensor_source.h"

namespace memwall::quant {

class HfSource final : public TensorSource {
 public:
  explicit HfSource(const std::string& dir);  // throws Error (see hf::Model::open)

  const std::string& path() const override { return model_.dir(); }
  const std::vector<std::pair<std::string, gguf::Value>>& metadata() const override {
    return model_.metadata().items();
  }
  const std::vector<SourceTensor>& tensors() const override { return tensors_; }
  // Reads only the mapped files: safe from any number of threads.
  void read_rows(size_t index, uint64_t r0, uint64_t r1, float* dst) const override;
  uint64_t tensor_bytes() const override { return bytes_; }
  // Tensors skipped and other adjustments, one line each, for the user.
  const std::vector<std::string>& notes() const { return model_.notes(); }

 private:
  hf::Model model_;
  std::vector<SourceTensor> tensors_;
  uint64_t bytes_ = 0;
};

}  // namespace memwall::quant
