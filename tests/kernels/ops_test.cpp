#include "kernels/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace memwall::kernels {
namespace {

TEST(Ops, RmsNormMatchesFormula) {
  std::vector<float> x = {1, -2, 3, -4}, w = {1, 0.5f, 2, 1}, y(4);
  rms_norm(x.data(), w.data(), 0.0f, 4, y.data());
  const float r = 1.0f / std::sqrt((1 + 4 + 9 + 16) / 4.0f);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y[size_t(i)], x[size_t(i)] * r * w[size_t(i)]);
}

TEST(Ops, RopeRotatesTheRightPairs) {
  // One head of D=4, n_rot=4, position 1, base 1 so every theta is 1 radian... base^0 = 1 and
  // base^(-2/4) = 1 too.
  const float c = std::cos(1.0f), s = std::sin(1.0f);
  std::vector<float> normal = {1, 0, 0, 1};
  rope(normal.data(), 1, 4, 4, 1, 1.0f, 1.0f, nullptr, RopeStyle::kNormal);
  EXPECT_NEAR(normal[0], c, 1e-6);  // pair (0, 1)
  EXPECT_NEAR(normal[1], s, 1e-6);
  EXPECT_NEAR(normal[2], -s, 1e-6);  // pair (2, 3)
  EXPECT_NEAR(normal[3], c, 1e-6);
  std::vector<float> neox = {1, 0, 0, 1};
  rope(neox.data(), 1, 4, 4, 1, 1.0f, 1.0f, nullptr, RopeStyle::kNeox);
  EXPECT_NEAR(neox[0], c, 1e-6);  // pair (0, 2)
  EXPECT_NEAR(neox[2], s, 1e-6);
  EXPECT_NEAR(neox[1], -s, 1e-6);  // pair (1, 3)
  EXPECT_NEAR(neox[3], c, 1e-6);
}

TEST(Ops, RopeLeavesDimsPastNRotAlone) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};  // 2 heads of D=4, n_rot=2
  rope(x.data(), 2, 4, 2, 7, 10000.0f, 1.0f, nullptr, RopeStyle::kNormal);
  EXPECT_EQ(x[2], 3);
  EXPECT_EQ(x[3], 4);
  EXPECT_EQ(x[6], 7);
  EXPECT_EQ(x[7], 8);
}

TEST(Ops, RopeAtPositionZeroIsIdentity) {
  std::vector<float> x = {1, 2, 3, 4};
  rope(x.data(), 1, 4, 4, 0, 10000.0f, 1.0f, nullptr, RopeStyle::kNormal);
  EXPECT_EQ(x, (std::vector<float>{1, 2, 3, 4}));
}

TEST(Ops, SoftmaxIsStableAndNormalized) {
  std::vector<float> x = {1000, 1001, 999};
  softmax(x.data(), 3);
  EXPECT_NEAR(x[0] + x[1] + x[2], 1.0f, 1e-6);
  EXPECT_NEAR(x[1] / x[0], std::exp(1.0f), 1e-4);
}

TEST(Ops, SwigluMatchesFormula) {
  std::vector<float> g = {-1, 0, 2}, u = {3, 4, 5};
  swiglu(g.data(), u.data(), 3);
  EXPECT_NEAR(g[0], -1 / (1 + std::exp(1.0f)) * 3, 1e-6);
  EXPECT_EQ(g[1], 0);
  EXPECT_NEAR(g[2], 2 / (1 + std::exp(-2.0f)) * 5, 1e-5);
}

}  // namespace
}  // namespace memwall::kernels
