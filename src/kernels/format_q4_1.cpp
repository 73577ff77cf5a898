// q4_1: blocks of 32 weights = f16 scale d, f16 minimum m, 16 bytes of nibbles.
// Byte j holds weight j (low nibble) and weight j+16 (high); w = d * q + m.
#include <algorithm>
#include <cfloat>

#include <cmath>

#include "base/fp16.h"
#include "kernels/kquant_search.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr int kBlock = 32;
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kBlock / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

void quantize(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_1*>(dst);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    float min = FLT_MAX, max = -FLT_MAX;
    for (int i = 0; i < kBlock; ++i) {
      min = std::min(min, x[i]);
      max = std::max(max, x[i]);
    }
    float d = (max - min) / 15.0f;
    float id = d != 0 ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].m = fp32_to_fp16(min);
    for (int j = 0; j < kBlock / 2; ++j) {
      int lo = std::min(15, int((x[j] - min) * id + 0.5f));
      int hi = std::min(15, int((x[j + kBlock / 2] - min) * id + 0.5f));
      blocks[b].qs[j] = uint8_t(lo | hi << 4);
    }
  }
}

// As llama.cpp's quantize_q4_1 with an importance matrix (see q4_0): the
// asymmetric search make_qkx3_quants over 37 candidate scales.
void quantize_weighted(const float* src, void* dst, int64_t n, const float* importance) {
  if (importance == nullptr) return quantize(src, dst, n);
  auto* blocks = static_cast<BlockQ4_1*>(dst);
  const float sigma2 = kquant::row_mean_square(src, n);
  float weight[kBlock];
  uint8_t L[kBlock], Laux[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    const float* qw = importance + b * kBlock;
    kquant::block_error_weights(x, qw, sigma2, kBlock, weight);
    float min = 0;
    const float d =
        kquant::make_qkx3_quants(kBlock, 15, x, weight, L, &min, Laux, -0.9f, 0.05f, 36);
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].m = fp32_to_fp16(-min);
    for (int j = 0; j < kBlock / 2; ++j) blocks[b].qs[j] = uint8_t(L[j] | L[j + kBlock / 2] << 4);
  }
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_1*>(src);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    float d = fp16_to_fp32(blocks[b].d);
    float m = fp16_to_fp32(blocks[b].m);
    float* y = dst + b * kBlock;
    for (int j = 0; j < kBlock / 2; ++j) {
      y[j] = d * (blocks[b].qs[j] & 0x0f) + m;
      y[j + kBlock / 2] = d * (blocks[b].qs[j] >> 4) + m;
    }
  }
}

// sum(w*x) = d * sum(q*x) + m * sum(x) per block.
float dot(const void* row, const float* x, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_1*>(row);
  float sum = 0;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float sq = 0, sx = 0;
    for (int j = 0; j < kBlock / 2; ++j) {
      sq += (blocks[b].qs[j] & 0x0f) * xb[j] + (blocks[b].qs[j] >> 4) * xb[j + 16];
      sx += xb[j] + xb[j + 16];
    }
    sum += fp16_to_fp32(blocks[b].d) * sq + fp16_to_fp32(blocks[b].m) * sx;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_q4_1() {
  static const WeightCodec c{TensorType::Q4_1, quantize, dequantize, dot, quantize_weighted};
  return c;
}

}  // namespace memwall::kernels
