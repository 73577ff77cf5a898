// Internal: the GEMM kernels of GGUF's q5_0 and q5_1 (32 weights per block,
// 5-bit levels q = 0..31: low 4 bits in the nibbles, the 5th in qh) with
// BlockQ8x and BlockQ16x activations, per target.
//
// Against activations x = d_x * X (one block of 32), a block's product is
//   q5_0 (w = d * (q - 16)):  d * d_x * (sum q X - 16 * sum X)
//   q5_1 (w = d * q + m):     d * d_x * sum q X + m * d_x * sum X
// with the sums exact in int32 (|sum q X| <= 32 * 31 * 32512 for BlockQ16x,
// whose X = 256 hi + lo). Every target computes the same integers; only the
// float accumulation order differs.
#pragma once

#include "kernels/gemm.h"

namespace memwall::kernels {

// Per target, in the order q5_0 x kQ8, q5_0 x kQ16, q5_1 x kQ8, q5_1 x kQ16.
constexpr int kQ5Kernels = 4;
extern const GemmKernel kGemmQ5Scalar[kQ5Kernels];
extern const GemmKernel kGemmQ5Avx2[kQ5Kernels];
extern const GemmKernel kGemmQ5Avx512Vnni[kQ5Kernels];

}  // namespace memwall::kernels
