// TensorSource: a model's metadata and weight tensors as f32 rows, whatever
// file they come from (a GGUF in any type memwall decodes, or a Hugging Face
// safetensors directory). `memwall quantize` reads through it, so the
// quantizer never sees a file format.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "format/gguf_value.h"
#include "format/tensor_type.h"

namespace memwall::quant {

struct SourceTensor {
  std::string name;            // GGUF name: "blk.0.attn_q.weight"
  std::vector<uint64_t> dims;  // innermost first: dims[0] is the row length
  TensorType type;             // as stored in the source
  uint64_t rows() const {
    uint64_t r = 1;
    for (size_t i = 1; i < dims.size(); ++i) r *= dims[i];
    return r;
  }
  uint64_t cols() const { return dims[0]; }
  uint64_t elements() const { return rows() * cols(); }
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const std::string& path() const = 0;
  // GGUF metadata for the output, llama layout (general.*, <arch>.*, tokenizer.*).
  virtual const std::vector<std::pair<std::string, gguf::Value>>& metadata() const = 0;
  virtual const std::vector<SourceTensor>& tensors() const = 0;
  // Rows [r0, r1) of tensor `index` as f32, cols() floats per row. Safe to
  // call from several threads at once on disjoint or equal ranges.
  virtual void read_rows(size_t index, uint64_t r0, uint64_t r1, float* dst) const = 0;
  // Bytes the tensors take in the source (the "before" of the summary).
  virtual uint64_t tensor_bytes() const = 0;
};

}  // namespace memwall::quant
