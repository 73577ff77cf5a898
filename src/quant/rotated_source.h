// RotatedSource: a llama-layout model with its residual stream rotated by a
// randomized Hadamard R_C and FFN down's input by R_F (QuaRot). The function
// the model computes is unchanged; what changes is how its weights spread:
// an outlier channel becomes a little of every channel, which is what 4-bit
// and lower blocks need. Done on f32 values before quantization:
//   RMSNorm weights g are folded into the matrices that read them and set
//   to 1; token_embd, output and every matrix reading the residual become
//   W diag(g) R_C; attn_output becomes R_C^T W; ffn_down R_C^T W R_F. The
//   output norm is renamed (the engine applies it online, see ModelSpec).
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "kernels/hadamard.h"
#include "quant/tensor_source.h"

namespace memwall::quant {

class RotatedSource final : public TensorSource {
 public:
  // Throws Error when the model is not llama-layout or its widths have no
  // Hadamard rotation.
  RotatedSource(const TensorSource& base, uint64_t seed);

  const std::string& path() const override { return base_.path(); }
  const std::vector<std::pair<std::string, gguf::Value>>& metadata() const override {
    return metadata_;
  }
  const std::vector<SourceTensor>& tensors() const override { return tensors_; }
  void read_rows(size_t index, uint64_t r0, uint64_t r1, float* dst) const override;
  uint64_t tensor_bytes() const override { return base_.tensor_bytes(); }

 private:
  enum class Kind { kCopy, kOnes, kReadsResidual, kWritesResidual, kFfnDown };
  struct Plan {
    Kind kind = Kind::kCopy;
    int64_t norm = -1;  // source index of the norm folded in, or -1
  };
  std::vector<float> read_all(size_t index) const;

  const TensorSource& base_;
  std::vector<std::pair<std::string, gguf::Value>> metadata_;
  std::vector<SourceTensor> tensors_;
  std::vector<Plan> plans_;
  std::optional<kernels::HadamardRotation> rot_c_, rot_f_;
  // Row-mixing transforms need a whole matrix: the last one made is kept for
  // the other threads reading its rows.
  mutable std::mutex mutex_;
  mutable size_t cached_index_ = SIZE_MAX;
  mutable std::vector<float> cached_;
};

}  // namespace memwall::quant
