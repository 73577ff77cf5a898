// q4_K: super-blocks of 256 weights = f16 d, f16 dmin, 12 bytes holding 8
// six-bit scales sc_j and minimums m_j (kquant_search.h), 128 bytes of nibbles.
// Sub-block j (32 weights) has w = d * sc_j * q - dmin * m_j, q in 0..15.
// Byte 32c + l holds weight 64c + l (low nibble) and 64c + 32 + l (high).
#include <cstring>

#include "base/fp16.h"
#include "kernels/kquant_search.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

using kquant::kSuper;

struct BlockQ4K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kSuper / 2];
};
static_assert(sizeof(BlockQ4K) == 144);

// llama.cpp quantize_row_q4_K_ref's search: 21 candidates around 15 / range.
constexpr kquant::KScaleSearch kSearch{15, -1.f, 0.1f, 20};

void quantize_blocks(const float* src, void* dst, int64_t n, const float* importance) {
  auto* blocks = static_cast<BlockQ4K*>(dst);
  uint8_t L[kSuper];
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float* x = src + b * kSuper;
    BlockQ4K& y = blocks[b];
    kquant::quantize_super_k4(kSearch, x, importance ? importance + b * kSuper : nullptr, y.d,
                              y.dmin, y.scales, L);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        y.qs[32 * c + l] = uint8_t(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
      }
    }
  }
}

void quantize(const float* src, void* dst, int64_t n) {
  quantize_blocks(src, dst, n, nullptr);
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4K*>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const BlockQ4K& x = blocks[b];
    const float d = fp16_to_fp32(x.d), dmin = fp16_to_fp32(x.dmin);
    uint8_t sc[8], m[8];
    kquant::unpack_scale_min_k4(x.scales, sc, m);
    float* y = dst + b * kSuper;
    for (int c = 0; c < 4; ++c) {
      const float d1 = d * float(sc[2 * c]), m1 = dmin * float(m[2 * c]);
      const float d2 = d * float(sc[2 * c + 1]), m2 = dmin * float(m[2 * c + 1]);
      for (int l = 0; l < 32; ++l) {
        y[64 * c + l] = d1 * float(x.qs[32 * c + l] & 0xF) - m1;
        y[64 * c + 32 + l] = d2 * float(x.qs[32 * c + l] >> 4) - m2;
      }
    }
  }
}

float dot(const void* row, const float* x, int64_t n) {
  float w[kSuper];
  float sum = 0;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    dequantize(static_cast<const BlockQ4K*>(row) + b, w, kSuper);
    float s = 0;
    for (int i = 0; i < kSuper; ++i) s += w[i] * x[b * kSuper + i];
    sum += s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_q4_k() {
  static const WeightCodec c{TensorType::Q4_K, quantize, dequantize, dot, quantize_blocks};
  return c;
}

}  // namespace memwall::kernels
