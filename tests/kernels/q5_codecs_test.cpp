// The GGUF q5_0 and q5_1 codecs: hand-computed blocks (layout, rounding, the
// level-31 cap), round-trip error on Gaussian rows, the fused dot against
// dequantize-then-dot, and the importance-weighted quantizers against the
// reference ones in weighted error. Byte equality with llama.cpp is checked
// end to end by tests/quant/test_q5.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/fp16.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

std::vector<uint8_t> encode(const WeightCodec& c, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(c.type, x.size()));
  c.quantize_row(x.data(), q.data(), int64_t(x.size()));
  return q;
}

std::vector<float> decode(const WeightCodec& c, const std::vector<uint8_t>& q, size_t n) {
  std::vector<float> y(n);
  c.dequantize_row(q.data(), y.data(), int64_t(n));
  return y;
}

uint16_t u16(const uint8_t* p) {
  return uint16_t(p[0] | p[1] << 8);
}
uint32_t u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

TEST(Q5_0, RampBlockKnownAnswer) {
  // x_j = (j - 16) / 2: the largest magnitude is x_0 = -8, so d = 0.5 and q_j = j.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = float(j - 16) * 0.5f;
  const auto q = encode(codec_q5_0(), x);
  ASSERT_EQ(q.size(), 22u);
  EXPECT_EQ(u16(&q[0]), 0x3800);       // f16 0.5
  EXPECT_EQ(u32(&q[2]), 0xFFFF0000u);  // weights 16..31 have the 5th bit
  for (int j = 0; j < 16; ++j) EXPECT_EQ(q[size_t(6 + j)], uint8_t(j | j << 4)) << j;
  EXPECT_EQ(decode(codec_q5_0(), q, 32), x);
}

TEST(Q5_0, PositiveMaximumNegativeScaleAndCap) {
  // Largest magnitude positive: d = 8 / -16 = -0.5, x_0 maps to level 0 and
  // zeros to 16. x_1 = -8 would be level 32: capped at 31 (w = 7.5).
  std::vector<float> x(32, 0.0f);
  x[0] = 8.0f;
  x[1] = -8.0f;
  const auto q = encode(codec_q5_0(), x);
  EXPECT_EQ(u16(&q[0]), 0xB800);  // f16 -0.5
  // level 31 = 0b11111 for x_1, level 16 = 0b10000 elsewhere, level 0 for x_0
  EXPECT_EQ(u32(&q[2]), 0xFFFFFFFEu);
  EXPECT_EQ(q[6], 0x00);
  EXPECT_EQ(q[7], 0x0F);
  for (int j = 2; j < 16; ++j) EXPECT_EQ(q[size_t(6 + j)], 0);
  const auto y = decode(codec_q5_0(), q, 32);
  EXPECT_EQ(y[0], 8.0f);
  EXPECT_EQ(y[1], -7.5f);
  for (int j = 2; j < 32; ++j) EXPECT_EQ(y[size_t(j)], 0.0f);
}

TEST(Q5_0, ZeroBlock) {
  const auto q = encode(codec_q5_0(), std::vector<float>(32, 0.0f));
  EXPECT_EQ(u16(&q[0]), 0x8000);       // 0 / -16: f16 -0, as llama.cpp writes
  EXPECT_EQ(u32(&q[2]), 0xFFFFFFFFu);  // every level is 16
  for (int j = 0; j < 16; ++j) EXPECT_EQ(q[size_t(6 + j)], 0);
  for (float v : decode(codec_q5_0(), q, 32)) EXPECT_EQ(v, 0.0f);
}

TEST(Q5_1, RampBlockKnownAnswer) {
  // x_j = 1 + j / 4: min 1, d = 7.75 / 31 = 0.25, q_j = j.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = 1.0f + float(j) * 0.25f;
  const auto q = encode(codec_q5_1(), x);
  ASSERT_EQ(q.size(), 24u);
  EXPECT_EQ(u16(&q[0]), 0x3400);  // f16 0.25
  EXPECT_EQ(u16(&q[2]), 0x3C00);  // f16 1
  EXPECT_EQ(u32(&q[4]), 0xFFFF0000u);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(q[size_t(8 + j)], uint8_t(j | j << 4)) << j;
  EXPECT_EQ(decode(codec_q5_1(), q, 32), x);
}

