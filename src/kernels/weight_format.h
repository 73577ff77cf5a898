// WeightFormat: one codec per tensor type the engine computes with —
// encode a row, decode a row, and a fused dot product with f32 activations.
// GGUF-defined formats keep GGUF's exact block layout.
//
// These are the portable scalar references. SIMD versions (issue "Fast CPU
// kernels") must match them, and tests compare against them.
#pragma once

#include <cstdint>
#include <string>

#include "format/tensor_type.h"

namespace memwall::kernels {

struct WeightCodec {
  TensorType type;
  // n is a multiple of the type's block size in all three.
  void (*quantize_row)(const float* src, void* dst, int64_t n);
  void (*dequantize_row)(const void* src, float* dst, int64_t n);
  float (*dot)(const void* row, const float* x, int64_t n);
};

// nullptr when the engine cannot compute with this type.
const WeightCodec* find_codec(TensorType type);
// Throws Error naming the tensor and the supported formats.
const WeightCodec& codec_for(TensorType type, const std::string& tensor_name);
std::string supported_formats();  // "f32, f16, bf16, q8_0, q4_0, q4_1"

// Per-format codecs, one file each.
const WeightCodec& codec_f32();
const WeightCodec& codec_f16();
const WeightCodec& codec_bf16();
const WeightCodec& codec_q8_0();
const WeightCodec& codec_q4_0();
const WeightCodec& codec_q4_1();

}  // namespace memwall::kernels
