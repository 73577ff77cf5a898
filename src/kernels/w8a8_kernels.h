// Internal: what every w8a8 GEMM tile (gemm_w8a8_*.cpp) computes, so the
// targets agree bit for bit.
//
// W rows (format_w8a8.cpp): {f32 d_w; int32 sum_w} then n int8 q_w.
// X rows (activations.h, kQ8Row): {f32 d_x; int32 sum_x} then n int8 q_x.
//   isum[t, r] = sum_c q_w[r, c] * q_x[t, c]        exact in int32
//   y[t, r]    = (float(isum) * d_w[r]) * d_x[t]    two f32 products, this order
// |q_x| <= 127 (the AVX2 tile negates activations); every product is at most
// 127 * 127 in magnitude, so isum fits an int32 for n <= kW8A8MaxCols. Targets
// may form it through wrapping int32 arithmetic with offsets (VNNI: x + 128
// as unsigned bytes, then - 128 * sum_w): wrapping sums equal the true sum
// modulo 2^32, hence exactly, whenever the true sum fits.
#pragma once

#include <cstdint>

namespace memwall::kernels {

// 2^31 / 127^2 is 133144; matmul keeps wider rows on the exact path.
inline constexpr int64_t kW8A8MaxCols = 131072;

inline constexpr int kW8A8Header = 8;  // d and sum, in front of W's and X's rows alike

}  // namespace memwall::kernels
