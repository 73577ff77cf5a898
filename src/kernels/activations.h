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

}  // namespace memwall::kernels
