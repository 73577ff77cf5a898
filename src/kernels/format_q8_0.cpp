// q8_0: blocks of 32 weights = f16 scale d + 32 int8; w = d * q.
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr int kBlock = 32;
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kBlock];
};
static_assert(sizeof(BlockQ8_0) == 34);

void quantize(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* x = src + b * kBlock;
    float amax = 0;
    for (int i = 0; i < kBlock; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    float d = amax / 127.0f;
    float id = d != 0 ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    for (int i = 0; i < kBlock; ++i) blocks[b].qs[i] = int8_t(std::lround(x[i] * id));
  }
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    float d = fp16_to_fp32(blocks[b].d);
    for (int i = 0; i < kBlock; ++i) dst[b * kBlock + i] = d * blocks[b].qs[i];
  }
}

float dot(const void* row, const float* x, int64_t n) {
  const auto* blocks = static_cast<const BlockQ8_0*>(row);
  float sum = 0;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float s = 0;
    for (int i = 0; i < kBlock; ++i) s += blocks[b].qs[i] * xb[i];
    sum += fp16_to_fp32(blocks[b].d) * s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_q8_0() {
  static const WeightCodec c{TensorType::Q8_0, quantize, dequantize, dot};
  return c;
}

}  // namespace memwall::kernels
