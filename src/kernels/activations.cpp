// quantize_activations_q8 (and _q16, _q8_row): the scalar references and the
// dispatchers.
//
// Rounding is round-half-to-even (std::nearbyint in the default rounding mode),
// because that is what the SIMD float->int conversion (cvtps2dq) does; with
// the same d and 1/d (simd_q8_scale.h) every target produces identical blocks.
#include <cmath>
#include <cstring>

#include "kernels/isa.h"
#include "kernels/simd_kernels.h"
#include "kernels/simd_q8_scale.h"

namespace memwall::kernels {
namespace {

float block_amax(const float* xb) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
  return amax;
}

}  // namespace

void quantize_activations_q8_scalar(const float* x, BlockQ8x* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float d, id;
    q8_block_scale(block_amax(xb), d, id);
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

void quantize_activations_q16_scalar(const float* x, BlockQ16x* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float d, id;
    q16_block_scale(block_amax(xb), d, id);
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = static_cast<int>(std::nearbyint(xb[i] * id));
      const int hi = (q + 128) >> 8;  // arithmetic shift: floor((q + 128) / 256)
      out[b].hi[i] = static_cast<int8_t>(hi);
      out[b].lo[i] = static_cast<int8_t>(q - 256 * hi);
      sum += q;
    }
    out[b].d = d;
    out[b].sum = sum;
  }
}

void quantize_activations_q8_row_scalar(const float* x, uint8_t* out, int64_t cols) {
  float amax = 0;
  for (int64_t i = 0; i < cols; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  float d, id;
  q8_block_scale(amax, d, id);
  auto* q = reinterpret_cast<int8_t*>(out + sizeof(Q8RowHeader));
  int32_t sum = 0;
  for (int64_t i = 0; i < cols; ++i) {
    const int v = static_cast<int>(std::nearbyint(x[i] * id));
    q[i] = static_cast<int8_t>(v);
    sum += v;
  }
  const Q8RowHeader h{d, sum};
  std::memcpy(out, &h, sizeof h);
  const size_t used = sizeof(Q8RowHeader) + size_t(cols);
  std::memset(out + used, 0, q8_row_stride(cols) - used);
}

void quantize_activations_q8_row(const float* x, uint8_t* out, int64_t cols) {
  switch (active_isa()) {
    case Isa::kAvx512:
    case Isa::kAvx512Vnni:
      return quantize_activations_q8_row_avx512(x, out, cols);
    case Isa::kAvx2:
      return quantize_activations_q8_row_avx2(x, out, cols);
    case Isa::kScalar:
      break;
  }
  quantize_activations_q8_row_scalar(x, out, cols);
}

void quantize_activations_q16(const float* x, BlockQ16x* out, int64_t n) {
  switch (active_isa()) {
    case Isa::kAvx512:
    case Isa::kAvx512Vnni:
      return quantize_activations_q16_avx512(x, out, n);
    case Isa::kAvx2:
      return quantize_activations_q16_avx2(x, out, n);
    case Isa::kScalar:
      break;
  }
  quantize_activations_q16_scalar(x, out, n);
}

void quantize_activations_q8(const float* x, BlockQ8x* out, int64_t n) {
  switch (active_isa()) {
    case Isa::kAvx512:
    case Isa::kAvx512Vnni:
      return quantize_activations_q8_avx512(x, out, n);
    case Isa::kAvx2:
      return quantize_activations_q8_avx2(x, out, n);
    case Isa::kScalar:
      break;
  }
  quantize_activations_q8_scalar(x, out, n);
}

}  // namespace memwall::kernels
