// q5_1: blocks of 32 weights = f16 scale d, f16 minimum m, 4 bytes qh, 16
// bytes qs. Weight j's level q (0..31) has its low 4 bits in qs (byte j:
// weight j in the low nibble, weight j+16 in the high) and its 5th bit in bit
// j of qh, a little-endian uint32. w = d * q + m.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "base/fp16.h"
#include "kernels/kquant_search.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr int kBlock = 32;
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kBlock / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// Levels for the block's 32 weights into qs and qh (bits above the 5th are
// dropped, as llama.cpp's packing does).
void pack(const uint8_t* q, BlockQ5_1& block) {
  uint32_t qh = 0;
  for (int j = 0; j < kBlock / 2; ++j) {
    const uint8_t lo = q[j], hi = q[j + kBlock / 2];
    block.qs[j] = uint8_t((lo & 0x0f) | (hi & 0x0f) << 4);
    qh |= uint32_t((lo >> 4) & 1) << j;
    qh |= uint32_t((hi >> 4) & 1) << (j + kBlock / 2);
  }
  for (int i = 0; i < 4; ++i) block.qh[i] = uint8_t(qh >> (8 * i));
}

void unpack(const BlockQ5_1& block, int* q) {
  uint32_t qh = 0;
  for (int i = 0; i < 4; ++i) qh |= uint32_t(block.qh[i]) << (8 * i);
  for (int j = 0; j < kBlock / 2; ++j) {
    q[j] = (block.qs[j] & 0x0f) | int((qh >> j) & 1) << 4;
    q[j + kBlock / 2] = (block.qs[j] >> 4) | int((qh >> (j + kBlock / 2)) & 1) << 4;
  }
}

// As llama.cpp's quantize_row_q5_1_ref: 31 steps from the block's minimum to
// its maximum; levels are (x - min) / d rounded half up, truncated to 8 bits.
void quantize(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ5_1*>(dst);
  uint8_t q[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    float min = FLT_MAX, max = -FLT_MAX;
    for (int i = 0; i < kBlock; ++i) {
      min = std::min(min, x[i]);
      max = std::max(max, x[i]);
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].m = fp32_to_fp16(min);
    for (int j = 0; j < kBlock; ++j) {
      const float v = (x[j] - min) * id;
      q[j] = uint8_t(int(v + 0.5f));
    }
    pack(q, blocks[b]);
  }
}

// As llama.cpp's quantize_q5_1 with an importance matrix (see q4_1): the
// asymmetric search make_qkx3_quants over levels 0..31 and 37 candidate scales.
void quantize_weighted(const float* src, void* dst, int64_t n, const float* importance) {
  if (importance == nullptr) return quantize(src, dst, n);
  auto* blocks = static_cast<BlockQ5_1*>(dst);
  const float sigma2 = kquant::row_mean_square(src, n);
  float weight[kBlock];
  uint8_t L[kBlock], Laux[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    const float* qw = importance + b * kBlock;
    kquant::block_error_weights(x, qw, sigma2, kBlock, weight);
    float min = 0;
    const float d =
        kquant::make_qkx3_quants(kBlock, 31, x, weight, L, &min, Laux, -0.9f, 0.05f, 36);
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].m = fp32_to_fp16(-min);
    pack(L, blocks[b]);
  }
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_1*>(src);
  int q[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    const float m = fp16_to_fp32(blocks[b].m);
    unpack(blocks[b], q);
    float* y = dst + b * kBlock;
    for (int j = 0; j < kBlock; ++j) y[j] = float(q[j]) * d + m;
  }
}

// sum(w*x) = d * sum(q*x) + m * sum(x) per block.
float dot(const void* row, const float* x, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_1*>(row);
  int q[kBlock];
  float sum = 0;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    unpack(blocks[b], q);
    float sq = 0, sx = 0;
    for (int j = 0; j < kBlock; ++j) {
      sq += float(q[j]) * xb[j];
      sx += xb[j];
    }
    sum += fp16_to_fp32(blocks[b].d) * sq + fp16_to_fp32(blocks[b].m) * sx;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_q5_1() {
  static const WeightCodec c{TensorType::Q5_1, quantize, dequantize, dot, quantize_weighted};
  return c;
}

}  // namespace memwall::kernels
