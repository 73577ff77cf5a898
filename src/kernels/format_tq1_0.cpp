// TQ1_0 (ternary, 1.69 bits per weight): super-blocks of 256 weights = 48
// bytes qs of 5 trits each, 4 bytes qh of 4 trits each, f16 d last.
// w = d * (t - 1), t in {0, 1, 2}. A byte holds trits t0..t4 (most
// significant first) as ceil(256 * sum t_k 3^(4-k) / 243), so trit k is
// the top byte of 3 * (byte * 3^k mod 256): decoding needs no division.
//   qs[0..31]:  trit k of byte m = weight 32k + m          (weights 0..159)
//   qs[32..47]: trit k of byte 32 + m = weight 160 + 16k + m (160..239)
//   qh[0..3]:   trit k (k < 4) of byte j = weight 240 + 4k + j (240..255)
#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr int kSuper = 256;

struct BlockTQ1 {
  uint8_t qs[48];
  uint8_t qh[4];
  uint16_t d;
};
static_assert(sizeof(BlockTQ1) == 54);

// The weight index of trit k of byte `byte` (qs 0..47, then qh 48..51).
int weight_of(int byte, int k) {
  if (byte < 32) return 32 * k + byte;
  if (byte < 48) return 160 + 16 * k + (byte - 32);
  return 240 + 4 * k + (byte - 48);
}

uint8_t pack_trits(const int* t, int count) {
  int q = 0;
  for (int k = 0; k < count; ++k) q = q * 3 + t[k];
  for (int k = count; k < 5; ++k) q *= 3;  // qh: 4 trits, shifted to the top
  return uint8_t((q * 256 + 242) / 243);   // ceiling division by 3^5
}

int trit(uint8_t byte, int k) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t q = uint8_t(byte * kPow3[k]);
  return (int(q) * 3) >> 8;
}

void quantize(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockTQ1*>(dst);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float* x = src + b * kSuper;
    float amax = 0;
    for (int i = 0; i < kSuper; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float id = amax != 0 ? 1.0f / amax : 0.0f;
    blocks[b].d = fp32_to_fp16(amax);
    uint8_t* bytes = blocks[b].qs;  // qs and qh are contiguous: 52 bytes
    for (int byte = 0; byte < 52; ++byte) {
      const int count = byte < 48 ? 5 : 4;
      int t[5];
      for (int k = 0; k < count; ++k) t[k] = int(std::lround(x[weight_of(byte, k)] * id)) + 1;
      bytes[byte] = pack_trits(t, count);
    }
  }
}

void dequantize(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockTQ1*>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    const uint8_t* bytes = blocks[b].qs;
    float* y = dst + b * kSuper;
    for (int byte = 0; byte < 52; ++byte) {
      const int count = byte < 48 ? 5 : 4;
      for (int k = 0; k < count; ++k) y[weight_of(byte, k)] = float(trit(bytes[byte], k) - 1) * d;
    }
  }
}

float dot(const void* row, const float* x, int64_t n) {
  float w[kSuper];
  float sum = 0;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    dequantize(static_cast<const BlockTQ1*>(row) + b, w, kSuper);
    float s = 0;
    for (int i = 0; i < kSuper; ++i) s += w[i] * x[b * kSuper + i];
    sum += s;
  }
  return sum;
}

}  // namespace

const WeightCodec& codec_tq1_0() {
  static const WeightCodec c{TensorType::TQ1_0, quantize, dequantize, dot};
  return c;
}

}  // namespace memwall::kernels
