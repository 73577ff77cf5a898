// The GEMM kernels of nf4, nf4_dq, q2_g64 and q3_g64 (lowbit_kernels.h) on
// every target this machine supports, with both activation kinds (BlockQ8x,
// BlockQ16x): each equals the integer form's weights times the dequantized
// activations in double, and the scalar kernel, within float reordering
// error (2e-5 of sum |terms|; the integer dots are exact on every target).
// Shapes cover the decode path (T = 1, rows not a multiple of its 4-row
// micro-tile) and prefill tails, padded and unaligned strides, ldy > R, and
// outputs outside the tile untouched. Weights are codec-quantized rows and
// random bytes (every code, every 8-bit block scale) under valid f16 fields;
// activations are quantized floats with outliers and random blocks (16-bit
// low halves reach -128). Then through matmul: kExact matches the codec to
// float rounding, kFast and kInt8 run these kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "base/thread_pool.h"
#include "block_activations_util.h"
#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/lowbit_kernels.h"
#include "kernels/lowbit_quant.h"
#include "kernels/matmul.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr TensorType kTypes[] = {TensorType::NF4, TensorType::NF4_DQ, TensorType::Q2_G64,
                                 TensorType::Q3_G64};

// Byte offsets of each format's f16 fields within a block, kept valid when
// the rest of a block is randomized.
std::vector<size_t> f16_fields(TensorType t) {
  if (t == TensorType::Q2_G64 || t == TensorType::Q3_G64) return {0, 2};
  return {0};
}

struct Weights {
  std::vector<uint8_t> buf;
  size_t offset = 0, stride = 0;
  std::vector<double> used;  // the integer form's a * c + b, R x n
  const uint8_t* data() const { return buf.data() + offset; }
};

// wide: the integer form 16-bit-activation kernels use (kNf4Codes16).
Weights make_weights(TensorType type, int64_t R, int64_t n, std::mt19937& rng, size_t offset,
                     size_t pad, bool random_bits, bool wide) {
  const WeightCodec& codec = *find_codec(type);
  const size_t rb = row_bytes(type, uint64_t(n));
  const size_t bb = tensor_type_info(type).block_bytes;
  Weights w;
  w.offset = offset;
  w.stride = rb + pad;
  w.buf.assign(offset + w.stride * size_t(R), 0xa5);
  w.used.resize(size_t(R * n));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> src(static_cast<size_t>(n));
  std::vector<uint8_t> row(rb);
  for (int64_t r = 0; r < R; ++r) {
    for (auto& v : src) v = dist(rng) + (r % 3 == 1 ? 0.7f : 0.0f);  // some rows skewed
    codec.quantize_row(src.data(), row.data(), n);
    if (random_bits) {
      for (size_t b = 0; b < rb / bb; ++b) {
        const std::vector<size_t> fields = f16_fields(type);
        std::vector<uint8_t> keep;
        for (size_t f : fields)
          keep.insert(keep.end(), row.begin() + b * bb + f, row.begin() + b * bb + f + 2);
        for (size_t i = 0; i < bb; ++i) row[b * bb + i] = uint8_t(rng());
        for (size_t k = 0; k < fields.size(); ++k)
          std::memcpy(&row[b * bb + fields[k]], &keep[2 * k], 2);
      }
    }
    std::memcpy(w.buf.data() + offset + size_t(r) * w.stride, row.data(), rb);
    LowbitBlock blk;
    for (int64_t k = 0; k < n / 64; ++k) {
      EXPECT_TRUE(decode_lowbit(type, row.data(), k, blk, wide));
      for (int i = 0; i < 64; ++i) {
        w.used[size_t(r * n + 64 * k + i)] = double(blk.a) * blk.c[i] + double(blk.b);
      }
    }
  }
  return w;
}

using Activations = test_util::TestBuffer;

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

class LowbitGemmTest : public ::testing::TestWithParam<Param> {};

