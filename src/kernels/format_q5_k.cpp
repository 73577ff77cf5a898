// q5_K: super-blocks of 256 weights = f16 d, f16 dmin, 12 bytes of six-bit
// scales and minimums (as q4_K), 32 bytes qh of fifth bits, 128 bytes of
// nibbles. w = d * sc_j * q - dmin * m_j, q in 0..31. Nibbles are laid out as
// q4_K's; bit 2c of qh[l] is the fifth bit of weight 64c + l, bit 2c + 1 that
// of weight 64c + 32 + l.
#include <cstring>

#include "base/fp16.h"
#include "kernels/kquant_search.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

using kquant::kSuper;

struct BlockQ5K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kSuper / 8];
  uint8_t qs[kSuper / 2];
};
static_assert(sizeof(BlockQ5K) == 176);

// llama.cpp quantize_row_q5_K_ref's search: 16 candidates around 31 / range.
constexpr kquant::KScaleSearch kSearch{31, -0.5f, 0.1f, 15};

void quantize_blocks(const float* src, void* dst, int64_t n, const float* importance) {
  auto* blocks = static_cast<BlockQ5K*>(dst);
  uint8_t L[kSuper];
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float* x = src + b * kSuper;
    BlockQ5K& y = blocks[b];
    kquant::quantize_super_k4(kSearch, x, importance ? importance + b * kSuper : nullptr, y.d,
                              y.dmin, y.scales, L);
    std::memset(y.qh, 0, sizeof(y.qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
        y.qh[l] = uint8_t(y.qh[l] | ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
        y.qs[32 * c + l] = uint8_t((l1 & 0xF) | ((l2 & 0xF) << 4));
      }
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) {
  quantize_blocks(src, dst, n, nullptr);
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5K*>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const BlockQ5K& x = blocks[b];
    const float d = fp16_to_fp32(x.d), dmin = fp16_to_fp32(x.dmin);
    uint8_t sc[8], m[8];
    kquant::unpack_scale_min_k4(x.scales, sc, m);
    float* y = dst + b * kSuper;
    for (int c = 0; c < 4; ++c) {
      const float d1 = d * float(sc[2 * c]), m1 = dmin * float(m[2 * c]);
      const float d2 = d * float(sc[2 * c + 1]), m2 = dmin * float(m[2 * c + 1]);
      for (int l = 0; l < 32; ++l) {
        const int q1 = (x.qs[32 * c + l] & 0xF) | (((x.qh[l] >> (2 * c)) & 1) << 4);
        const int q2 = (x.qs[32 * c + l] >> 4) | (((x.qh[l] >> (2 * c + 1)) & 1) << 4);
        y[64 * c + l] = d1 * float(q1) - m1;
        y[64 * c + 32 + l] = d2 * float(q2) - m2;
      }
    }
  }
}

float dot(const void* row, const float* x, int64_t n) {
  float w[kSuper];
  float sum = 0;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    dequantize(static_cast<const BlockQ5K*>(row) + b, w, kSuper);
    float s = 0;
    for (int i = 0; i < kSuper; ++i) s += w[i] * x[b * kSuper + i];
    sum += s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_q5_k() {
  static const WeightCodec c{TensorType::Q5_K, quantize, dequantize, dot, quantize_blocks};
  return c;
}

}  // namespace memwall::kernels
