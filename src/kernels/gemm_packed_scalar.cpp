// Scalar GEMM tiles over packed weights (layout: packed_weights.h): the
// portable reference for the packed SIMD kernels and proof that packing
// loses nothing (tests hold it to the row-layout scalar kernels). Same
// per-block integer math as gemm_scalar.cpp.
#include <cstring>

#include "base/fp16.h"
#include "kernels/packed_weights.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {
namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

template <TensorType kType>
void packed_tile(const uint8_t* w, size_t w_stride, int64_t R, const uint8_t* x, size_t x_stride,
                 int64_t T, int64_t n, float* y, int64_t ldy) {
  const PackedShape s = packed_shape(kType, kPackRows, n);
  const int64_t nb = n / 32;
  for (int64_t r = 0; r < R; ++r) {
    const uint8_t* group = w + size_t(r / kPackRows) * w_stride;
    const size_t lane = size_t(r % kPackRows) * 4;
    for (int64_t t = 0; t < T; ++t) {
      const uint8_t* xr = x + size_t(t) * x_stride;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        BlockQ8x xb;
        std::memcpy(&xb, xr + size_t(b) * sizeof(BlockQ8x), sizeof(xb));
        const uint8_t* q = group + size_t(b) * s.quant_bytes;
        const uint8_t* sc = group + size_t(nb) * s.quant_bytes + size_t(b) * s.scale_bytes;
        const float d = fp16_to_fp32(load_u16(sc + lane / 2));
        int32_t isum = 0;
        if constexpr (kType == TensorType::Q8_0) {
          for (int p = 0; p < 8; ++p) {
            for (int j = 0; j < 4; ++j) {
              isum += int32_t(int8_t(q[p * 64 + lane + j] ^ 0x80)) * xb.qs[4 * p + j];
            }
          }
          acc += d * xb.d * float(isum);
        } else {
          for (int p = 0; p < 4; ++p) {
            for (int j = 0; j < 4; ++j) {
              const uint8_t v = q[p * 64 + lane + j];
              isum +=
                  int32_t(v & 0x0f) * xb.qs[4 * p + j] + int32_t(v >> 4) * xb.qs[16 + 4 * p + j];
            }
          }
          if constexpr (kType == TensorType::Q4_0) {
            acc += d * xb.d * float(isum - 8 * xb.sum);
          } else {
            const float m = fp16_to_fp32(load_u16(sc + 2 * kPackRows + lane / 2));
            acc += d * xb.d * float(isum) + m * xb.d * float(xb.sum);
          }
        }
      }
      y[t * ldy + r] = acc;
    }
  }
}

}  // namespace

const GemmKernel kGemmQ8_0PackedScalar{TensorType::Q8_0, Isa::kScalar, ActivationKind::kQ8,
                                       packed_tile<TensorType::Q8_0>, WeightLayout::kPacked16};
const GemmKernel kGemmQ4_0PackedScalar{TensorType::Q4_0, Isa::kScalar, ActivationKind::kQ8,
                                       packed_tile<TensorType::Q4_0>, WeightLayout::kPacked16};
const GemmKernel kGemmQ4_1PackedScalar{TensorType::Q4_1, Isa::kScalar, ActivationKind::kQ8,
                                       packed_tile<TensorType::Q4_1>, WeightLayout::kPacked16};

}  // namespace memwall::kernels
