// Activations for the k-quant and ternary kernels (q4_K, q5_K, q6_K, TQ1_0,
// TQ2_0), quantized once per matmul input like BlockQ8x, but per 256-value
// super-block so one activation scale spans a whole weight super-block: the
// kernels then sum every sub-block's integer dot, scaled by its integer
// sub-block scale, in integers, and convert to float once per super-block
// (llama.cpp's q8_K does the same).
//
// bsums are sums of 16 consecutive quantized values: the weight formats'
// offsets and minimums (q = u - 32, w = d sc q - dmin m, t - 1) contribute
// per 16-value group a constant times that sum.
#pragma once

#include <cstdint>

namespace memwall::kernels {

constexpr int64_t kQK = 256;  // values per super-block

// 8-bit: x ~= d * qs[i], d = max|x| / 127 (kInt8 precision).
struct BlockQ8K {
  float d;
  int16_t bsums[16];
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8K) == 292);

// 16-bit (kFast precision): X = round(x / d), d = max|x| / 32512, split as
// BlockQ16x does: hi = (X + 128) >> 8, lo = X - 256 hi, both int8, so the
// 8-bit kernels run twice and combine 256 * dot(hi) + dot(lo).
struct BlockQ16K {
  float d;
  int16_t bsums_hi[16];
  int16_t bsums_lo[16];
  int8_t hi[kQK];
  int8_t lo[kQK];
};
static_assert(sizeof(BlockQ16K) == 580);

// n is a multiple of 256. Portable code only: every target reads the same
// bits, and the cost is O(T * cols) against the matmul's O(T * cols * rows).
void quantize_activations_q8k(const float* x, BlockQ8K* out, int64_t n);
void quantize_activations_q16k(const float* x, BlockQ16K* out, int64_t n);

}  // namespace memwall::kernels
