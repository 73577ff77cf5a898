// Activations quantized on the fly to 8-bit blocks, so matrix products with
// quantized weights run as integer dot products (issue "Fast CPU kernels").
// One block per 32 activations: x ~= d * qs[i]; `sum` = sum of qs, which the
// q4_0 offset (-8) and q4_1 minimum terms need.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memwall::kernels {

struct BlockQ8x {
  float d;
  int32_t sum;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8x) == 40);

// n is a multiple of 32. Rounds to nearest; d = max|x| / 127.
void quantize_activations_q8(const float* x, BlockQ8x* out, int64_t n);

// 16-bit activations for the fast path: per block of 32, X = round(x / d)
// with d = max|x| / 32512, so |X| <= 32512, stored as two int8 halves
// hi = (X + 128) >> 8 (|hi| <= 127) and lo = X - 256 hi (-128..127):
// x ~= d * (256 hi + lo). Integer kernels take two 8-bit dot products, one
// per half, and combine them exactly: 256 dot(w, hi) + dot(w, lo). 8-bit
// activations alone cost the default model KL 3.7e-3 and 96% top-1 agreement;
// these cost KL < 1e-7 (bench/results/activation_precision.md).
// `sum` = sum of X (= 256 sum(hi) + sum(lo)), for the q4_0 / q8_0 offsets
// and the q4_1 minimum term.
struct BlockQ16x {
  float d;
  int32_t sum;
  int8_t hi[32];
  int8_t lo[32];
};
static_assert(sizeof(BlockQ16x) == 72);

void quantize_activations_q16(const float* x, BlockQ16x* out, int64_t n);

// Per-token int8 activations, the "A8" of W8A8 (ActivationKind::kQ8Row): ONE
// scale per row of X rather than per 32 values, so a w8a8 row's dot product
// is one integer sum and one float product. Each token's record is a
// Q8RowHeader, then `cols` int8 q = round(x / d) (ties to even, as BlockQ8x),
// d = max|x| / 127 (0 when max|x| < 1e-30), sum = sum of q; then zero bytes up
// to q8_row_stride(cols), a multiple of 64. Coarse on purpose: SmoothQuant's
// migration (memwall quantize --smooth) is what tames a token's outlier
// channels. |q| <= 127, which the kernels rely on.
struct Q8RowHeader {
  float d;
  int32_t sum;
};
static_assert(sizeof(Q8RowHeader) == 8);

// Bytes of one token's record: 8 + cols rounded up to 64.
inline size_t q8_row_stride(int64_t cols) {
  return (sizeof(Q8RowHeader) + size_t(cols) + 63) / 64 * 64;
}

// One token: x[cols] -> out[q8_row_stride(cols)] bytes. cols is a multiple of 32.
void quantize_activations_q8_row(const float* x, uint8_t* out, int64_t cols);

}  // namespace memwall::kernels
