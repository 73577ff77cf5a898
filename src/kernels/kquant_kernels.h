// Internal: the GEMM kernels of the k-quant and ternary formats (q4_K, q5_K,
// q6_K, TQ1_0, TQ2_0) with super-block activations (activations_k.h), per
// target, and the integer form all of them compute with.
//
// Every format's super-block of 256 weights is read as
//   w_i = d * sc[g] * u[i] + dmin * corr[g],   g = i / 16,
// with u unsigned (0..63), sc and corr int16, d and dmin floats:
//   q4_K, q5_K: u = q,      sc = sub-block scale, corr = its minimum, dmin = -dmin
//   q6_K:       u = q + 32, sc = scale,           corr = scale,       dmin = -32 d
//   TQ1_0/TQ2_0: u = t + 1, sc = 1,               corr = 1,           dmin = -d
// so against activations x_i = d_x * q_i the dot product is
//   d_x * (d * sum_g sc[g] * dot_g(u, q) + dmin * sum_g corr[g] * bsum_g(q)),
// exact in integers up to the two float scalings: every target computes
// this, with unsigned-by-signed byte products (u <= 63 keeps vpmaddubsw's
// int16 pairs from saturating).
#pragma once

#include <cstdint>

#include "kernels/gemm.h"

namespace memwall::kernels {

struct KSuperBlock {
  uint8_t u[256];
  int16_t sc[16];
  int16_t corr[16];
  float d, dmin;
};

// Decodes one super-block of a k-quant or ternary format; false for others.
bool decode_ksuper(TensorType type, const uint8_t* block, KSuperBlock& out);

// 5 formats x {BlockQ8K, BlockQ16K} activations per target, in the order
// q4_K, q5_K, q6_K, TQ1_0, TQ2_0, each first with kQ8K then with kQ16K.
constexpr int kKQuantKernels = 10;
extern const GemmKernel kGemmKQuantScalar[kKQuantKernels];
extern const GemmKernel kGemmKQuantAvx2[kKQuantKernels];
extern const GemmKernel kGemmKQuantAvx512[kKQuantKernels];
extern const GemmKernel kGemmKQuantAvx512Vnni[kKQuantKernels];

}  // namespace memwall::kernels
