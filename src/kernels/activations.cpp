// quantize_activations_q8: the scalar reference and the dispatcher.
//
// Rounding is round-half-to-even (std::nearbyint in the default rounding mode),
// because that is what the SIMD float->int conversions (cvtps2dq) do; with the
// same d and the same 1/d, every target produces bit-identical blocks.
#include <cmath>

#include "kernels/isa.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {

void quantize_activations_q8_scalar(const float* x, BlockQ8x* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;  // all-zero block: d = 0, qs = 0
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = static_cast<int>(std::nearbyint(xb[i] * id));
      out[b].qs[i] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].sum = sum;
  }
}

void quantize_activations_q8(const float* x, BlockQ8x* out, int64_t n) {
  switch (active_isa()) {
    case Isa::kAvx512:
    case Isa::kAvx512Vnni:
    case Isa::kAvx2:
    case Isa::kScalar:
      break;
  }
  quantize_activations_q8_scalar(x, out, n);
}

}  // namespace memwall::kernels
