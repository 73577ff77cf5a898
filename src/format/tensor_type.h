// The ggml tensor types a GGUF file may name, with their block geometry.
// Ids and sizes are GGUF's own so files interoperate with other GGUF tools.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace memwall {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  // memwall's own low-bit types (docs/quant-types.md), far above ggml's ids
  // so they can never collide with a type GGUF adds later.
  NF4 = 1024,
  NF4_DQ = 1025,
  Q2_G64 = 1026,
  Q3_G64 = 1027,
  W8A8 = 1028,
};

struct TensorTypeInfo {
  TensorType type;
  std::string_view name;    // lower-case, as users type it: "q4_0"
  uint32_t block_elements;  // elements per block (1 for plain types)
  uint32_t block_bytes;     // bytes per block
  // Bytes every row starts with before its blocks: 0 for GGUF's types; w8a8's
  // per-row scale and weight sum (docs/quant-types.md).
  uint32_t row_header_bytes = 0;
};

// nullopt for ids GGUF does not define (or has retired).
std::optional<TensorTypeInfo> tensor_type_info(uint32_t id);
const TensorTypeInfo& tensor_type_info(TensorType type);
std::optional<TensorType> tensor_type_from_name(std::string_view name);  // case-insensitive
inline std::string_view tensor_type_name(TensorType type) {
  return tensor_type_info(type).name;
}

// Bytes of a row of n elements; n must be a multiple of the block size.
inline uint64_t row_bytes(const TensorTypeInfo& t, uint64_t n) {
  return t.row_header_bytes + n / t.block_elements * t.block_bytes;
}
inline uint64_t row_bytes(TensorType type, uint64_t n) {
  return row_bytes(tensor_type_info(type), n);
}

}  // namespace memwall
