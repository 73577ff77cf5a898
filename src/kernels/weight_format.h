// WeightFormat: one codec per tensor type the engine computes with —
// encode a row, decode a row, and a fused dot product with f32 activations.
// GGUF-defined formats keep GGUF's exact block layout.
//
// These are the portable scalar references. SIMD versions (issue "Fast CPU
// kernels") must match them, and tests compare against them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/tensor_type.h"

namespace memwall::kernels {

struct WeightCodec {
  TensorType type;
  // n is a multiple of the type's block size in all of them.
  void (*quantize_row)(const float* src, void* dst, int64_t n);
  void (*dequantize_row)(const void* src, float* dst, int64_t n);
  float (*dot)(const void* row, const float* x, int64_t n);
  // Importance-weighted encoding (llama.cpp's quantize with an imatrix):
  // `importance` holds n floats, one per weight; null importance means the
  // reference encoding. Null on formats without such a variant.
  void (*quantize_row_weighted)(const float* src, void* dst, int64_t n,
                                const float* importance) = nullptr;
};

// nullptr when the engine cannot compute with this type.
const WeightCodec* find_codec(TensorType type);
// Throws Error naming the tensor and the supported formats.
const WeightCodec& codec_for(TensorType type, const std::string& tensor_name);
std::string supported_formats();  // "f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, ..."
// Every type with a codec, in the order supported_formats() names them (what
// the machine profile measures, so no format is planned on a guess).
std::vector<TensorType> codec_types();

// Per-format codecs, one file each.
const WeightCodec& codec_f32();
const WeightCodec& codec_f16();
const WeightCodec& codec_bf16();
const WeightCodec& codec_q8_0();
const WeightCodec& codec_q4_0();
const WeightCodec& codec_q4_1();
const WeightCodec& codec_q5_0();
const WeightCodec& codec_q5_1();
// GGUF k-quants and ternary formats: super-blocks of 256 weights.
const WeightCodec& codec_q4_k();
const WeightCodec& codec_q5_k();
const WeightCodec& codec_q6_k();
const WeightCodec& codec_tq1_0();
const WeightCodec& codec_tq2_0();
// memwall's own low-bit types, blocks of 64 weights (nf4_dq: super-blocks of
// 256); layouts in docs/quant-types.md.
const WeightCodec& codec_nf4();
const WeightCodec& codec_nf4_dq();
const WeightCodec& codec_q2_g64();
const WeightCodec& codec_q3_g64();
// int8 weights, one f32 scale per row (an 8-byte row header), for W8A8.
const WeightCodec& codec_w8a8();

}  // namespace memwall::kernels
