// quantize_activations_q8_row (w8a8's per-token int8 activations): every
// target writes the scalar version's record byte for byte (header, values,
// zero padding), and the scalar version is the stated math: d = max|x| / 127
// of the whole row, q = round(x / d) ties to even, |x - d q| <= d / 2,
// sum = sum of q, records of q8_row_stride(cols) bytes (a multiple of 64).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/activations.h"
#include "kernels/isa.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {
namespace {

constexpr Isa kTargets[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni};
constexpr int64_t kCols[] = {32, 64, 96, 576, 608, 1536, 2080};

// One row of `cols` values, by kind: normal values at a random magnitude,
// one large outlier, all zero, exact ties (max 127 so 1/d = 1), denormals
// (flushed: quantize to zero), tiny values above the flush threshold, a
// negative maximum.
std::vector<float> row_of(int kind, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(cols));
  const float scale = std::ldexp(1.0f, int(rng() % 40) - 20);
  for (float& v : x) v = dist(rng) * scale;
  switch (kind % 7) {
    case 1:
      x[size_t(rng() % size_t(cols))] = 300.0f * scale;
      break;
    case 2:
      for (float& v : x) v = 0.0f;
      break;
    case 3:
      for (int64_t i = 0; i < cols; ++i) x[size_t(i)] = float(i % 64) - 31.5f;
      x[size_t(cols - 1)] = 127.0f;
      break;
    case 4:
      for (float& v : x) v = dist(rng) * 1e-39f;
      break;
    case 5:
      for (float& v : x) v = dist(rng) * 1e-29f;
      x[0] = 4e-29f;
      break;
    case 6:
      x[size_t(cols / 2)] = -50.0f * scale;
      break;
    default:
      break;
  }
  return x;
}

class QuantizeQ8RowTest : public ::testing::TestWithParam<Isa> {
 protected:
  void TearDown() override { reset_isa(); }
};

TEST_P(QuantizeQ8RowTest, EqualsScalarByteForByte) {
  const Isa isa = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  force_isa(isa);
  std::mt19937 rng(uint32_t(isa) + 3);
  for (const int64_t cols : kCols) {
    const size_t stride = q8_row_stride(cols);
    for (int kind = 0; kind < 14; ++kind) {
      const std::vector<float> x = row_of(kind, cols, rng);
      // Unaligned input, and output records prefilled with garbage so the
      // padding must be written.
      std::vector<float> buf(x.size() + 3);
      std::memcpy(buf.data() + 1, x.data(), x.size() * sizeof(float));
      std::vector<uint8_t> got(stride, 0xa5), want(stride, 0x5a);
      quantize_activations_q8_row(buf.data() + 1, got.data(), cols);
      quantize_activations_q8_row_scalar(x.data(), want.data(), cols);
      ASSERT_EQ(std::memcmp(got.data(), want.data(), stride), 0)
          << isa_name(isa) << " cols " << cols << " kind " << kind;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, QuantizeQ8RowTest, ::testing::ValuesIn(kTargets),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(QuantizeQ8RowScalar, OneScalePerTokenWithinHalfAStep) {
  std::mt19937 rng(17);
  for (const int64_t cols : kCols) {
    const size_t stride = q8_row_stride(cols);
    EXPECT_EQ(stride % 64, 0u) << cols;
    EXPECT_GE(stride, 8 + size_t(cols)) << cols;
    EXPECT_LT(stride, 8 + size_t(cols) + 64) << cols;
    for (int kind = 0; kind < 14; ++kind) {
      const std::vector<float> x = row_of(kind, cols, rng);
      std::vector<uint8_t> rec(stride, 0xee);
      quantize_activations_q8_row_scalar(x.data(), rec.data(), cols);
      Q8RowHeader h;
      std::memcpy(&h, rec.data(), sizeof h);
      const auto* q = reinterpret_cast<const int8_t*>(rec.data() + sizeof h);
      float amax = 0;
      for (float v : x) amax = std::fmax(amax, std::fabs(v));
      const std::string at = "cols " + std::to_string(cols) + " kind " + std::to_string(kind);
      if (amax < 1e-30f) {
        EXPECT_EQ(h.d, 0.0f) << at;
      } else {
        EXPECT_EQ(h.d, amax / 127.0f) << at;
      }
      int32_t sum = 0;
      for (int64_t i = 0; i < cols; ++i) {
        ASSERT_LE(std::abs(int(q[i])), 127) << at;
        // Half a step; x * (1 / d) rounds to within 127 * 2^-24 of x / d.
        if (h.d != 0) {
          ASSERT_LE(std::fabs(double(x[size_t(i)]) - double(h.d) * q[i]),
                    double(h.d) * (0.5 + 1e-5))
              << at << " i " << i;
        } else {
          ASSERT_EQ(q[i], 0) << at;
        }
        sum += q[i];
      }
      EXPECT_EQ(h.sum, sum) << at;
      for (size_t b = sizeof h + size_t(cols); b < stride; ++b) {
        ASSERT_EQ(rec[b], 0) << at << ": padding byte " << b;
      }
      if (kind % 7 == 3) {  // ties: max 127 so d = 1; x = i % 64 - 31.5
        EXPECT_EQ(h.d, 1.0f);
        EXPECT_EQ(q[0], -32);  // -31.5 -> -32 (even)
        EXPECT_EQ(q[1], -30);  // -30.5 -> -30
        if (cols >= 64) {
          EXPECT_EQ(q[32], 0);  // 0.5 -> 0
          EXPECT_EQ(q[33], 2);  // 1.5 -> 2
        }
        EXPECT_EQ(q[cols - 1], 127);
      }
    }
  }
}

}  // namespace
}  // namespace memwall::kernels
