// Each weight codec: round-trip error within its format's bound, and the
// fused dot product equal to dequantize-then-dot.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/fp16.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

struct Case {
  TensorType type;
  double max_error_over_block_range;  // |x - x'| / (max - min) of the block
};

class WeightCodecTest : public ::testing::TestWithParam<Case> {};

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

TEST_P(WeightCodecTest, RoundTripErrorIsWithinTheFormatsBound) {
  const Case c = GetParam();
  const WeightCodec* codec = find_codec(c.type);
  ASSERT_NE(codec, nullptr);
  const int64_t n = 32 * 37;
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    std::vector<float> x = random_values(size_t(n), seed, seed * 0.7f);
    std::vector<uint8_t> q(row_bytes(c.type, n));
    std::vector<float> y(static_cast<size_t>(n));
    codec->quantize_row(x.data(), q.data(), n);
    codec->dequantize_row(q.data(), y.data(), n);
    for (int64_t b = 0; b < n / 32; ++b) {
      float lo = x[size_t(b * 32)], hi = lo;
      for (int i = 0; i < 32; ++i) {
        lo = std::min(lo, x[size_t(b * 32 + i)]);
        hi = std::max(hi, x[size_t(b * 32 + i)]);
      }
      for (int i = 0; i < 32; ++i) {
        const size_t k = size_t(b * 32 + i);
        EXPECT_LE(std::fabs(x[k] - y[k]), c.max_error_over_block_range * (hi - lo) + 1e-6)
            << tensor_type_name(c.type) << " element " << k;
      }
    }
  }
}

TEST_P(WeightCodecTest, DotEqualsDequantizeThenDot) {
  const Case c = GetParam();
  const WeightCodec* codec = find_codec(c.type);
  for (int64_t n : {32, 64, 96, 320, 4096}) {
    std::vector<float> w = random_values(size_t(n), uint32_t(n));
    std::vector<float> x = random_values(size_t(n), uint32_t(n + 1));
    std::vector<uint8_t> q(row_bytes(c.type, n));
    codec->quantize_row(w.data(), q.data(), n);
    std::vector<float> wd(static_cast<size_t>(n));
    codec->dequantize_row(q.data(), wd.data(), n);
    double ref = 0, abs_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += double(wd[size_t(i)]) * x[size_t(i)];
      abs_sum += std::fabs(double(wd[size_t(i)]) * x[size_t(i)]);
    }
    EXPECT_NEAR(codec->dot(q.data(), x.data(), n), ref, 1e-5 * abs_sum + 1e-6)
        << tensor_type_name(c.type) << " n=" << n;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllFormats, WeightCodecTest,
    ::testing::Values(Case{TensorType::F32, 0.0}, Case{TensorType::F16, 1e-3},
                      Case{TensorType::BF16, 8e-3}, Case{TensorType::Q8_0, 1.0 / 254 + 1e-3},
                      // q4_0's scale maps the largest magnitude to -8: steps are range/15 or less.
                      Case{TensorType::Q4_0, 1.0 / 15 + 1e-3},
                      Case{TensorType::Q4_1, 1.0 / 30 + 1e-3}),
    [](const auto& info) { return std::string(tensor_type_name(info.param.type)); });

TEST(WeightCodec, Q4_0LayoutMatchesGgufByteForByte) {
  // One block: d = -1 (fp16 0xBC00), weights j = 0..31 chosen so q = j % 16.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = -float(j % 16 - 8);  // w = d * (q - 8)
  x[0] = 8.0f;  // largest magnitude: d = 8 / -8 = -1
  std::vector<uint8_t> q(18);
  codec_q4_0().quantize_row(x.data(), q.data(), 32);
  EXPECT_EQ(q[0] | q[1] << 8, 0xBC00);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(q[size_t(2 + j)], (j % 16) | ((j % 16) << 4)) << j;
}

TEST(WeightCodec, UnsupportedTypeNamesTensorAndFormats) {
  try {
    codec_for(TensorType::IQ2_XXS, "blk.0.ffn_down.weight");
    FAIL() << "iq2_xxs should not be computable yet";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_down.weight"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("q4_1"), std::string::npos);
  }
}

TEST(Fp16, ConversionsMatchKnownValues) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(5.9604645e-8f), 0x0001);       // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(1.0f + 1.0f / 2048), 0x3C00);  // tie rounds to even
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x3555), 0.33325195f);
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x0001), 5.9604645e-8f);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  for (uint32_t h = 0; h < 0x7C00; ++h) {  // every finite positive half round-trips
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(uint16_t(h))), h) << h;
  }
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_FLOAT_EQ(bf16_to_fp32(0x4049), 3.140625f);
}

}  // namespace
}  // namespace memwall::kernels
