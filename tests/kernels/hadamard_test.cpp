#include "kernels/hadamard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"

namespace memwall::kernels {
namespace {

// The dense matrix R, column by column: R e_j.
std::vector<double> dense(const HadamardRotation& r) {
  const int64_t n = r.size();
  std::vector<double> m(size_t(n * n));
  std::vector<float> e(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    std::fill(e.begin(), e.end(), 0.0f);
    e[size_t(j)] = 1;
    r.apply(e.data());
    for (int64_t i = 0; i < n; ++i) m[size_t(i * n + j)] = e[size_t(i)];
  }
  return m;
}

class HadamardSizes : public ::testing::TestWithParam<int64_t> {};

// A Hadamard matrix scaled by 1/sqrt(n) with random signs: every entry is
// +-1/sqrt(n) and the rows are orthonormal. Both together are the definition,
// so this checks the Paley construction and the Kronecker product, not only
// that apply and apply_transposed undo each other.
TEST_P(HadamardSizes, IsASignedScaledHadamardMatrix) {
  const int64_t n = GetParam();
  HadamardRotation r(n, 7);
  const std::vector<double> m = dense(r);
  const double entry = 1.0 / std::sqrt(double(n));
  for (double v : m) ASSERT_NEAR(std::fabs(v), entry, 1e-6);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = i; k < n; k += std::max<int64_t>(1, n / 37)) {
      double dot = 0;
      for (int64_t j = 0; j < n; ++j) dot += m[size_t(i * n + j)] * m[size_t(k * n + j)];
      ASSERT_NEAR(dot, i == k ? 1.0 : 0.0, 1e-5) << i << "," << k;
    }
  }
}

TEST_P(HadamardSizes, TransposeIsTheInverse) {
  const int64_t n = GetParam();
  HadamardRotation r(n, 11);
  const std::vector<double> m = dense(r);
  std::mt19937 gen(3);
  std::normal_distribution<float> dist;
  std::vector<float> x(static_cast<size_t>(n)), y;
  for (float& v : x) v = dist(gen);
  y = x;
  r.apply_transposed(y.data());
  for (int64_t j = 0; j < n; ++j) {  // R^T x, from the dense R
    double want = 0;
    for (int64_t i = 0; i < n; ++i) want += m[size_t(i * n + j)] * x[size_t(i)];
    ASSERT_NEAR(y[size_t(j)], want, 1e-4);
  }
  r.apply(y.data());
  for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[size_t(i)], x[size_t(i)], 1e-4);
}

INSTANTIATE_TEST_SUITE_P(ModelWidths, HadamardSizes,
                         ::testing::Values(1, 2, 12, 20, 64, 72, 576, 640, 1536, 2048));

TEST(Hadamard, SpreadsAnOutlierOverEveryChannel) {
  HadamardRotation r(576, 1);
  std::vector<float> x(576, 0.0f);
  x[100] = 50.0f;
  r.apply_transposed(x.data());
  for (float v : x) EXPECT_NEAR(std::fabs(v), 50.0f / 24.0f, 1e-4);
}

TEST(Hadamard, SeedsGiveDifferentSigns) {
  HadamardRotation a(64, 1), b(64, 2);
  std::vector<float> x(64, 1.0f), y(64, 1.0f);
  a.apply_transposed(x.data());  // H^T s: differs wherever the signs do
  b.apply_transposed(y.data());
  EXPECT_NE(x, y);
}

TEST(Hadamard, UnsupportedSizesAreErrors) {
  EXPECT_TRUE(HadamardRotation::supported(576));
  EXPECT_TRUE(HadamardRotation::supported(8192));
  EXPECT_FALSE(HadamardRotation::supported(100));
  EXPECT_FALSE(HadamardRotation::supported(0));
  EXPECT_THROW(HadamardRotation(100, 1), Error);
}

}  // namespace
}  // namespace memwall::kernels
