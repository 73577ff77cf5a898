#include "kernels/hadamard.h"

#include <cmath>

#include "base/error.h"
#include "base/splitmix64.h"

namespace memwall::kernels {
namespace {

bool is_prime(int64_t q) {
  if (q < 2) return false;
  for (int64_t d = 2; d * d <= q; ++d) {
    if (q % d == 0) return false;
  }
  return true;
}

// The dense step keeps a column of H_m x on the stack.
constexpr int64_t kMaxPaley = 256;

bool power_of_two(int64_t p) {
  return p > 0 && (p & (p - 1)) == 0;
}

// The smallest m (1 or a Paley order) with n = m * 2^k; 0 if none.
int64_t paley_factor(int64_t n) {
  if (power_of_two(n)) return 1;
  for (int64_t m = 4; m <= n && m <= kMaxPaley; m += 4) {
    if (n % m == 0 && power_of_two(n / m) && is_prime(m - 1) && (m - 1) % 4 == 3) return m;
  }
  return 0;
}

// Paley construction I: for q prime, q = 3 mod 4, a Hadamard matrix of order
// q + 1 from the quadratic residues mod q: Q[i][j] = chi(j - i), skew, and
// H = I + [[0, 1^T], [-1, Q]].
std::vector<int8_t> paley_matrix(int64_t m) {
  const int64_t q = m - 1;
  std::vector<int8_t> chi(size_t(q), -1);
  chi[0] = 0;
  for (int64_t x = 1; x < q; ++x) chi[size_t(x * x % q)] = 1;
  std::vector<int8_t> h(size_t(m * m));
  auto at = [&](int64_t i, int64_t j) -> int8_t& { return h[size_t(i * m + j)]; };
  at(0, 0) = 1;
  for (int64_t j = 1; j < m; ++j) {
    at(0, j) = 1;
    at(j, 0) = -1;
  }
  for (int64_t i = 1; i < m; ++i) {
    for (int64_t j = 1; j < m; ++j) {
      at(i, j) = i == j ? 1 : chi[size_t(((j - i) % q + q) % q)];
    }
  }
  return h;
}

// In-place unnormalized Walsh-Hadamard transform of p = 2^k values (symmetric).
void fwht(float* x, int64_t p) {
  for (int64_t h = 1; h < p; h *= 2) {
    for (int64_t i = 0; i < p; i += 2 * h) {
      for (int64_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
}

}  // namespace

bool HadamardRotation::supported(int64_t n) {
  return n > 0 && paley_factor(n) != 0;
}

HadamardRotation::HadamardRotation(int64_t n, uint64_t seed) : n_(n) {
  m_ = n > 0 ? paley_factor(n) : 0;
  if (m_ == 0) {
    fail("no Hadamard rotation of size ", n,
         ": it must be 2^k times 1 or a Paley order (12, 20, 24, 44, 72, ...)");
  }
  p_ = n / m_;
  if (m_ > 1) paley_ = paley_matrix(m_);
  SplitMix64 rng{seed};
  signs_.resize(size_t(n));
  for (float& s : signs_) s = (rng.next() >> 63) ? -1.0f : 1.0f;
  scale_ = float(1.0 / std::sqrt(double(n)));
}

void HadamardRotation::hadamard(float* x, bool transposed) const {
  // x is [m][p]: H_p along each row, then H_m (or its transpose) down each column.
  for (int64_t i = 0; i < m_; ++i) fwht(x + i * p_, p_);
  if (m_ == 1) return;
  float tmp[kMaxPaley];
  for (int64_t j = 0; j < p_; ++j) {
    for (int64_t i = 0; i < m_; ++i) {
      float sum = 0;
      for (int64_t a = 0; a < m_; ++a) {
        const int8_t h = transposed ? paley_[size_t(a * m_ + i)] : paley_[size_t(i * m_ + a)];
        sum += float(h) * x[a * p_ + j];
      }
      tmp[i] = sum;
    }
    for (int64_t i = 0; i < m_; ++i) x[i * p_ + j] = tmp[i];
  }
}

void HadamardRotation::apply(float* x) const {
  hadamard(x, false);
  for (int64_t i = 0; i < n_; ++i) x[i] *= signs_[size_t(i)] * scale_;
}

void HadamardRotation::apply_transposed(float* x) const {
  for (int64_t i = 0; i < n_; ++i) x[i] *= signs_[size_t(i)] * scale_;
  hadamard(x, true);
}

}  // namespace memwall::kernels
