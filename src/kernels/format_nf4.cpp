// nf4: QLoRA's 4-bit NormalFloat (Dettmers et al. 2023, arXiv:2305.14314) in
// blocks of 64 weights = f16 absmax scale d, 32 bytes of 4-bit indices into
// the 16 NF4 levels (lowbit_quant.h). Byte j holds weight j (low nibble) and
// weight j + 32 (high); w = d * level[index]. 34 bytes: 4.25 bits per weight.
#include "base/fp16.h"
#include "kernels/lowbit_quant.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

using lowbit::kGroup;
using lowbit::kNf4Levels;

struct BlockNf4 {
  uint16_t d;
  uint8_t qs[kGroup / 2];
};
static_assert(sizeof(BlockNf4) == 34);

void quantize_weighted(const float* src, void* dst, int64_t n, const float* importance) {
  auto* blocks = static_cast<BlockNf4*>(dst);
  uint8_t idx[kGroup];
  for (int64_t b = 0; b < n / kGroup; ++b) {
    lowbit::nf4_block(src + b * kGroup, importance ? importance + b * kGroup : nullptr, blocks[b].d,
                      idx);
    for (int j = 0; j < kGroup / 2; ++j) blocks[b].qs[j] = uint8_t(idx[j] | idx[j + 32] << 4);
  }
}

void quantize(const float* src, void* dst, int64_t n) {
  quantize_weighted(src, dst, n, nullptr);
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockNf4*>(src);
  for (int64_t b = 0; b < n / kGroup; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    float* y = dst + b * kGroup;
    for (int j = 0; j < kGroup / 2; ++j) {
      y[j] = d * kNf4Levels[blocks[b].qs[j] & 0x0f];
      y[j + 32] = d * kNf4Levels[blocks[b].qs[j] >> 4];
    }
  }
}

// sum(w * x) = d * sum(level * x) per block.
float dot(const void* row, const float* x, int64_t n) {
  const auto* blocks = static_cast<const BlockNf4*>(row);
  float sum = 0;
  for (int64_t b = 0; b < n / kGroup; ++b) {
    const float* xb = x + b * kGroup;
    float s = 0;
    for (int j = 0; j < kGroup / 2; ++j) {
      s += kNf4Levels[blocks[b].qs[j] & 0x0f] * xb[j] +
           kNf4Levels[blocks[b].qs[j] >> 4] * xb[j + 32];
    }
    sum += fp16_to_fp32(blocks[b].d) * s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_nf4() {
  static const WeightCodec c{TensorType::NF4, quantize, dequantize, dot, quantize_weighted};
  return c;
}

}  // namespace memwall::kernels
