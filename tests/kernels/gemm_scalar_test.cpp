// The scalar GEMM kernels against the codecs of weight_format.h, which are the
// f32 reference: quantized-weight kernels see activations rounded to q8, so
// they may differ by the error that rounding introduces, and no more.
//
// Bound: the codec computes sum_i w_i x_i; the kernel computes sum_i w_i d q_i
// exactly per block (integers) with x_i = d q_i + e_i, |e_i| <= d/2 (round to
// nearest; d = max|x|/127 so nothing clips). Hence
//   |delta| <= sum_blocks (d_x / 2) * sum_{i in block} |w_i|
//           <= sum_blocks |d_w| * max|q_w| * d_x / 2 * 32,
// plus float rounding of the two sums (1e-5 of sum |w_i x_i|).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

std::vector<float> normal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

class ScalarGemmVsCodec : public ::testing::TestWithParam<TensorType> {};

TEST_P(ScalarGemmVsCodec, AgreesWithinTheActivationQuantizationBound) {
  const TensorType type = GetParam();
  const GemmKernel* k = find_gemm_kernel(type, Isa::kScalar);
  ASSERT_NE(k, nullptr);
  ASSERT_EQ(k->isa, Isa::kScalar);
  const WeightCodec& codec = *find_codec(type);
  for (int64_t n : {32, 96, 288, 2048}) {
    const int64_t R = 5, T = 3;
    const size_t rb = row_bytes(type, uint64_t(n));
    std::vector<uint8_t> w(rb * R);
    std::vector<float> wf(size_t(R * n));
    auto src = normal(size_t(R * n), uint32_t(n));
    for (int64_t r = 0; r < R; ++r) {
      codec.quantize_row(src.data() + r * n, w.data() + r * rb, n);
      codec.dequantize_row(w.data() + r * rb, wf.data() + r * n, n);
    }
    auto x = normal(size_t(T * n), uint32_t(n + 7));
    std::vector<BlockQ8x> xq(size_t(T * n / 32));
    for (int64_t t = 0; t < T; ++t) quantize_activations_q8(x.data() + t * n, &xq[t * n / 32], n);
    const bool q8 = k->activation == ActivationKind::kQ8;
    const auto* xp = q8 ? reinterpret_cast<const uint8_t*>(xq.data())
                        : reinterpret_cast<const uint8_t*>(x.data());
    const size_t xs = q8 ? size_t(n / 32) * sizeof(BlockQ8x) : size_t(n) * 4;
    std::vector<float> y(size_t(T * R));
    k->tile(w.data(), rb, R, xp, xs, T, n, y.data(), R);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t r = 0; r < R; ++r) {
        const float ref = codec.dot(w.data() + r * rb, x.data() + t * n, n);
        double bound = 0, mag = 0;
        for (int64_t b = 0; b < n / 32; ++b) {
          const double dx = q8 ? xq[size_t(t * n / 32 + b)].d : 0.0;
          for (int i = 0; i < 32; ++i) {
            const double wi = wf[size_t(r * n + b * 32 + i)];
            bound += dx / 2 * std::fabs(wi);
            mag += std::fabs(wi * x[size_t(t * n + b * 32 + i)]);
          }
        }
        EXPECT_LE(std::fabs(y[size_t(t * R + r)] - ref), bound + 1e-5 * mag)
            << tensor_type_name(type) << " n=" << n << " r=" << r << " t=" << t;
        if (q8) {
          EXPECT_GT(bound, 0.0);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, ScalarGemmVsCodec,
                         ::testing::Values(TensorType::F32, TensorType::F16, TensorType::BF16,
                                           TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1),
                         [](const auto& info) {
                           return std::string(tensor_type_name(info.param));
                         });

TEST(QuantizeActivationsQ8Scalar, RoundsToNearestAndSums) {
  std::vector<float> x(64, 0.0f);
  for (int i = 0; i < 32; ++i) x[size_t(i)] = float(i - 16) * 0.25f;  // max|x| = 4 at i = 0
  std::vector<BlockQ8x> q(2);
  quantize_activations_q8(x.data(), q.data(), 64);
  EXPECT_FLOAT_EQ(q[0].d, 4.0f / 127.0f);
  int32_t sum = 0;
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(q[0].qs[i], int(std::nearbyint(x[size_t(i)] / (4.0f / 127.0f)))) << i;
    sum += q[0].qs[i];
  }
  EXPECT_EQ(q[0].qs[0], -127);
  EXPECT_EQ(q[0].sum, sum);
  EXPECT_EQ(q[1].d, 0.0f);  // all-zero block
  EXPECT_EQ(q[1].sum, 0);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q[1].qs[i], 0);
}

}  // namespace
}  // namespace memwall::kernels
