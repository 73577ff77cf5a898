// A non-owning view of a weight matrix in some WeightFormat: `rows` rows of
// `cols` weights, each row `row_bytes` long. The name is for error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/weight_format.h"

namespace memwall::kernels {

struct MatrixView {
  std::string name;
  TensorType type = TensorType::F32;
  const WeightCodec* codec = nullptr;
  const uint8_t* data = nullptr;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features (row length)
  size_t row_bytes = 0;
  // The same matrix repacked for the fast kernels (packed_weights.h), or null.
  const uint8_t* packed = nullptr;
  size_t packed_group_bytes = 0;

  const uint8_t* row(int64_t r) const { return data + size_t(r) * row_bytes; }
  size_t bytes() const { return size_t(rows) * row_bytes; }
  // The packed group holding row r (r a multiple of 16).
  const uint8_t* packed_group(int64_t r) const {
    return packed + size_t(r / 16) * packed_group_bytes;
  }
};

}  // namespace memwall::kernels
