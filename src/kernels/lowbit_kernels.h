// Internal: the GEMM kernels of memwall's low-bit types (nf4, nf4_dq,
// q2_g64, q3_g64) with BlockQ8x / BlockQ16x activations, per target, and the
// integer form all of them compute with.
//
// Every 64-weight block is read as w_i = a * c_i + b with integer codes c:
//   q2_g64, q3_g64: c = q (0..3, 0..7), a = d, b = m (exact)
//   nf4, nf4_dq:    c = kNf4Codes[index], a = d / 127, b = 0
// so against activations x_i = d_x(h) * X_i (two 32-value blocks h = 0, 1)
//   sum_i w_i x_i = sum_h d_x(h) * (a * sum_{i in h} c_i X_i + b * sum_h X),
// the inner sums exact in integers. NF4's levels are not integers: the
// codes are round(127 * level), as llama.cpp's IQ4_NL keeps int8 levels, so
// the integer kernels (kFast, kInt8) see each weight within 0.5 / 127 of its
// block scale (0.2% RMS of the scale; the kExact path uses the exact levels).
// Targets may compute the code sums with an offset (VNNI: c + 128, unsigned)
// and fold it into b; the sums stay exact.
#pragma once

#include <cstdint>

#include "kernels/gemm.h"

namespace memwall::kernels {

// round(127 * NF4 level), level order as lowbit::kNf4Levels.
inline constexpr int8_t kNf4Codes[16] = {-127, -88, -67, -50, -36, -23, -12, 0,
                                         10,   20,  31,  43,  56,  71,  92,  127};

struct LowbitBlock {
  int8_t c[64];
  float a, b;
};

// Decodes block k (64 weights) of a row of a low-bit type; false for others.
bool decode_lowbit(TensorType type, const uint8_t* row, int64_t k, LowbitBlock& out);

// 4 formats x {BlockQ8x, BlockQ16x} activations per target, in the order
// nf4, nf4_dq, q2_g64, q3_g64, each first with kQ8 then with kQ16.
constexpr int kLowbitKernels = 8;
extern const GemmKernel kGemmLowbitScalar[kLowbitKernels];
extern const GemmKernel kGemmLowbitAvx2[kLowbitKernels];
extern const GemmKernel kGemmLowbitAvx512Vnni[kLowbitKernels];

}  // namespace memwall::kernels