TEST_P(LowbitGemmTest, EqualsReferenceAndScalarKernel) {
  const auto [type, isa, act] = GetParam();
  if (!isa_supported(isa)) {
    GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  }
  const GemmKernel* k = find_gemm_kernel(type, isa, WeightLayout::kRows, act);
  const GemmKernel* ref = find_gemm_kernel(type, Isa::kScalar, WeightLayout::kRows, act);
  ASSERT_NE(k, nullptr);
  ASSERT_NE(ref, nullptr);
  // avx512 (without VNNI) runs the AVX2 kernel.
  ASSERT_EQ(k->isa, isa == Isa::kAvx512 ? Isa::kAvx2 : isa);
  ASSERT_EQ(k->activation, act);
  ASSERT_EQ(ref->isa, Isa::kScalar);
  std::mt19937 rng(uint32_t(type) * 131 + uint32_t(isa) * 7 + uint32_t(act));
  struct Shape {
    int64_t R, T, n;
  };
  for (const Shape s :
       {Shape{1, 1, 256}, Shape{7, 1, 512}, Shape{5, 1, 1280}, Shape{3, 2, 512}, Shape{7, 5, 768},
        Shape{17, 9, 1280}, Shape{2, 3, 2048}, Shape{9, 1, 4096}, Shape{4, 4, 256}}) {
    for (const int variant : {0, 1, 2}) {
      const bool random_bits = variant == 1, random_blocks = variant == 2;
      const Weights w =
          make_weights(type, s.R, s.n, rng, 3, 5, random_bits, act == ActivationKind::kQ16);
      const Activations x =
          test_util::make_block_activations(act, s.T, s.n, rng, 1, 7, random_blocks);
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
          const double tol = 2e-5 * mag + 1e-6;
          ASSERT_NEAR(y[o], want, tol) << "t=" << t << " r=" << r << " R=" << s.R << " T=" << s.T
                                       << " n=" << s.n << " variant=" << variant;
          ASSERT_NEAR(yr[o], want, tol) << "scalar kernel, t=" << t << " r=" << r;
          ASSERT_NEAR(y[o], yr[o], tol) << "vs scalar, t=" << t << " r=" << r;
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

INSTANTIATE_TEST_SUITE_P(AllTargets, LowbitGemmTest, ::testing::ValuesIn(all_params()), param_name);

// The integer form reproduces the codec: exactly for q2/q3; for NF4 within
// half a code step: 1/127 of the block scale for 8-bit activations, 1/16383
// for 16-bit ones.
TEST(LowbitDecode, IntegerFormMatchesDequantize) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (TensorType t : kTypes) {
    std::vector<float> x(256), deq(256);
    std::vector<uint8_t> q(row_bytes(t, 256));
    for (int trial = 0; trial < 20; ++trial) {
      for (auto& v : x) v = dist(rng) + 0.3f * float(trial % 3);
      find_codec(t)->quantize_row(x.data(), q.data(), 256);
      find_codec(t)->dequantize_row(q.data(), deq.data(), 256);
      for (int k = 0; k < 4; ++k) {
        for (const bool wide : {false, true}) {
          LowbitBlock b;
          ASSERT_TRUE(decode_lowbit(t, q.data(), k, b, wide));
          const bool nf4 = t == TensorType::NF4 || t == TensorType::NF4_DQ;
          for (int i = 0; i < 64; ++i) {
            const double w = double(b.a) * b.c[i] + double(b.b);
            const double got = deq[size_t(64 * k + i)];
            // NF4: half a code step (a = d / 127 or d / 16383) plus float rounding.
            const double tol =
                nf4 ? 0.5 * double(b.a) + 1e-6 * std::fabs(got) : 1e-6 * (std::fabs(got) + 1.0);
            ASSERT_NEAR(w, got, tol)
                << tensor_type_name(t) << " weight " << 64 * k + i << " wide=" << wide;
          }
        }
      }
    }
  }
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(kNf4Codes[i], int(std::lround(127.0 * lowbit::kNf4Levels[i]))) << i;
    EXPECT_EQ(kNf4Codes16[i], int(std::lround(double(kNf4Wide) * lowbit::kNf4Levels[i]))) << i;
  }
}

// Through matmul on every target: kExact equals the codec's dequantized
// weights times f32 activations to float rounding; kFast and kInt8 equal
// their row kernel on the activations matmul quantizes (the same bits), and
// stay close to exact: within the NF4 table's and the activations' rounding.
class LowbitMatmulTest : public ::testing::TestWithParam<Isa> {
 protected:
  void TearDown() override { reset_isa(); }
};

TEST_P(LowbitMatmulTest, PrecisionsTakeTheirPaths) {
  const Isa isa = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  force_isa(isa);
  ThreadPool pool(2);
  std::mt19937 rng(uint32_t(isa) + 40);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (TensorType type : kTypes) {
    for (const int64_t T : {1, 3, 70}) {
      const int64_t R = 37, n = 768;
      std::vector<float> wf(size_t(R * n)), x(size_t(T * n));
      for (auto& v : wf) v = dist(rng);
      for (auto& v : x) v = dist(rng);
      std::vector<uint8_t> wq(row_bytes(type, uint64_t(n)) * size_t(R));
      const WeightCodec& codec = *find_codec(type);
      for (int64_t r = 0; r < R; ++r) {
        codec.quantize_row(wf.data() + r * n, wq.data() + size_t(r) * row_bytes(type, uint64_t(n)),
                           n);
      }
      MatrixView m;
      m.name = "w";
      m.type = type;
      m.codec = &codec;
      m.data = wq.data();
      m.rows = R;
      m.cols = n;
      m.row_bytes = row_bytes(type, uint64_t(n));
      std::vector<float> deq(size_t(R * n));
      for (int64_t r = 0; r < R; ++r) codec.dequantize_row(m.row(r), deq.data() + r * n, n);

      std::vector<float> exact(size_t(T * R)), fast(exact.size()), int8(exact.size());
      matmul(pool, m, x.data(), T, exact.data(), Precision::kExact);
      matmul(pool, m, x.data(), T, fast.data(), Precision::kFast);
      matmul(pool, m, x.data(), T, int8.data(), Precision::kInt8);

      // The kernels' own results on the same activation blocks.
      std::vector<BlockQ16x> x16(size_t(T * n / 32));
      std::vector<BlockQ8x> x8(size_t(T * n / 32));
      for (int64_t t = 0; t < T; ++t) {
        quantize_activations_q16(x.data() + t * n, x16.data() + t * n / 32, n);
        quantize_activations_q8(x.data() + t * n, x8.data() + t * n / 32, n);
      }
      const GemmKernel* k16 =
          find_gemm_kernel(type, isa, WeightLayout::kRows, ActivationKind::kQ16);
      const GemmKernel* k8 = find_gemm_kernel(type, isa, WeightLayout::kRows, ActivationKind::kQ8);
      ASSERT_NE(k16, nullptr);
      ASSERT_NE(k8, nullptr);
      std::vector<float> y16(exact.size()), y8(exact.size());
      k16->tile(m.data, m.row_bytes, R, reinterpret_cast<const uint8_t*>(x16.data()),
                size_t(n / 32) * sizeof(BlockQ16x), T, n, y16.data(), R);
      k8->tile(m.data, m.row_bytes, R, reinterpret_cast<const uint8_t*>(x8.data()),
               size_t(n / 32) * sizeof(BlockQ8x), T, n, y8.data(), R);

      const bool nf4 = type == TensorType::NF4 || type == TensorType::NF4_DQ;
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t r = 0; r < R; ++r) {
          double want = 0, mag = 0;
          for (int64_t c = 0; c < n; ++c) {
            want += double(deq[size_t(r * n + c)]) * x[size_t(t * n + c)];
            mag += std::fabs(double(deq[size_t(r * n + c)]) * x[size_t(t * n + c)]);
          }
          const size_t o = size_t(t * R + r);
          const std::string at = std::string(tensor_type_name(type)) + " T=" + std::to_string(T) +
                                 " t=" + std::to_string(t) + " r=" + std::to_string(r);
          ASSERT_NEAR(exact[o], want, 1e-5 * mag + 1e-6) << "exact, " << at;
          ASSERT_NEAR(fast[o], y16[o], 1e-6 * mag) << "fast path is not the Q16 kernel, " << at;
          ASSERT_NEAR(int8[o], y8[o], 1e-6 * mag) << "int8 path is not the Q8 kernel, " << at;
          // 16-bit activations are exact to ~1e-4 of a block's largest value,
          // and so are NF4's 16-bit codes; under kInt8 NF4's int8 table also
          // moves each weight by up to 0.4% of its scale.
          ASSERT_NEAR(fast[o], want, 2e-4 * mag) << "fast vs exact, " << at;
          ASSERT_NEAR(int8[o], want, (nf4 ? 1.5e-2 : 1e-2) * mag) << "int8 vs exact, " << at;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, LowbitMatmulTest,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512,
                                           Isa::kAvx512Vnni),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace memwall::kernels
