// w8a8 rows x per-token int8 activations (kQ8Row), portable C++: the
// reference every other target equals bit for bit (see w8a8_kernels.h).
#include <cstring>

#include "kernels/simd_kernels.h"
#include "kernels/w8a8_kernels.h"

namespace memwall::kernels {
namespace {

float scale_of(const uint8_t* row) {
  float d;
  std::memcpy(&d, row, sizeof d);
  return d;
}

void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  for (int64_t r = 0; r < R; ++r) {
    const uint8_t* wr = w + size_t(r) * ws;
    const auto* qw = reinterpret_cast<const int8_t*>(wr + kW8A8Header);
    const float dw = scale_of(wr);
    for (int64_t t = 0; t < T; ++t) {
      const uint8_t* xt = x + size_t(t) * xs;
      const auto* qx = reinterpret_cast<const int8_t*>(xt + kW8A8Header);
      int32_t isum = 0;
      for (int64_t c = 0; c < n; ++c) isum += int32_t(qw[c]) * int32_t(qx[c]);
      y[t * ldy + r] = float(isum) * dw * scale_of(xt);
    }
  }
}

}  // namespace

const GemmKernel kGemmW8A8Scalar{TensorType::W8A8, Isa::kScalar, ActivationKind::kQ8Row, tile};

}  // namespace memwall::kernels
