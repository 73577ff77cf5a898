// The GEMM tiles of q5_0 and q5_1 (q5_kernels.h) on every target this
// machine supports, with BlockQ8x and BlockQ16x activations. The integer
// block sums are exact on every target, so a SIMD tile differs from the
// scalar one only by float accumulation order: within 2e-6 of sum |terms|
// (both against each other and against dequantized weights x dequantized
// activations in double; the observed error is ~1e-7). Shapes: decode (T = 1)
// and prefill tails (T = 1..9, 67), odd R, n = 32 (one block, a lone last
// pair) up to 1536, padded and unaligned strides, ldy > R, outputs outside
// the tile untouched. Weights are codec-quantized rows and random bytes
// (every level, every qh bit) under valid f16 fields; activations are
// quantized floats with outliers, and random blocks (16-bit low halves
// reach -128). Then through matmul: kFast and kInt8 pick these row tiles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "block_activations_util.h"
#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr TensorType kTypes[] = {TensorType::Q5_0, TensorType::Q5_1};

using Buffer = test_util::TestBuffer;

Buffer make_weights(TensorType type, int64_t R, int64_t n, std::mt19937& rng, bool random_bits) {
  const WeightCodec& codec = *find_codec(type);
  const size_t rb = row_bytes(type, uint64_t(n));
  const size_t bb = tensor_type_info(type).block_bytes;
  const size_t f16_bytes = type == TensorType::Q5_1 ? 4 : 2;  // d (and m) lead each block
  Buffer w;
  w.offset = 3;
  w.stride = rb + 5;
  w.buf.assign(w.offset + w.stride * size_t(R), 0xa5);
  w.used.resize(size_t(R * n));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> src(static_cast<size_t>(n)), deq(static_cast<size_t>(n));
  std::vector<uint8_t> row(rb);
  for (int64_t r = 0; r < R; ++r) {
    for (auto& v : src) v = dist(rng) + (r % 3 == 1 ? 0.7f : 0.0f);  // some rows skewed
    codec.quantize_row(src.data(), row.data(), n);
    if (random_bits) {
      for (size_t b = 0; b < rb / bb; ++b) {
        for (size_t i = f16_bytes; i < bb; ++i) row[b * bb + i] = uint8_t(rng());
      }
    }
    codec.dequantize_row(row.data(), deq.data(), n);
    for (int64_t c = 0; c < n; ++c) w.used[size_t(r * n + c)] = deq[size_t(c)];
    std::memcpy(w.buf.data() + w.offset + size_t(r) * w.stride, row.data(), rb);
  }
  return w;
}

struct Param {
  TensorType type;
  Isa isa;
  ActivationKind act;
};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::string(tensor_type_name(info.param.type)) + "_" +
         std::string(isa_name(info.param.isa)) +
         (info.param.act == ActivationKind::kQ16 ? "_q16" : "_q8");
}

class Q5GemmTest : public ::testing::TestWithParam<Param> {};

TEST_P(Q5GemmTest, EqualsScalarTileAndReference) {
  const auto [type, isa, act] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  const GemmKernel* k = find_gemm_kernel(type, isa, WeightLayout::kRows, act);
  const GemmKernel* ref = find_gemm_kernel(type, Isa::kScalar, WeightLayout::kRows, act);
  ASSERT_NE(k, nullptr);
  ASSERT_NE(ref, nullptr);
  // avx512 without VNNI runs the AVX2 tile.
  ASSERT_EQ(k->isa, isa == Isa::kAvx512 ? Isa::kAvx2 : isa);
  ASSERT_EQ(k->activation, act);
  ASSERT_EQ(ref->isa, Isa::kScalar);
  std::mt19937 rng(uint32_t(type) * 131 + uint32_t(isa) * 7 + uint32_t(act));
  struct Shape {
    int64_t R, T, n;
  };
  std::vector<Shape> shapes = {{1, 1, 32},  {3, 1, 32},   {9, 1, 576}, {17, 1, 1536},
                               {16, 1, 96}, {5, 67, 576}, {13, 3, 64}, {6, 9, 1536},
                               {7, 5, 160}, {1, 2, 32},   {4, 4, 576}, {25, 1, 576}};
  for (int64_t T = 1; T <= 9; ++T) shapes.push_back({int64_t(2 * T + 1), T, 32 * (T + 1)});
  for (const Shape s : shapes) {
    for (const int variant : {0, 1, 2}) {
      const Buffer w = make_weights(type, s.R, s.n, rng, variant == 1);
      const Buffer x = test_util::make_block_activations(act, s.T, s.n, rng, 1, 7, variant == 2);
      const int64_t ldy = s.R + 3;
      constexpr float kSentinel = -12345.0f;
      std::vector<float> y(size_t(s.T * ldy), kSentinel), yr(y.size(), kSentinel);
      k->tile(w.data(), w.stride, s.R, x.data(), x.stride, s.T, s.n, y.data(), ldy);
      ref->tile(w.data(), w.stride, s.R, x.data(), x.stride, s.T, s.n, yr.data(), ldy);
      for (int64_t t = 0; t < s.T; ++t) {
        for (int64_t r = 0; r < ldy; ++r) {
          const size_t o = size_t(t * ldy + r);
          if (r >= s.R) {
            ASSERT_EQ(y[o], kSentinel) << "wrote outside the tile at t=" << t << " r=" << r;
            ASSERT_EQ(yr[o], kSentinel) << "scalar wrote outside the tile";
            continue;
          }
          double want = 0, mag = 0;
          for (int64_t c = 0; c < s.n; ++c) {
            const double term = w.used[size_t(r * s.n + c)] * x.used[size_t(t * s.n + c)];
            want += term;
            mag += std::fabs(term);
          }
          const double tol = 2e-6 * mag + 1e-7;
          ASSERT_NEAR(yr[o], want, tol)
              << "scalar vs double reference, t=" << t << " r=" << r << " R=" << s.R << " T=" << s.T
              << " n=" << s.n << " variant=" << variant;
          ASSERT_NEAR(y[o], yr[o], tol) << "vs scalar, t=" << t << " r=" << r << " R=" << s.R
                                        << " T=" << s.T << " n=" << s.n << " variant=" << variant;
        }
      }
    }
  }
}

