#include "format/tensor_type.h"

#include <array>
#include <cctype>

#include "base/error.h"

namespace memwall {
namespace {

constexpr std::array kTypes = {
    TensorTypeInfo{TensorType::F32, "f32", 1, 4},
    TensorTypeInfo{TensorType::F16, "f16", 1, 2},
    TensorTypeInfo{TensorType::Q4_0, "q4_0", 32, 18},
    TensorTypeInfo{TensorType::Q4_1, "q4_1", 32, 20},
    TensorTypeInfo{TensorType::Q5_0, "q5_0", 32, 22},
    TensorTypeInfo{TensorType::Q5_1, "q5_1", 32, 24},
    TensorTypeInfo{TensorType::Q8_0, "q8_0", 32, 34},
    TensorTypeInfo{TensorType::Q8_1, "q8_1", 32, 36},
    TensorTypeInfo{TensorType::Q2_K, "q2_k", 256, 84},
    TensorTypeInfo{TensorType::Q3_K, "q3_k", 256, 110},
    TensorTypeInfo{TensorType::Q4_K, "q4_k", 256, 144},
    TensorTypeInfo{TensorType::Q5_K, "q5_k", 256, 176},
    TensorTypeInfo{TensorType::Q6_K, "q6_k", 256, 210},
    TensorTypeInfo{TensorType::Q8_K, "q8_k", 256, 292},
    TensorTypeInfo{TensorType::IQ2_XXS, "iq2_xxs", 256, 66},
    TensorTypeInfo{TensorType::IQ2_XS, "iq2_xs", 256, 74},
    TensorTypeInfo{TensorType::IQ3_XXS, "iq3_xxs", 256, 98},
    TensorTypeInfo{TensorType::IQ1_S, "iq1_s", 256, 50},
    TensorTypeInfo{TensorType::IQ4_NL, "iq4_nl", 32, 18},
    TensorTypeInfo{TensorType::IQ3_S, "iq3_s", 256, 110},
    TensorTypeInfo{TensorType::IQ2_S, "iq2_s", 256, 82},
    TensorTypeInfo{TensorType::IQ4_XS, "iq4_xs", 256, 136},
    TensorTypeInfo{TensorType::I8, "i8", 1, 1},
    TensorTypeInfo{TensorType::I16, "i16", 1, 2},
    TensorTypeInfo{TensorType::I32, "i32", 1, 4},
    TensorTypeInfo{TensorType::I64, "i64", 1, 8},
    TensorTypeInfo{TensorType::F64, "f64", 1, 8},
    TensorTypeInfo{TensorType::IQ1_M, "iq1_m", 256, 56},
    TensorTypeInfo{TensorType::BF16, "bf16", 1, 2},
    TensorTypeInfo{TensorType::TQ1_0, "tq1_0", 256, 54},
    TensorTypeInfo{TensorType::TQ2_0, "tq2_0", 256, 66},
    TensorTypeInfo{TensorType::MXFP4, "mxfp4", 32, 17},
    TensorTypeInfo{TensorType::NF4, "nf4", 64, 34},
    TensorTypeInfo{TensorType::NF4_DQ, "nf4_dq", 256, 134},
    TensorTypeInfo{TensorType::Q2_G64, "q2_g64", 64, 20},
    TensorTypeInfo{TensorType::Q3_G64, "q3_g64", 64, 28},
    TensorTypeInfo{TensorType::W8A8, "w8a8", 32, 32, 8},
};

}  // namespace

std::optional<TensorTypeInfo> tensor_type_info(uint32_t id) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return t;
  }
  return std::nullopt;
}

const TensorTypeInfo& tensor_type_info(TensorType type) {
  for (const auto& t : kTypes) {
    if (t.type == type) return t;
  }
  fail("unknown tensor type id ", static_cast<uint32_t>(type));
}

std::optional<TensorType> tensor_type_from_name(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(name[i])) == t.name[i];
    }
    if (same) return t.type;
  }
  return std::nullopt;
}

}  // namespace memwall
