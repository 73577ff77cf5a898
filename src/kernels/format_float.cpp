// Plain float formats: f32, f16 and bf16 (one element per "block").
#include <cstring>

#include "base/fp16.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

void quantize_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, n * 4);
}
void dequantize_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, n * 4);
}
float dot_f32(const void* row, const float* x, int64_t n) {
  const float* w = static_cast<const float*>(row);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

void quantize_f16(const float* src, void* dst, int64_t n) {
  auto* out = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(src[i]);
}
void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(in[i]);
}
float dot_f16(const void* row, const float* x, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(row);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += fp16_to_fp32(w[i]) * x[i];
  return sum;
}

void quantize_bf16(const float* src, void* dst, int64_t n) {
  auto* out = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(src[i]);
}
void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(in[i]);
}
float dot_bf16(const void* row, const float* x, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(row);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += bf16_to_fp32(w[i]) * x[i];
  return sum;
}

}  // namespace

const WeightCodec& codec_f32() {
  static const WeightCodec c{TensorType::F32, quantize_f32, dequantize_f32, dot_f32};
  return c;
}
const WeightCodec& codec_f16() {
  static const WeightCodec c{TensorType::F16, quantize_f16, dequantize_f16, dot_f16};
  return c;
}
const WeightCodec& codec_bf16() {
  static const WeightCodec c{TensorType::BF16, quantize_bf16, dequantize_bf16, dot_bf16};
  return c;
}

}  // namespace memwall::kernels
