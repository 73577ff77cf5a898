// TQ2_0 (ternary, 2.06 bits per weight): super-blocks of 256 weights = 64
// bytes of 2-bit codes, then f16 d. w = d * (code - 1), code in {0, 1, 2}.
// In chunk c (bytes 32c .. 32c + 31), bits 2k..2k+1 of byte 32c + m hold
// weight 128c + 32k + m.
#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr int kSuper = 256;

struct BlockTQ2 {
  uint8_t qs[kSuper / 4];
  uint16_t d;
};
static_assert(sizeof(BlockTQ2) == 66);

// d = max|x|; every weight rounds (half away from zero, as llama.cpp's
// lroundf) to -d, 0 or d.
void quantize(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockTQ2*>(dst);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float* x = src + b * kSuper;
    float amax = 0;
    for (int i = 0; i < kSuper; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float id = amax != 0 ? 1.0f / amax : 0.0f;
    blocks[b].d = fp32_to_fp16(amax);
    for (int c = 0; c < 2; ++c) {
      for (int m = 0; m < 32; ++m) {
        int q = 0;
        for (int k = 0; k < 4; ++k) {
          const int code = int(std::lround(x[128 * c + 32 * k + m] * id)) + 1;
          q += (code & 3) << (2 * k);
        }
        blocks[b].qs[32 * c + m] = uint8_t(q);
      }
    }
  }
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockTQ2*>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    float* y = dst + b * kSuper;
    for (int c = 0; c < 2; ++c) {
      for (int k = 0; k < 4; ++k) {
        for (int m = 0; m < 32; ++m) {
          const int code = (blocks[b].qs[32 * c + m] >> (2 * k)) & 3;
          y[128 * c + 32 * k + m] = float(code - 1) * d;
        }
      }
    }
  }
}

float dot(const void* row, const float* x, int64_t n) {
  float w[kSuper];
  float sum = 0;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    dequantize(static_cast<const BlockTQ2*>(row) + b, w, kSuper);
    float s = 0;
    for (int i = 0; i < kSuper; ++i) s += w[i] * x[b * kSuper + i];
    sum += s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_tq2_0() {
  static const WeightCodec c{TensorType::TQ2_0, quantize, dequantize, dot};
  return c;
}

}  // namespace memwall::kernels
