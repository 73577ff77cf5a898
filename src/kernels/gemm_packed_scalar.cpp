// Scalar GEMM tiles over packed weights (layout: packed_weights.h): the
// portable reference for the packed SIMD kernels and proof that packing
// loses nothing (tests hold it to the row-layout scalar kernels). Same
// per-block integer math as gemm_scalar.cpp, with BlockQ8x activations or
// BlockQ16x ones (integer values 256 hi + lo).
#include <cstring>
#include <type_traits>

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

// Block b of token t's activations as (d, sum, X[32]) with X the integer
// values: qs for BlockQ8x, 256 hi + lo for BlockQ16x.
struct XBlock {
  float d;
  int32_t sum;
  int32_t v[32];
};
template <class X>
XBlock load_x(const uint8_t* p) {
  X xb;
  std::memcpy(&xb, p, sizeof(xb));
  XBlock r{xb.d, xb.sum, {}};
  for (int i = 0; i < 32; ++i) {
    if constexpr (std::is_same_v<X, BlockQ16x>) {
      r.v[i] = 256 * xb.hi[i] + xb.lo[i];
    } else {
      r.v[i] = xb.qs[i];
    }
  }
  return r;
}

template <TensorType kType, class X>
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
        const XBlock xb = load_x<X>(xr + size_t(b) * sizeof(X));
        const uint8_t* sc = group + size_t(b) * s.scale_bytes;
        const uint8_t* q = group + size_t(nb) * s.scale_bytes + size_t(b) * s.quant_bytes;
        const float d = fp16_to_fp32(load_u16(sc + lane / 2));
        int32_t isum = 0;
        if constexpr (kType == TensorType::Q8_0) {
          for (int p = 0; p < 8; ++p) {
            for (int j = 0; j < 4; ++j) {
              isum += int32_t(int8_t(q[p * 64 + lane + j] ^ 0x80)) * xb.v[4 * p + j];
            }
          }
          acc += d * xb.d * float(isum);
        } else {
          for (int p = 0; p < 4; ++p) {
            for (int j = 0; j < 4; ++j) {
              const uint8_t v = q[p * 64 + lane + j];
              isum += int32_t(v & 0x0f) * xb.v[4 * p + j] + int32_t(v >> 4) * xb.v[16 + 4 * p + j];
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
                                       packed_tile<TensorType::Q8_0, BlockQ8x>,
                                       WeightLayout::kPacked16};
const GemmKernel kGemmQ4_0PackedScalar{TensorType::Q4_0, Isa::kScalar, ActivationKind::kQ8,
                                       packed_tile<TensorType::Q4_0, BlockQ8x>,
                                       WeightLayout::kPacked16};
const GemmKernel kGemmQ4_1PackedScalar{TensorType::Q4_1, Isa::kScalar, ActivationKind::kQ8,
                                       packed_tile<TensorType::Q4_1, BlockQ8x>,
                                       WeightLayout::kPacked16};
const GemmKernel kGemmQ8_0Q16PackedScalar{TensorType::Q8_0, Isa::kScalar, ActivationKind::kQ16,
                                          packed_tile<TensorType::Q8_0, BlockQ16x>,
                                          WeightLayout::kPacked16};
const GemmKernel kGemmQ4_0Q16PackedScalar{TensorType::Q4_0, Isa::kScalar, ActivationKind::kQ16,
                                          packed_tile<TensorType::Q4_0, BlockQ16x>,
                                          WeightLayout::kPacked16};
const GemmKernel kGemmQ4_1Q16PackedScalar{TensorType::Q4_1, Isa::kScalar, ActivationKind::kQ16,
                                          packed_tile<TensorType::Q4_1, BlockQ16x>,
                                          WeightLayout::kPacked16};

}  // namespace memwall::kernels
