// Internal: the GEMM kernels of memwall's low-bit types (nf4, nf4_dq,
// q2_g64, q3_g64) with BlockQ8x / BlockQ16x activations, per target, and the
// integer form all of them compute with.
//
// Every 64-weight block is read as w_i = a * c_i + b with integer codes c:
//   q2_g64, q3_g64: c = q (0..3, 0..7), a = d, b = m (exact)
//   nf4, nf4_dq:    c = round(K * level[index]), a = d / K, b = 0
// so against activations x_i = d_x(h) * X_i (two 32-value blocks h = 0, 1)
//   sum_i w_i x_i = sum_h d_x(h) * (a * sum_{i in h} c_i X_i + b * sum_h X),
// the inner sums exact in integers. NF4's levels are not integers, so the
// codes round them: with 8-bit activations (kInt8) to K = 127, bytes, as
// llama.cpp's IQ4_NL keeps int8 levels (each weight within 0.5 / 127 of its
// block scale, 0.2% RMS); with 16-bit activations (kFast, whose point is
// quality) to K = 16383, int16, within 3e-5 of the scale, below the f16
// scale's own rounding. kExact uses the exact levels. Targets may compute
// the code sums with an offset (VNNI: byte codes + 128, unsigned) and undo
// it in integers; the sums stay exact.
#pragma once

#include <cstdint>

#include "kernels/gemm.h"

namespace memwall::kernels {

// round(127 * NF4 level) and round(16383 * NF4 level), level order as
// lowbit::kNf4Levels. 16383: four products with 16-bit activations
// (|X| <= 32512) still fit an int32 lane (4 * 16383 * 32512 < 2^31).
inline constexpr int8_t kNf4Codes[16] = {-127, -88, -67, -50, -36, -23, -12, 0,
                                         10,   20,  31,  43,  56,  71,  92,  127};
inline constexpr int kNf4Wide = 16383;
inline constexpr int16_t kNf4Codes16[16] = {-16383, -11406, -8602, -6470, -4660, -3027,
                                            -1492,  0,      1304,  2637,  4032,  5536,
                                            7220,   9217,   11844, 16383};

struct LowbitBlock {
  int16_t c[64];
  float a, b;
};

// Decodes block k (64 weights) of a row of a low-bit type; false for others.
// wide: NF4 codes for 16-bit activations (kNf4Codes16), else kNf4Codes.
bool decode_lowbit(TensorType type, const uint8_t* row, int64_t k, LowbitBlock& out,
                   bool wide = false);

// 4 formats x {BlockQ8x, BlockQ16x} activations per target, in the order
// nf4, nf4_dq, q2_g64, q3_g64, each first with kQ8 then with kQ16.
constexpr int kLowbitKernels = 8;
extern const GemmKernel kGemmLowbitScalar[kLowbitKernels];
extern const GemmKernel kGemmLowbitAvx2[kLowbitKernels];
extern const GemmKernel kGemmLowbitAvx512Vnni[kLowbitKernels];

}  // namespace memwall::kernels
