// q5_0: blocks of 32 weights = f16 scale d, 4 bytes qh, 16 bytes qs.
// Weight j's level q (0..31) has its low 4 bits in qs (byte j: weight j in the
// low nibble, weight j+16 in the high) and its 5th bit in bit j of qh, a
// little-endian uint32. w = d * (q - 16).
#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/kquant_search.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr int kBlock = 32;
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kBlock / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

// Levels 0..31 for the block's 32 weights into qs and qh.
void pack(const uint8_t* q, BlockQ5_0& block) {
  uint32_t qh = 0;
  for (int j = 0; j < kBlock / 2; ++j) {
    const uint8_t lo = q[j], hi = q[j + kBlock / 2];
    block.qs[j] = uint8_t((lo & 0x0f) | (hi & 0x0f) << 4);
    qh |= uint32_t((lo >> 4) & 1) << j;
    qh |= uint32_t((hi >> 4) & 1) << (j + kBlock / 2);
  }
  for (int i = 0; i < 4; ++i) block.qh[i] = uint8_t(qh >> (8 * i));
}

void unpack(const BlockQ5_0& block, int* q) {
  uint32_t qh = 0;
  for (int i = 0; i < 4; ++i) qh |= uint32_t(block.qh[i]) << (8 * i);
  for (int j = 0; j < kBlock / 2; ++j) {
    q[j] = (block.qs[j] & 0x0f) | int((qh >> j) & 1) << 4;
    q[j + kBlock / 2] = (block.qs[j] >> 4) | int((qh >> (j + kBlock / 2)) & 1) << 4;
  }
}

// As llama.cpp's quantize_row_q5_0_ref: the scale maps the largest-magnitude
// weight to -16; levels are truncated (after + 16.5) to 8 bits, capped at 31.
void quantize(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ5_0*>(dst);
  uint8_t q[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    float amax = 0, max = 0;
    for (int i = 0; i < kBlock; ++i) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kBlock; ++j) {
      const float v = x[j] * id;
      q[j] = uint8_t(std::min(31, int(int8_t(int(v + 16.5f)))));
    }
    pack(q, blocks[b]);
  }
}

// As llama.cpp's quantize_q5_0 with an importance matrix (see q4_0): the
// symmetric search make_qx_quants over levels -16..15, each weight's squared
// error weighted by importance * sqrt(sigma2 + x^2).
void quantize_weighted(const float* src, void* dst, int64_t n, const float* importance) {
  if (importance == nullptr) return quantize(src, dst, n);
  auto* blocks = static_cast<BlockQ5_0*>(dst);
  const float sigma2 = kquant::row_mean_square(src, n);
  float weight[kBlock];
  int8_t L[kBlock];
  uint8_t q[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    const float* qw = importance + b * kBlock;
    kquant::block_error_weights(x, qw, sigma2, kBlock, weight);
    const float d = kquant::make_qx_quants(kBlock, 16, x, L, weight);
    blocks[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kBlock; ++j) q[j] = uint8_t(L[j]);
    pack(q, blocks[b]);
  }
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_0*>(src);
  int q[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    unpack(blocks[b], q);
    float* y = dst + b * kBlock;
    for (int j = 0; j < kBlock; ++j) y[j] = float(q[j] - 16) * d;
  }
}

float dot(const void* row, const float* x, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_0*>(row);
  int q[kBlock];
  float sum = 0;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    unpack(blocks[b], q);
    float s = 0;
    for (int j = 0; j < kBlock; ++j) s += float(q[j] - 16) * xb[j];
    sum += fp16_to_fp32(blocks[b].d) * s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_q5_0() {
  static const WeightCodec c{TensorType::Q5_0, quantize, dequantize, dot, quantize_weighted};
  return c;
}

}  // namespace memwall::kernels
