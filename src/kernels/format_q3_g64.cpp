// q3_g64: 3-bit asymmetric groups of 64 weights = f16 scale d, f16 minimum m,
// 16 bytes of low bits (bits 2k..2k+1 of byte j: the low two bits of weight
// 16k + j's code, as q2_g64), 8 bytes of high bits (bit i of the 64-bit
// little-endian word: bit 2 of weight i's code); w = d * q + m, q in 0..7.
// 28 bytes: 3.5 bits per weight. Codes and (d, m) come from
// lowbit::asym_group's least-squares search.
#include "base/fp16.h"
#include "kernels/lowbit_quant.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

using lowbit::kGroup;

struct BlockQ3G64 {
  uint16_t d, m;
  uint8_t ql[16];
  uint8_t qh[8];
};
static_assert(sizeof(BlockQ3G64) == 28);

// As q2_g64's search, around 7 / range: relative RMS 0.167 on N(0, 1) (0.170
// without the refits).
constexpr lowbit::AsymSearch kSearch{7, -1.0f, 0.1f, 20, 2};

int code(const BlockQ3G64& b, int i) {
  const int lo = (b.ql[i % 16] >> (2 * (i / 16))) & 3;
  const int hi = (b.qh[i / 8] >> (i % 8)) & 1;
  return lo | hi << 2;
}

void quantize_weighted(const float* src, void* dst, int64_t n, const float* importance) {
  auto* blocks = static_cast<BlockQ3G64*>(dst);
  uint8_t q[kGroup];
  for (int64_t b = 0; b < n / kGroup; ++b) {
    BlockQ3G64& y = blocks[b];
    lowbit::asym_group(kSearch, src + b * kGroup, importance ? importance + b * kGroup : nullptr,
                       y.d, y.m, q);
    for (int j = 0; j < 16; ++j) {
      y.ql[j] =
          uint8_t((q[j] & 3) | (q[j + 16] & 3) << 2 | (q[j + 32] & 3) << 4 | (q[j + 48] & 3) << 6);
    }
    for (int j = 0; j < 8; ++j) {
      uint8_t h = 0;
      for (int k = 0; k < 8; ++k) h = uint8_t(h | (q[8 * j + k] >> 2) << k);
      y.qh[j] = h;
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) {
  quantize_weighted(src, dst, n, nullptr);
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ3G64*>(src);
  for (int64_t b = 0; b < n / kGroup; ++b) {
    const float d = fp16_to_fp32(blocks[b].d), m = fp16_to_fp32(blocks[b].m);
    float* y = dst + b * kGroup;
    for (int i = 0; i < kGroup; ++i) y[i] = d * float(code(blocks[b], i)) + m;
  }
}

// sum(w * x) = d * sum(q * x) + m * sum(x) per block.
float dot(const void* row, const float* x, int64_t n) {
  const auto* blocks = static_cast<const BlockQ3G64*>(row);
  float sum = 0;
  for (int64_t b = 0; b < n / kGroup; ++b) {
    const float* xb = x + b * kGroup;
    float sq = 0, sx = 0;
    for (int i = 0; i < kGroup; ++i) {
      sq += float(code(blocks[b], i)) * xb[i];
      sx += xb[i];
    }
    sum += fp16_to_fp32(blocks[b].d) * sq + fp16_to_fp32(blocks[b].m) * sx;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_q3_g64() {
  static const WeightCodec c{TensorType::Q3_G64, quantize, dequantize, dot, quantize_weighted};
  return c;
}

}  // namespace memwall::kernels
