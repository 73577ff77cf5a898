// quantize_activations_q8 / _q16: every target produces the scalar version's
// blocks bit for bit, and the scalar version rounds to nearest (ties to even)
// with d = max|x| / 127 (q8) or / 32512 (q16, split into int8 halves).
#include "kernels/activations.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/isa.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {
namespace {

constexpr Isa kTargets[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni};

// Inputs that stress the rounding and the scale: normal values of several
// magnitudes, an all-zero block, exact ties (x * id = k + 0.5), a block whose
// max is negative, denormals (flushed to zero) and tiny normal values.
std::vector<float> hard_inputs(int64_t blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(size_t(blocks * 32));
  for (int64_t b = 0; b < blocks; ++b) {
    float* xb = x.data() + b * 32;
    const float scale = std::ldexp(1.0f, int(rng() % 40) - 20);
    for (int i = 0; i < 32; ++i) xb[i] = dist(rng) * scale;
    switch (b % 7) {
      case 1:
        for (int i = 0; i < 32; ++i) xb[i] = 0.0f;
        break;
      case 2:  // max 127 so id = 1: every other value is an exact tie
        for (int i = 0; i < 32; ++i) xb[i] = float(i) - 15.5f;
        xb[0] = 127.0f;
        break;
      case 3:
        xb[5] = -1000.0f * scale;
        break;
      case 4:
        for (int i = 0; i < 32; ++i) xb[i] = dist(rng) * 1e-39f;  // denormal
        break;
      case 5:  // tiny but above the flush threshold (1e-30)
        for (int i = 0; i < 32; ++i) xb[i] = dist(rng) * 1e-29f;
        xb[3] = 4e-29f;
        break;
      default:
        break;
    }
  }
  return x;
}

class QuantizeQ8Test : public ::testing::TestWithParam<Isa> {
 protected:
  void TearDown() override { reset_isa(); }
};

TEST_P(QuantizeQ8Test, EqualsScalarBitForBit) {
  const Isa isa = GetParam();
  if (!isa_supported(isa)) {
    GTEST_SKIP() << "this CPU does not support " << isa_name(isa)
                 << " (best: " << isa_name(detected_isa()) << ")";
  }
  force_isa(isa);
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    for (int64_t blocks : {1, 2, 7, 64, 250}) {
      const std::vector<float> x = hard_inputs(blocks, seed * 100 + uint32_t(blocks));
      // Unaligned input: copy into a buffer one float off a 64-byte boundary.
      std::vector<float> buf(x.size() + 17);
      float* xu = buf.data() + 1;
      std::memcpy(xu, x.data(), x.size() * 4);
      std::vector<BlockQ8x> got(static_cast<size_t>(blocks)), want(static_cast<size_t>(blocks));
      quantize_activations_q8(xu, got.data(), blocks * 32);
      quantize_activations_q8_scalar(x.data(), want.data(), blocks * 32);
      for (int64_t b = 0; b < blocks; ++b) {
        ASSERT_EQ(std::memcmp(&got[size_t(b)], &want[size_t(b)], sizeof(BlockQ8x)), 0)
            << isa_name(isa) << " block " << b << " of " << blocks << " seed " << seed << ": d "
            << got[size_t(b)].d << " vs " << want[size_t(b)].d << ", sum " << got[size_t(b)].sum
            << " vs " << want[size_t(b)].sum;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, QuantizeQ8Test, ::testing::ValuesIn(kTargets),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(QuantizeQ8Scalar, RoundsToNearestEvenWithinHalfAStep) {
  const std::vector<float> x = hard_inputs(70, 9);
  std::vector<BlockQ8x> q(70);
  quantize_activations_q8_scalar(x.data(), q.data(), 70 * 32);
  for (int64_t b = 0; b < 70; ++b) {
    const BlockQ8x& blk = q[size_t(b)];
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[size_t(b * 32 + i)]));
    if (amax < 1e-30f) {
      EXPECT_EQ(blk.d, 0.0f) << b;
    } else {
      EXPECT_EQ(blk.d, amax / 127.0f) << b;
    }
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const float xi = x[size_t(b * 32 + i)];
      EXPECT_LE(std::abs(int(blk.qs[i])), 127);
      if (blk.d != 0) {
        EXPECT_LE(std::fabs(xi - blk.d * blk.qs[i]), blk.d * 0.5f * 1.0001f) << b;
      }
      sum += blk.qs[i];
    }
    EXPECT_EQ(blk.sum, sum) << b;
  }
  // The tie block (b % 7 == 2): id = 1, x = i - 15.5 rounds half to even.
  const BlockQ8x& ties = q[2];
  EXPECT_EQ(ties.d, 1.0f);
  EXPECT_EQ(ties.qs[0], 127);
  EXPECT_EQ(ties.qs[1], -14);  // -14.5 -> -14
  EXPECT_EQ(ties.qs[2], -14);  // -13.5 -> -14
  EXPECT_EQ(ties.qs[16], 0);   // 0.5 -> 0
  EXPECT_EQ(ties.qs[17], 2);   // 1.5 -> 2
  // The all-zero block and the denormal block quantize to zero.
  for (int64_t b : {1, 4}) {
    EXPECT_EQ(q[size_t(b)].d, 0.0f);
    EXPECT_EQ(q[size_t(b)].sum, 0);
  }
}

class QuantizeQ16Test : public ::testing::TestWithParam<Isa> {
 protected:
  void TearDown() override { reset_isa(); }
};

TEST_P(QuantizeQ16Test, EqualsScalarBitForBit) {
  const Isa isa = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  force_isa(isa);
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    for (int64_t blocks : {1, 7, 250}) {
      const std::vector<float> x = hard_inputs(blocks, seed * 31 + uint32_t(blocks));
      std::vector<float> buf(x.size() + 17);
      float* xu = buf.data() + 1;
      std::memcpy(xu, x.data(), x.size() * 4);
      std::vector<BlockQ16x> got(static_cast<size_t>(blocks)), want(static_cast<size_t>(blocks));
      quantize_activations_q16(xu, got.data(), blocks * 32);
      quantize_activations_q16_scalar(x.data(), want.data(), blocks * 32);
      for (int64_t b = 0; b < blocks; ++b) {
        ASSERT_EQ(std::memcmp(&got[size_t(b)], &want[size_t(b)], sizeof(BlockQ16x)), 0)
            << isa_name(isa) << " block " << b << " seed " << seed;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, QuantizeQ16Test, ::testing::ValuesIn(kTargets),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(QuantizeQ16Scalar, HalvesRebuildTheRoundedValue) {
  const std::vector<float> x = hard_inputs(70, 5);
  std::vector<BlockQ16x> q(70);
  quantize_activations_q16_scalar(x.data(), q.data(), 70 * 32);
  for (int64_t b = 0; b < 70; ++b) {
    const BlockQ16x& blk = q[size_t(b)];
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[size_t(b * 32 + i)]));
    EXPECT_EQ(blk.d, amax < 1e-30f ? 0.0f : amax / 32512.0f) << b;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int32_t v = 256 * blk.hi[i] + blk.lo[i];
      EXPECT_LE(std::abs(int(blk.hi[i])), 127);
      EXPECT_LE(std::abs(v), 32512);
      if (blk.d != 0) {
        // Half a step, plus the float rounding of x * (1 / d) at |X| ~ 2^15.
        const double xi = x[size_t(b * 32 + i)];
        EXPECT_LE(std::fabs(xi - double(blk.d) * v), blk.d * 0.5 + std::fabs(xi) * 2.4e-7) << b;
      }
      sum += v;
    }
    EXPECT_EQ(blk.sum, sum) << b;
  }
}

}  // namespace
}  // namespace memwall::kernels
