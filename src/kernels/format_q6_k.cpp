// q6_K: super-blocks of 256 weights = 128 bytes ql (low 4 bits), 64 bytes qh
// (high 2 bits), 16 int8 scales (one per 16 weights), f16 d last.
// w = d * sc_g * (q - 32), q in 0..63, g = weight / 16. In each half h of 128
// weights (ql + 64h, qh + 32h), for l < 32: ql[l] holds weights l (low
// nibble) and 64 + l (high), ql[32 + l] weights 32 + l and 96 + l, and qh[l]
// bits 2k..2k+1 the high bits of weight 32k + l.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/kquant_search.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

using kquant::kSuper;

struct BlockQ6K {
  uint8_t ql[kSuper / 2];
  uint8_t qh[kSuper / 4];
  int8_t scales[kSuper / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6K) == 210);

void quantize_blocks(const float* src, void* dst, int64_t n, const float* importance) {
  auto* blocks = static_cast<BlockQ6K*>(dst);
  int8_t L[kSuper];
  float scales[kSuper / 16];
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float* x = src + b * kSuper;
    const float* qw = importance ? importance + b * kSuper : nullptr;
    BlockQ6K& y = blocks[b];
    float max_scale = 0, max_abs_scale = 0;
    for (int g = 0; g < kSuper / 16; ++g) {
      // Reference weights x^2; the importance-weighted quantizer uses the
      // importance as is.
      scales[g] =
          kquant::make_qx_quants(16, 32, x + 16 * g, L + 16 * g, qw ? qw + 16 * g : nullptr);
      const float abs_scale = std::fabs(scales[g]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales[g];
      }
    }
    if (max_abs_scale < 1e-15f) {  // all zero
      std::memset(&y, 0, sizeof(y));
      continue;
    }
    // The scale of largest magnitude maps to -128, so the others fit in int8.
    const float iscale = -128.f / max_scale;
    y.d = fp32_to_fp16(1 / iscale);
    for (int g = 0; g < kSuper / 16; ++g) {
      y.scales[g] = int8_t(std::min(127, kquant::nearest_int(iscale * scales[g])));
    }
    for (int g = 0; g < kSuper / 16; ++g) {
      const float d = fp16_to_fp32(y.d) * float(y.scales[g]);
      if (d == 0) continue;
      for (int i = 0; i < 16; ++i) {
        const int l = kquant::nearest_int(x[16 * g + i] / d);
        L[16 * g + i] = int8_t(std::max(-32, std::min(31, l)) + 32);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      uint8_t* ql = y.ql + 64 * h;
      uint8_t* qh = y.qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = uint8_t((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
        ql[l + 32] = uint8_t((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
        qh[l] = uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                        ((Lh[l + 96] >> 4) << 6));
      }
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) {
  quantize_blocks(src, dst, n, nullptr);
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ6K*>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const BlockQ6K& x = blocks[b];
    const float d = fp16_to_fp32(x.d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x.ql + 64 * h;
      const uint8_t* qh = x.qh + 32 * h;
      float* y = dst + b * kSuper + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int q[4] = {(ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4),
                          (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                          (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                          (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)};
        for (int k = 0; k < 4; ++k) {
          const int i = 32 * k + l;
          y[i] = d * float(x.scales[8 * h + i / 16]) * float(q[k] - 32);
        }
      }
    }
  }
}

float dot(const void* row, const float* x, int64_t n) {
  float w[kSuper];
  float sum = 0;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    dequantize(static_cast<const BlockQ6K*>(row) + b, w, kSuper);
    float s = 0;
    for (int i = 0; i < kSuper; ++i) s += w[i] * x[b * kSuper + i];
    sum += s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_q6_k() {
  static const WeightCodec c{TensorType::Q6_K, quantize, dequantize, dot, quantize_blocks};
  return c;
}

}  // namespace memwall::kernels
