// quantize_activations_q8k / _q16k (activations_k.h). Round half to even,
// the scales from simd_q8_scale.h, as the 32-value blocks do.
#include "kernels/activations_k.h"

#include <cmath>

#include "kernels/simd_q8_scale.h"

namespace memwall::kernels {
namespace {

// nearbyint for |v| <= 32512 in the default rounding mode, without a libm
// call, so the loops vectorize: adding 1.5 * 2^23 leaves the rounded integer
// in the mantissa.
inline int round_even(float v) {
  return static_cast<int>((v + 12582912.0f) - 12582912.0f);
}

float amax_of(const float* x) {
  float amax = 0;
  for (int i = 0; i < kQK; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  return amax;
}

}  // namespace

void quantize_activations_q8k(const float* x, BlockQ8K* out, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    float d, id;
    q8_block_scale(amax_of(xb), d, id);
    out[b].d = d;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int q = round_even(xb[i] * id);
        out[b].qs[i] = static_cast<int8_t>(q);
        sum += q;
      }
      out[b].bsums[g] = static_cast<int16_t>(sum);
    }
  }
}

void quantize_activations_q16k(const float* x, BlockQ16K* out, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    float d, id;
    q16_block_scale(amax_of(xb), d, id);
    out[b].d = d;
    for (int g = 0; g < 16; ++g) {
      int sum_hi = 0, sum_lo = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int q = round_even(xb[i] * id);
        const int hi = (q + 128) >> 8;  // arithmetic shift: floor((q + 128) / 256)
        out[b].hi[i] = static_cast<int8_t>(hi);
        out[b].lo[i] = static_cast<int8_t>(q - 256 * hi);
        sum_hi += hi;
        sum_lo += q - 256 * hi;
      }
      out[b].bsums_hi[g] = static_cast<int16_t>(sum_hi);
      out[b].bsums_lo[g] = static_cast<int16_t>(sum_lo);
    }
  }
}

}  // namespace memwall::kernels
