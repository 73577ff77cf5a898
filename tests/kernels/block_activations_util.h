// Inputs shared by the tests of GEMM tiles that take 32-value activation
// blocks (BlockQ8x, BlockQ16x): a padded, offset buffer of T rows and, beside
// it, the values a kernel multiplies by, in double.
#pragma once

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/activations.h"
#include "kernels/gemm.h"

namespace memwall::kernels::test_util {

struct TestBuffer {
  std::vector<uint8_t> buf;
  size_t offset = 0, stride = 0;
  std::vector<double> used;  // what the kernel multiplies by, rows x n
  const uint8_t* data() const { return buf.data() + offset; }
};

// T rows of n values as BlockQ8x or BlockQ16x (act), rows `pad` bytes apart
// beyond their blocks, starting `offset` bytes in: quantized floats with an
// outlier in every other row, or (random_blocks) random block bytes whose
// 16-bit low halves reach -128.
inline TestBuffer make_block_activations(ActivationKind act, int64_t T, int64_t n,
                                         std::mt19937& rng, size_t offset, size_t pad,
                                         bool random_blocks) {
  const bool q16 = act == ActivationKind::kQ16;
  const int64_t nb = n / 32;
  TestBuffer a;
  a.offset = offset;
  a.stride = size_t(nb) * (q16 ? sizeof(BlockQ16x) : sizeof(BlockQ8x)) + pad;
  a.buf.assign(offset + a.stride * size_t(T), 0x5a);
  a.used.resize(size_t(T * n));
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::uniform_int_distribution<int> byte(-128, 127);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t t = 0; t < T; ++t) {
    for (auto& v : x) v = dist(rng);
    if (t % 2 == 1) x[size_t(t * 7) % size_t(n)] = 90.0f;  // an outlier
    uint8_t* dst = a.buf.data() + offset + size_t(t) * a.stride;
    if (q16) {
      std::vector<BlockQ16x> blocks(static_cast<size_t>(nb));
      quantize_activations_q16(x.data(), blocks.data(), n);
      for (auto& b : blocks) {
        if (!random_blocks) continue;
        b.sum = 0;
        for (int i = 0; i < 32; ++i) {
          b.hi[i] = int8_t(std::max(-127, byte(rng)));
          b.lo[i] = int8_t(i % 5 == 0 ? -128 : byte(rng));
          b.sum += 256 * b.hi[i] + b.lo[i];
        }
      }
      std::memcpy(dst, blocks.data(), blocks.size() * sizeof(BlockQ16x));
      for (int64_t i = 0; i < n; ++i) {
        const BlockQ16x& b = blocks[size_t(i / 32)];
        a.used[size_t(t * n + i)] = double(b.d) * (256.0 * b.hi[i % 32] + b.lo[i % 32]);
      }
    } else {
      std::vector<BlockQ8x> blocks(static_cast<size_t>(nb));
      quantize_activations_q8(x.data(), blocks.data(), n);
      for (auto& b : blocks) {
        if (!random_blocks) continue;
        b.sum = 0;
        for (int i = 0; i < 32; ++i) {
          b.qs[i] = int8_t(std::max(-127, byte(rng)));
          b.sum += b.qs[i];
        }
      }
      std::memcpy(dst, blocks.data(), blocks.size() * sizeof(BlockQ8x));
      for (int64_t i = 0; i < n; ++i) {
        const BlockQ8x& b = blocks[size_t(i / 32)];
        a.used[size_t(t * n + i)] = double(b.d) * b.qs[i % 32];
      }
    }
  }
  return a;
}

}  // namespace memwall::kernels::test_util
