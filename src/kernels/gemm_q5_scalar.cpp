// q5_0 and q5_1 weights x BlockQ8x / BlockQ16x activations, scalar: the
// reference the SIMD tiles are tested against (integer form: q5_kernels.h).
// Plain loops, one output at a time; blocks are read with memcpy.
#include <cstddef>
#include <cstring>

#include "base/fp16.h"
#include "kernels/activations.h"
#include "kernels/q5_kernels.h"

namespace memwall::kernels {
namespace {

constexpr int kQK = 32;

float f16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return fp16_to_fp32(v);
}

// The 32 levels of a block whose qh starts at `qh` (nibbles follow it).
void levels(const uint8_t* qh_bytes, int32_t (&q)[kQK]) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const uint8_t* qs = qh_bytes + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = (qs[j] & 0x0f) | int32_t((qh >> j) & 1) << 4;
    q[j + kQK / 2] = (qs[j] >> 4) | int32_t((qh >> (j + kQK / 2)) & 1) << 4;
  }
}

// Activation block: X_j (int8 or 16-bit), d_x, sum X.
struct ActQ8 {
  using Block = BlockQ8x;
  static int32_t value(const uint8_t* b, int j) {
    return int8_t(b[offsetof(BlockQ8x, qs) + size_t(j)]);
  }
};
struct ActQ16 {
  using Block = BlockQ16x;
  static int32_t value(const uint8_t* b, int j) {
    return 256 * int8_t(b[offsetof(BlockQ16x, hi) + size_t(j)]) +
           int8_t(b[offsetof(BlockQ16x, lo) + size_t(j)]);
  }
};

// kMin: q5_1 {f16 d; f16 m; qh; qs} (24 bytes), else q5_0 {f16 d; qh; qs} (22).
template <bool kMin, class A>
void tile(const uint8_t* w, size_t w_stride, int64_t R, const uint8_t* x, size_t x_stride,
          int64_t T, int64_t n, float* y, int64_t ldy) {
  constexpr int kBytes = kMin ? 24 : 22;
  constexpr size_t kXBytes = sizeof(typename A::Block);
  const int64_t nb = n / kQK;
  for (int64_t t = 0; t < T; ++t) {
    const uint8_t* xt = x + size_t(t) * x_stride;
    for (int64_t r = 0; r < R; ++r) {
      const uint8_t* wr = w + size_t(r) * w_stride;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* wb = wr + b * kBytes;
        const uint8_t* xb = xt + size_t(b) * kXBytes;
        float dx;
        int32_t sum;
        std::memcpy(&dx, xb, 4);
        std::memcpy(&sum, xb + 4, 4);
        int32_t q[kQK];
        levels(wb + (kMin ? 4 : 2), q);
        int32_t isum = 0;
        for (int j = 0; j < kQK; ++j) isum += q[j] * A::value(xb, j);
        if constexpr (kMin) {
          acc += f16_at(wb) * dx * float(isum) + f16_at(wb + 2) * dx * float(sum);
        } else {
          acc += f16_at(wb) * dx * float(isum - 16 * sum);
        }
      }
      y[t * ldy + r] = acc;
    }
  }
}

}  // namespace

const GemmKernel kGemmQ5Scalar[kQ5Kernels] = {
    {TensorType::Q5_0, Isa::kScalar, ActivationKind::kQ8, tile<false, ActQ8>},
    {TensorType::Q5_0, Isa::kScalar, ActivationKind::kQ16, tile<false, ActQ16>},
    {TensorType::Q5_1, Isa::kScalar, ActivationKind::kQ8, tile<true, ActQ8>},
    {TensorType::Q5_1, Isa::kScalar, ActivationKind::kQ16, tile<true, ActQ16>},
};

}  // namespace memwall::kernels
