#include "kernels/weight_format.h"

#include <array>

#include "base/error.h"

namespace memwall::kernels {
namespace {
const std::array<const WeightCodec*, 18>& all_codecs() {
  static const std::array<const WeightCodec*, 18> codecs = {
      &codec_f32(), &codec_f16(), &codec_bf16(), &codec_q8_0(), &codec_q4_0(), &codec_q4_1(),
      &codec_q4_k(), &codec_q5_k(), &codec_q6_k(), &codec_tq1_0(), &codec_tq2_0(),
      // memwall's own low-bit types (docs/quant-types.md)
      &codec_nf4(), &codec_nf4_dq(), &codec_q2_g64(), &codec_q3_g64(),
      // GGUF's 5-bit 32-weight types
      &codec_q5_0(), &codec_q5_1(),
      // int8 per output channel, for W8A8 (SmoothQuant)
      &codec_w8a8()};
  return codecs;
}
}  // namespace

const WeightCodec* find_codec(TensorType type) {
  for (const WeightCodec* c : all_codecs()) {
    if (c->type == type) return c;
  }
  return nullptr;
}

std::string supported_formats() {
  std::string out;
  for (const WeightCodec* c : all_codecs()) {
    if (!out.empty()) out += ", ";
    out += tensor_type_name(c->type);
  }
  return out;
}

std::vector<TensorType> codec_types() {
  std::vector<TensorType> out;
  for (const WeightCodec* c : all_codecs()) out.push_back(c->type);
  return out;
}

const WeightCodec& codec_for(TensorType type, const std::string& tensor_name) {
  if (const WeightCodec* c = find_codec(type)) return *c;
  fail("tensor '", tensor_name, "' is ", tensor_type_name(type),
       ", which memwall cannot compute with yet (supported: ", supported_formats(), ")");
}

}  // namespace memwall::kernels
