// Scalar GEMM tile kernels: the reference every SIMD kernel is tested against,
// and the fallback on CPUs without AVX2. Plain loops, one output at a time.
//
// Quantized weights take BlockQ8x activations and compute each block's dot
// product exactly in integers, then scale it once:
//   q8_0: y += d_w * d_x * sum(q_w * q_x)
//   q4_0: y += d_w * d_x * (sum(q * q_x) - 8 * sum_x)    (q = unsigned nibble)
//   q4_1: y += d_w * d_x * sum(q * q_x) + m_w * d_x * sum_x
// Float weights (f32, f16, bf16) take f32 activations.
// Pointers may be unaligned, so blocks are read with memcpy.
#include <cstddef>
#include <cstring>

#include "base/fp16.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {
namespace {

constexpr int kQK = 32;  // weights per quantized block

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

struct Q8x {
  float d;
  int32_t sum;
  const int8_t* qs;
};
Q8x load_q8x(const uint8_t* p) {
  Q8x b;
  std::memcpy(&b.d, p + offsetof(BlockQ8x, d), 4);
  std::memcpy(&b.sum, p + offsetof(BlockQ8x, sum), 4);
  b.qs = reinterpret_cast<const int8_t*>(p + offsetof(BlockQ8x, qs));
  return b;
}

// Block layouts (GGUF): q8_0 {f16 d; i8 qs[32]}, q4_0 {f16 d; u8 qs[16]},
// q4_1 {f16 d; f16 m; u8 qs[16]}; nibble byte j holds weight j (low), j+16 (high).
struct Q8_0 {
  static constexpr int kBytes = 34;
  static float block(const uint8_t* w, const Q8x& x) {
    const auto* q = reinterpret_cast<const int8_t*>(w + 2);
    int32_t isum = 0;
    for (int i = 0; i < kQK; ++i) isum += int32_t(q[i]) * x.qs[i];
    return fp16_to_fp32(load_u16(w)) * x.d * float(isum);
  }
};

int32_t nibble_dot(const uint8_t* q, const int8_t* xq) {
  int32_t isum = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    isum += int32_t(q[j] & 0x0f) * xq[j] + int32_t(q[j] >> 4) * xq[j + kQK / 2];
  }
  return isum;
}

struct Q4_0 {
  static constexpr int kBytes = 18;
  static float block(const uint8_t* w, const Q8x& x) {
    const int32_t isum = nibble_dot(w + 2, x.qs) - 8 * x.sum;
    return fp16_to_fp32(load_u16(w)) * x.d * float(isum);
  }
};

struct Q4_1 {
  static constexpr int kBytes = 20;
  static float block(const uint8_t* w, const Q8x& x) {
    const int32_t isum = nibble_dot(w + 4, x.qs);
    return fp16_to_fp32(load_u16(w)) * x.d * float(isum) +
           fp16_to_fp32(load_u16(w + 2)) * x.d * float(x.sum);
  }
};

template <class F>
void tile_q8(const uint8_t* w, size_t w_stride, int64_t R, const uint8_t* x, size_t x_stride,
             int64_t T, int64_t n, float* y, int64_t ldy) {
  const int64_t nb = n / kQK;
  for (int64_t t = 0; t < T; ++t) {
    const uint8_t* xt = x + size_t(t) * x_stride;
    for (int64_t r = 0; r < R; ++r) {
      const uint8_t* wr = w + size_t(r) * w_stride;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        acc += F::block(wr + b * F::kBytes, load_q8x(xt + b * sizeof(BlockQ8x)));
      }
      y[t * ldy + r] = acc;
    }
  }
}

float f32_at(const uint8_t* p, int64_t i) {
  float v;
  std::memcpy(&v, p + 4 * i, 4);
  return v;
}
float f16_at(const uint8_t* p, int64_t i) {
  return fp16_to_fp32(load_u16(p + 2 * i));
}
float bf16_at(const uint8_t* p, int64_t i) {
  return bf16_to_fp32(load_u16(p + 2 * i));
}

template <float (*kAt)(const uint8_t*, int64_t)>
void tile_float(const uint8_t* w, size_t w_stride, int64_t R, const uint8_t* x, size_t x_stride,
                int64_t T, int64_t n, float* y, int64_t ldy) {
  for (int64_t t = 0; t < T; ++t) {
    const uint8_t* xt = x + size_t(t) * x_stride;
    for (int64_t r = 0; r < R; ++r) {
      const uint8_t* wr = w + size_t(r) * w_stride;
      float acc = 0;
      for (int64_t c = 0; c < n; ++c) acc += kAt(wr, c) * f32_at(xt, c);
      y[t * ldy + r] = acc;
    }
  }
}

}  // namespace

const GemmKernel kGemmF32Scalar{TensorType::F32, Isa::kScalar, ActivationKind::kF32,
                                tile_float<f32_at>};
const GemmKernel kGemmF16Scalar{TensorType::F16, Isa::kScalar, ActivationKind::kF32,
                                tile_float<f16_at>};
const GemmKernel kGemmBf16Scalar{TensorType::BF16, Isa::kScalar, ActivationKind::kF32,
                                 tile_float<bf16_at>};
const GemmKernel kGemmQ8_0Scalar{TensorType::Q8_0, Isa::kScalar, ActivationKind::kQ8,
                                 tile_q8<Q8_0>};
const GemmKernel kGemmQ4_0Scalar{TensorType::Q4_0, Isa::kScalar, ActivationKind::kQ8,
                                 tile_q8<Q4_0>};
const GemmKernel kGemmQ4_1Scalar{TensorType::Q4_1, Isa::kScalar, ActivationKind::kQ8,
                                 tile_q8<Q4_1>};

}  // namespace memwall::kernels
