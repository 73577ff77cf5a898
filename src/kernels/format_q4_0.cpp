// q4_0: blocks of 32 weights = f16 scale d + 16 bytes of nibbles.
// Byte j holds weight j (low nibble) and weight j+16 (high); w = d * (q - 8).
#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/kquant_search.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr int kBlock = 32;
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kBlock / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// As llama.cpp's reference: the scale maps the largest-magnitude weight to -8.
void quantize(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    float amax = 0, max = 0;
    for (int i = 0; i < kBlock; ++i) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    }
    float d = max / -8.0f;
    float id = d != 0 ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kBlock / 2; ++j) {
      int lo = std::min(15, int(x[j] * id + 8.5f));
      int hi = std::min(15, int(x[j + kBlock / 2] * id + 8.5f));
      blocks[b].qs[j] = uint8_t(lo | hi << 4);
    }
  }
}

// As llama.cpp's quantize_q4_0 with an importance matrix: per weight, the
// importance times sqrt(sigma2 + x^2) (sigma2: the row's mean square) weighs
// the squared error the scale search minimizes.
void quantize_weighted(const float* src, void* dst, int64_t n, const float* importance) {
  if (importance == nullptr) return quantize(src, dst, n);
  auto* blocks = static_cast<BlockQ4_0*>(dst);
  const float sigma2 = kquant::row_mean_square(src, n);
  float weight[kBlock];
  int8_t L[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    const float* qw = importance + b * kBlock;
    kquant::block_error_weights(x, qw, sigma2, kBlock, weight);
    const float d = kquant::make_qx_quants(kBlock, 8, x, L, weight);
    blocks[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kBlock / 2; ++j) blocks[b].qs[j] = uint8_t(L[j] | L[j + kBlock / 2] << 4);
  }
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    float d = fp16_to_fp32(blocks[b].d);
    float* y = dst + b * kBlock;
    for (int j = 0; j < kBlock / 2; ++j) {
      y[j] = d * ((blocks[b].qs[j] & 0x0f) - 8);
      y[j + kBlock / 2] = d * ((blocks[b].qs[j] >> 4) - 8);
    }
  }
}

float dot(const void* row, const float* x, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_0*>(row);
  float sum = 0;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float s = 0;
    for (int j = 0; j < kBlock / 2; ++j) {
      s += ((blocks[b].qs[j] & 0x0f) - 8) * xb[j] + ((blocks[b].qs[j] >> 4) - 8) * xb[j + 16];
    }
    sum += fp16_to_fp32(blocks[b].d) * s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_q4_0() {
  static const WeightCodec c{TensorType::Q4_0, quantize, dequantize, dot, quantize_weighted};
  return c;
}

}  // namespace memwall::kernels