TEST(Q5_1, SecondBlockAndRounding) {
  // Block 2 of a row: min -2, max 1.1 -> d = 0.1; 0.04 rounds to level 20
  // (x - min = 2.04, / 0.1 = 20.4), 0.06 to level 21.
  std::vector<float> x(64, 0.0f);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = 1.0f;  // block 1: constant
  x[32] = -2.0f;
  x[33] = 1.1f;
  x[34] = 0.04f;
  x[35] = 0.06f;
  const auto q = encode(codec_q5_1(), x);
  // Block 1: d = 0, m = 1, every level 0.
  EXPECT_EQ(u16(&q[0]), 0);
  EXPECT_EQ(u16(&q[2]), 0x3C00);
  EXPECT_EQ(u32(&q[4]), 0u);
  const uint8_t* b = &q[24];
  const float d = (1.1f - -2.0f) / 31.0f;
  EXPECT_EQ(u16(&b[0]), fp32_to_fp16(d));
  EXPECT_EQ(u16(&b[2]), fp32_to_fp16(-2.0f));
  const auto y = decode(codec_q5_1(), q, 64);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[size_t(j)], 1.0f);
  const float dd = fp16_to_fp32(fp32_to_fp16(d));
  EXPECT_EQ(y[32], -2.0f);
  EXPECT_EQ(y[33], 31.0f * dd - 2.0f);
  EXPECT_EQ(y[34], 20.0f * dd - 2.0f);
  EXPECT_EQ(y[35], 21.0f * dd - 2.0f);
  EXPECT_EQ(y[36], 20.0f * dd - 2.0f);  // zeros: 2 / 0.1 = 20
}

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

struct Case {
  TensorType type;
  double max_rel_rms;  // round-trip RMS error / RMS of the row, Gaussian rows
};

class Q5CodecTest : public ::testing::TestWithParam<Case> {};

TEST_P(Q5CodecTest, RoundTripRelativeRmsError) {
  const WeightCodec& c = *find_codec(GetParam().type);
  const size_t n = 32 * 512;
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    const auto x = gaussian(n, seed, 0.02f * float(seed));
    const auto y = decode(c, encode(c, x), n);
    double err = 0, ref = 0;
    for (size_t i = 0; i < n; ++i) {
      err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      ref += double(x[i]) * x[i];
    }
    const double rel = std::sqrt(err / ref);
    EXPECT_LE(rel, GetParam().max_rel_rms) << tensor_type_name(c.type) << " seed " << seed;
    EXPECT_GE(rel, 0.8 * GetParam().max_rel_rms) << "bound no longer tight";
  }
}

TEST_P(Q5CodecTest, DotEqualsDequantizeThenDot) {
  const WeightCodec& c = *find_codec(GetParam().type);
  for (size_t n : {32u, 64u, 576u, 4096u}) {
    const auto w = gaussian(n, uint32_t(n));
    const auto x = gaussian(n, uint32_t(n + 1));
    const auto q = encode(c, w);
    const auto wd = decode(c, q, n);
    double ref = 0, abs_sum = 0;
    for (size_t i = 0; i < n; ++i) {
      ref += double(wd[i]) * x[i];
      abs_sum += std::fabs(double(wd[i]) * x[i]);
    }
    EXPECT_NEAR(c.dot(q.data(), x.data(), int64_t(n)), ref, 1e-5 * abs_sum + 1e-6) << n;
  }
}

TEST_P(Q5CodecTest, WeightedNeverWorseThanPlainInWeightedError) {
  const WeightCodec& c = *find_codec(GetParam().type);
  ASSERT_NE(c.quantize_row_weighted, nullptr);
  const size_t n = 576;
  std::mt19937 rng(7);
  std::lognormal_distribution<float> imp_dist(0.0f, 1.5f);
  std::vector<float> importance(n);
  for (auto& v : importance) v = imp_dist(rng);
  double total_plain = 0, total_weighted = 0;
  for (uint32_t row = 0; row < 64; ++row) {
    const auto x = gaussian(n, 100 + row, 0.05f);
    std::vector<uint8_t> qw(row_bytes(c.type, n));
    c.quantize_row_weighted(x.data(), qw.data(), int64_t(n), importance.data());
    const auto yp = decode(c, encode(c, x), n);
    const auto yw = decode(c, qw, n);
    double ep = 0, ew = 0;
    for (size_t i = 0; i < n; ++i) {
      ep += importance[i] * (double(x[i]) - yp[i]) * (double(x[i]) - yp[i]);
      ew += importance[i] * (double(x[i]) - yw[i]) * (double(x[i]) - yw[i]);
    }
    EXPECT_LE(ew, ep) << tensor_type_name(c.type) << " row " << row;
    total_plain += ep;
    total_weighted += ew;
    // Null importance: the reference encoding.
    std::vector<uint8_t> q0(row_bytes(c.type, n));
    c.quantize_row_weighted(x.data(), q0.data(), int64_t(n), nullptr);
    EXPECT_EQ(q0, encode(c, x));
  }
  EXPECT_LT(total_weighted, 0.8 * total_plain) << tensor_type_name(c.type);
}

INSTANTIATE_TEST_SUITE_P(Q5, Q5CodecTest,
                         ::testing::Values(Case{TensorType::Q5_0, 0.045},
                                           Case{TensorType::Q5_1, 0.045}),
                         [](const auto& info) {
                           return std::string(tensor_type_name(info.param.type));
                         });

}  // namespace
}  // namespace memwall::kernels