std::vector<Param> all_params() {
  std::vector<Param> p;
  for (TensorType t : kTypes) {
    for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
      for (ActivationKind a : {ActivationKind::kQ8, ActivationKind::kQ16}) p.push_back({t, i, a});
    }
  }
  return p;
}

INSTANTIATE_TEST_SUITE_P(AllTargets, Q5GemmTest, ::testing::ValuesIn(all_params()), param_name);

// matmul picks the row tiles: BlockQ16x under kFast, BlockQ8x under kInt8
// (576 columns: not a multiple of 256, as SmolLM2's rows that q4_K files
// store as q5_0), the codec under kExact; and kFast stays within the
// activations' rounding of kExact.
class Q5MatmulTest : public ::testing::TestWithParam<Isa> {
 protected:
  void TearDown() override { reset_isa(); }
};

TEST_P(Q5MatmulTest, PrecisionsTakeTheRowTiles) {
  const Isa isa = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  force_isa(isa);
  ThreadPool pool(2);
  std::mt19937 rng(uint32_t(isa) + 90);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (TensorType type : kTypes) {
    const int64_t R = 37, n = 576;
    std::vector<float> wf(size_t(R * n));
    for (auto& v : wf) v = dist(rng);
    const size_t rb = row_bytes(type, uint64_t(n));
    std::vector<uint8_t> wq(rb * size_t(R));
    const WeightCodec& codec = *find_codec(type);
    for (int64_t r = 0; r < R; ++r) codec.quantize_row(wf.data() + r * n, wq.data() + r * rb, n);
    MatrixView m;
    m.name = "w";
    m.type = type;
    m.codec = &codec;
    m.data = wq.data();
    m.rows = R;
    m.cols = n;
    m.row_bytes = rb;
    const GemmKernel* fast = choose_kernel(m, isa, Precision::kFast, false);
    const GemmKernel* int8 = choose_kernel(m, isa, Precision::kInt8, false);
    ASSERT_NE(fast, nullptr);
    ASSERT_NE(int8, nullptr);
    EXPECT_EQ(fast, find_gemm_kernel(type, isa, WeightLayout::kRows, ActivationKind::kQ16));
    EXPECT_EQ(int8, find_gemm_kernel(type, isa, WeightLayout::kRows, ActivationKind::kQ8));
    EXPECT_EQ(choose_kernel(m, isa, Precision::kExact, false), nullptr);
    for (const int64_t T : {1, 3, 70}) {
      std::vector<float> x(size_t(T * n));
      for (auto& v : x) v = dist(rng);
      std::vector<float> exact(size_t(T * R)), yf(exact.size()), y8(exact.size());
      matmul(pool, m, x.data(), T, exact.data(), Precision::kExact);
      matmul(pool, m, x.data(), T, yf.data(), Precision::kFast);
      matmul(pool, m, x.data(), T, y8.data(), Precision::kInt8);
      std::vector<BlockQ16x> x16(size_t(T * n / 32));
      for (int64_t t = 0; t < T; ++t)
        quantize_activations_q16(x.data() + t * n, x16.data() + t * n / 32, n);
      std::vector<float> want(exact.size());
      fast->tile(m.data, m.row_bytes, R, reinterpret_cast<const uint8_t*>(x16.data()),
                 size_t(n / 32) * sizeof(BlockQ16x), T, n, want.data(), R);
      std::vector<float> deq(static_cast<size_t>(n));
      for (int64_t r = 0; r < R; ++r) {
        codec.dequantize_row(m.row(r), deq.data(), n);
        double wsum = 0;
        for (float v : deq) wsum += std::fabs(v);
        for (int64_t t = 0; t < T; ++t) {
          float xmax = 0;
          for (int64_t c = 0; c < n; ++c) xmax = std::max(xmax, std::fabs(x[size_t(t * n + c)]));
          // Each activation is within half a step (max|x| / 32512 or / 127)
          // of its value, so the sum within that times sum |w|, plus slack.
          const double bound = wsum * xmax;
          const size_t i = size_t(t * R + r);
          EXPECT_EQ(yf[i], want[i]) << tensor_type_name(type) << " T=" << T << " i=" << i;
          EXPECT_NEAR(yf[i], exact[i], 0.6 / 32512 * bound + 1e-4)
              << tensor_type_name(type) << " T=" << T;
          EXPECT_NEAR(y8[i], exact[i], 0.6 / 127 * bound + 1e-4)
              << tensor_type_name(type) << " T=" << T;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, Q5MatmulTest,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512,
                                           Isa::kAvx512Vnni),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(isa_name(info.param));
                         });

}  // namespace
}  // namespace memwall::kernels
