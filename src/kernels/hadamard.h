// Randomized Hadamard rotations R = diag(s) H / sqrt(n), with s random signs
// from a seed. Rotating a model's hidden states by R spreads outlier channels
// over every channel (QuaRot), which is what low-bit weights and activations
// need. n = m * 2^k where m is 1 or a Paley order q + 1 (q a prime = 3 mod 4:
// 12, 20, 24, 44, 72, ...): H = H_m (x) H_2^k, applied as a fast Walsh-Hadamard
// transform along the 2^k axis and a dense m x m product along the other, so
// a rotation costs O(n log n + n m), never an n x n matrix. Widths of real
// models fit: 576 = 72 * 8, 640 = 20 * 32, 1536 = 12 * 128, 2^k.
#pragma once

#include <cstdint>
#include <vector>

namespace memwall::kernels {

class HadamardRotation {
 public:
  // Throws Error when n has no such factorization.
  HadamardRotation(int64_t n, uint64_t seed);
  static bool supported(int64_t n);

  int64_t size() const { return n_; }
  void apply(float* x) const;             // x <- R x
  void apply_transposed(float* x) const;  // x <- R^T x (the inverse)

 private:
  void hadamard(float* x, bool transposed) const;  // x <- H x or H^T x, unnormalized

  int64_t n_, m_, p_;          // n = m * p, p a power of two
  std::vector<int8_t> paley_;  // H_m, row-major (empty when m == 1)
  std::vector<float> signs_;   // s
  float scale_;                // 1 / sqrt(n)
};

}  // namespace memwall::kernels
