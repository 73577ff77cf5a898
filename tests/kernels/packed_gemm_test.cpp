// Packed-layout GEMM kernels (packed_weights.h) against the row-layout scalar
// kernel of the same format, on every target with a packed kernel: random
// shapes with row counts that are not multiples of 16, token counts around
// the micro-tile width, every quant value (q8_0's -128 included), and the
// outputs outside the tile left untouched.
//
// With 8-bit activations the scalar packed kernel runs the row kernel's
// arithmetic in the same order, so it must agree bit for bit: that proves
// packing loses nothing. SIMD ones compute each block exactly in integers and
// reorder only the float accumulation, so they are held to 1e-5 of
// sum |terms|; so are 16-bit activations, against a double-precision sum of
// dequantized weights times d * (256 hi + lo).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/packed_weights.h"
#include "kernels/simd_kernels.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

struct Param {
  TensorType type;
  Isa isa;
  ActivationKind act;  // kQ8 or kQ16
};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::string(tensor_type_name(info.param.type)) + "_" +
         std::string(isa_name(info.param.isa)) +
         (info.param.act == ActivationKind::kQ16 ? "_q16" : "_q8");
}

class PackedGemmTest : public ::testing::TestWithParam<Param> {};

TEST_P(PackedGemmTest, EqualsReference) {
  const auto [type, isa, act] = GetParam();
  const bool q16 = act == ActivationKind::kQ16;
  if (!isa_supported(isa)) GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  const GemmKernel* k = find_gemm_kernel(type, isa, WeightLayout::kPacked16, act);
  ASSERT_NE(k, nullptr);
  if (k->isa != isa) GTEST_SKIP() << "no packed " << isa_name(isa) << " kernel";
  const GemmKernel* ref = find_gemm_kernel(type, Isa::kScalar);
  ASSERT_NE(ref, nullptr);
  const WeightCodec& codec = *find_codec(type);
  const size_t rb = row_bytes(type, 2048);
  std::mt19937 rng(uint32_t(type) * 131 + uint32_t(isa));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  int cases = 0;
  for (int64_t n : {32, 96, 288, 2048}) {
    for (int64_t R : {1, 15, 16, 17, 40}) {
      for (int64_t T : {1, 2, 7, 8, 9, 19}) {
        const size_t w_stride = row_bytes(type, uint64_t(n));
        std::vector<uint8_t> w(w_stride * size_t(R) + rb);
        std::vector<float> deq(static_cast<size_t>(R * n)), src(static_cast<size_t>(n));
        for (int64_t r = 0; r < R; ++r) {
          uint8_t* row = w.data() + size_t(r) * w_stride;
          for (auto& v : src) v = dist(rng);
          codec.quantize_row(src.data(), row, n);
          if (r % 2 == 1) {  // every quant value, with the codec's scales
            const TensorTypeInfo& info = tensor_type_info(type);
            const size_t head = type == TensorType::Q4_1 ? 4 : 2;
            for (int64_t b = 0; b < n / 32; ++b) {
              for (size_t i = head; i < info.block_bytes; ++i) {
                row[size_t(b) * info.block_bytes + i] = uint8_t(rng());
              }
            }
          }
          codec.dequantize_row(row, deq.data() + r * n, n);
        }
        const PackedShape shape = packed_shape(type, R, n);
        std::vector<uint8_t> packed(shape.total_bytes(), 0xcc);
        pack_groups(type, w.data(), w_stride, R, n, 0, shape.groups, packed.data());

        const int64_t nb = n / 32;
        std::vector<BlockQ8x> x(size_t(T * nb));
        std::vector<BlockQ16x> x16(size_t(T * nb));
        std::vector<float> xf(static_cast<size_t>(n)), used(static_cast<size_t>(T * n));
        for (int64_t t = 0; t < T; ++t) {
          for (auto& v : xf) v = 2.0f * dist(rng);
          quantize_activations_q8_scalar(xf.data(), x.data() + t * nb, n);
          quantize_activations_q16_scalar(xf.data(), x16.data() + t * nb, n);
          for (int64_t c = 0; c < n; ++c) {
            const BlockQ8x& b = x[size_t(t * nb + c / 32)];
            const BlockQ16x& b16 = x16[size_t(t * nb + c / 32)];
            used[size_t(t * n + c)] =
                q16 ? b16.d * float(256 * b16.hi[c % 32] + b16.lo[c % 32]) : b.d * b.qs[c % 32];
          }
        }
        const auto* xb = q16 ? reinterpret_cast<const uint8_t*>(x16.data())
                             : reinterpret_cast<const uint8_t*>(x.data());
        const size_t x_stride = size_t(nb) * (q16 ? sizeof(BlockQ16x) : sizeof(BlockQ8x));
        const int64_t ldy = R + 2;
        std::vector<float> y(size_t(T * ldy), NAN), y_ref(size_t(T * ldy), NAN);
        k->tile(packed.data(), shape.group_bytes, R, xb, x_stride, T, n, y.data(), ldy);
        if (q16) {  // no row kernel takes BlockQ16x: a double-precision sum instead
          for (int64_t t = 0; t < T; ++t) {
            for (int64_t r = 0; r < R; ++r) {
              double acc = 0;
              for (int64_t c = 0; c < n; ++c) {
                acc += double(deq[size_t(r * n + c)]) * used[size_t(t * n + c)];
              }
              y_ref[size_t(t * ldy + r)] = float(acc);
            }
          }
        } else {
          ref->tile(w.data(), w_stride, R, xb, x_stride, T, n, y_ref.data(), ldy);
        }
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t r = 0; r < ldy; ++r) {
            const size_t i = size_t(t * ldy + r);
            if (r >= R) {
              ASSERT_TRUE(std::isnan(y[i])) << "wrote outside the tile at r=" << r;
              continue;
            }
            if (isa == Isa::kScalar && !q16) {
              ASSERT_EQ(y[i], y_ref[i]) << "n=" << n << " R=" << R << " T=" << T << " r=" << r;
              continue;
            }
            // q4_1's minimum term is bounded by |d_w| * 15 + |m| per weight;
            // |deq| + 16 |d| would over-count, so use a generous 2x |deq| + 1.
            double mag = 0;
            for (int64_t c = 0; c < n; ++c) {
              mag +=
                  (2 * std::fabs(deq[size_t(r * n + c)]) + 1) * std::fabs(used[size_t(t * n + c)]);
            }
            ASSERT_NEAR(y[i], y_ref[i], 1e-5 * mag)
                << "n=" << n << " R=" << R << " T=" << T << " r=" << r << " t=" << t;
          }
        }
        ++cases;
      }
    }
  }
  RecordProperty("cases", cases);
}

std::vector<Param> all_params() {
  std::vector<Param> p;
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
    for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
      for (ActivationKind a : {ActivationKind::kQ8, ActivationKind::kQ16}) p.push_back({t, i, a});
    }
  }
  return p;
}

INSTANTIATE_TEST_SUITE_P(AllTargets, PackedGemmTest, ::testing::ValuesIn(all_params()), param_name);

TEST(PackedWeights, ShapeAndPadding) {
  const PackedShape s = packed_shape(TensorType::Q4_0, 17, 64);
  EXPECT_EQ(s.groups, 2);
  EXPECT_EQ(s.group_bytes, 2u * (256 + 32));
  EXPECT_EQ(packed_shape(TensorType::Q8_0, 16, 32).group_bytes, 512u + 32);
  EXPECT_EQ(packed_shape(TensorType::Q4_1, 16, 32).group_bytes, 256u + 64);
  EXPECT_FALSE(packable(TensorType::F16));
  EXPECT_TRUE(packable(TensorType::Q4_1));
}

}  // namespace
}  // namespace memwall::kernels
