// nf4_dq: NF4 with double-quantized block scales, after QLoRA's double
// quantization (arXiv:2305.14314 section 3), simplified to one f16 scale per
// super-block. A super-block of 256 weights = f16 super-scale D, 4 bytes of
// 8-bit block scales s_i, then 4 blocks of 32 index bytes laid out as nf4's
// (byte j of block i: weight 64i + j low, 64i + j + 32 high). Block i's
// absmax scale is d_i = D * (s_i / 255); w = d_i * level[index]. 134 bytes:
// 4.1875 bits per weight.
#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/lowbit_quant.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

using lowbit::kGroup;
using lowbit::kNf4Levels;
constexpr int kSuper = 256;
constexpr int kBlocks = kSuper / kGroup;

struct BlockNf4Dq {
  uint16_t d;
  uint8_t scales[kBlocks];
  uint8_t qs[kSuper / 2];
};
static_assert(sizeof(BlockNf4Dq) == 134);

float block_scale(float D, uint8_t s) {
  return D * (float(s) / 255.0f);
}

// D = the largest block absmax, rounded up to f16 so every s_i <= 255 can
// reach its block's absmax. Each s_i: reference = the better of the two
// codes around 255 * absmax_i / D (so a weight clips only when that is
// closer overall); with importance, every code from 20% below to one above,
// scored by weighted error.
void quantize_weighted(const float* src, void* dst, int64_t n, const float* importance) {
  auto* blocks = static_cast<BlockNf4Dq*>(dst);
  uint8_t idx[kGroup], cand[kGroup];
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float* xs = src + b * kSuper;
    BlockNf4Dq& y = blocks[b];
    float amax[kBlocks] = {};
    for (int i = 0; i < kSuper; ++i)
      amax[i / kGroup] = std::max(amax[i / kGroup], std::fabs(xs[i]));
    y.d = lowbit::fp16_round_up(*std::max_element(amax, amax + kBlocks));
    const float D = fp16_to_fp32(y.d);
    for (int k = 0; k < kBlocks; ++k) {
      const float* x = xs + k * kGroup;
      const float* imp = importance ? importance + b * kSuper + k * kGroup : nullptr;
      const int s0 = D > 0 ? std::clamp(int(std::ceil(255.0f * amax[k] / D)), 0, 255) : 0;
      int lo = std::max(0, s0 - 1), hi = s0;
      double best = INFINITY;
      const auto consider = [&](int s, const float* w) {
        const double err = lowbit::nf4_assign(x, w, kGroup, block_scale(D, uint8_t(s)), cand);
        if (err < best) {
          best = err;
          y.scales[k] = uint8_t(s);
          std::copy(cand, cand + kGroup, idx);
        }
      };
      for (int s = hi; s >= lo; --s) consider(s, nullptr);
      if (imp != nullptr) {
        // Rescore the reference choice with importance, then search wider.
        best = lowbit::nf4_assign(x, imp, kGroup, block_scale(D, y.scales[k]), idx);
        lo = std::max(0, s0 - 1 - s0 / 5);
        hi = std::min(255, s0 + 1);
        for (int s = hi; s >= lo; --s) consider(s, imp);
      }
      for (int j = 0; j < kGroup / 2; ++j) {
        y.qs[k * 32 + j] = uint8_t(idx[j] | idx[j + 32] << 4);
      }
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) {
  quantize_weighted(src, dst, n, nullptr);
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockNf4Dq*>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const BlockNf4Dq& x = blocks[b];
    const float D = fp16_to_fp32(x.d);
    for (int k = 0; k < kBlocks; ++k) {
      const float d = block_scale(D, x.scales[k]);
      float* y = dst + b * kSuper + k * kGroup;
      for (int j = 0; j < kGroup / 2; ++j) {
        y[j] = d * kNf4Levels[x.qs[k * 32 + j] & 0x0f];
        y[j + 32] = d * kNf4Levels[x.qs[k * 32 + j] >> 4];
      }
    }
  }
}

float dot(const void* row, const float* x, int64_t n) {
  float w[kSuper];
  float sum = 0;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    dequantize(static_cast<const BlockNf4Dq*>(row) + b, w, kSuper);
    float s = 0;
    for (int i = 0; i < kSuper; ++i) s += w[i] * x[b * kSuper + i];
    sum += s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_nf4_dq() {
  static const WeightCodec c{TensorType::NF4_DQ, quantize, dequantize, dot, quantize_weighted};
  return c;
}

}  // namespace memwall::kernels
