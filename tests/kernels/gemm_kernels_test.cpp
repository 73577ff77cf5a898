// Every GEMM kernel against the scalar kernel of its format, on every ISA
// target this machine supports: random shapes with odd and tail sizes, row
// and activation strides with padding, unaligned base pointers, ldy > R, and
// the outputs outside the tile left untouched.
//
// Tolerance: quantized formats compute each block's dot exactly in integers
// on every target; only the float accumulation order differs. So both paths
// are held to 1e-5 of sum |terms| (the sum of the magnitudes of what is
// accumulated), which bounds float reordering error for these sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "block_activations_util.h"
#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/simd_kernels.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

struct Param {
  TensorType type;
  Isa isa;
};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::string(tensor_type_name(info.param.type)) + "_" +
         std::string(isa_name(info.param.isa));
}

bool is_quantized(TensorType t) {
  return t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::Q8_0;
}

// A row-major weight matrix in the format's layout, rows `stride` bytes apart,
// starting `offset` bytes into its buffer (so the base may be unaligned).
struct Weights {
  std::vector<uint8_t> buf;
  size_t offset = 0, stride = 0;
  std::vector<float> deq;   // dequantized, R x n
  std::vector<float> mins;  // q4_1: |m| per block, R x n/32
  const uint8_t* data() const { return buf.data() + offset; }
};

Weights make_weights(TensorType type, int64_t R, int64_t n, std::mt19937& rng, size_t offset,
                     size_t pad, bool random_bits) {
  const WeightCodec& codec = *find_codec(type);
  const size_t rb = row_bytes(type, uint64_t(n));
  Weights w;
  w.offset = offset;
  w.stride = rb + pad;
  w.buf.assign(offset + w.stride * size_t(R), 0xa5);
  w.deq.resize(size_t(R * n));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> src(static_cast<size_t>(n));
  const TensorTypeInfo& info = tensor_type_info(type);
  // The codecs want aligned blocks (as GGUF gives them): encode into an
  // aligned row, then copy it to its possibly unaligned place.
  std::vector<uint64_t> aligned(rb / 8 + 1);
  auto* tmp = reinterpret_cast<uint8_t*>(aligned.data());
  for (int64_t r = 0; r < R; ++r) {
    for (auto& v : src) v = dist(rng);
    codec.quantize_row(src.data(), tmp, n);
    if (random_bits && is_quantized(type)) {
      // Every quant value, including q8_0's -128, with the codec's scales.
      const size_t head = type == TensorType::Q4_1 ? 4 : 2;
      for (int64_t b = 0; b < n / 32; ++b) {
        uint8_t* block = tmp + size_t(b) * info.block_bytes;
        for (size_t i = head; i < info.block_bytes; ++i) block[i] = uint8_t(rng());
      }
    }
    codec.dequantize_row(tmp, w.deq.data() + r * n, n);
    if (type == TensorType::Q4_1) {
      for (int64_t b = 0; b < n / 32; ++b) {
        uint16_t m;
        std::memcpy(&m, tmp + size_t(b) * 20 + 2, 2);
        w.mins.push_back(std::fabs(fp16_to_fp32(m)));
      }
    }
    std::memcpy(w.buf.data() + offset + size_t(r) * w.stride, tmp, rb);
  }
  return w;
}

// Activations: T rows of n floats, and their BlockQ8x quantization, each
// `stride` bytes apart from `offset` bytes into a buffer.
struct Activations {
  std::vector<uint8_t> buf;
  size_t offset = 0, stride = 0;
  std::vector<float> used;  // what the kernel multiplies by: x or d_x * q_x
  const uint8_t* data() const { return buf.data() + offset; }
};

Activations make_activations(bool q8, int64_t T, int64_t n, std::mt19937& rng, size_t offset,
                             size_t pad) {
  Activations a;
  a.offset = offset;
  a.stride = (q8 ? size_t(n / 32) * sizeof(BlockQ8x) : size_t(n) * 4) + pad;
  a.buf.assign(offset + a.stride * size_t(T), 0x5a);
  a.used.resize(size_t(T * n));
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(n));
  std::vector<BlockQ8x> blocks(static_cast<size_t>(n / 32));
  for (int64_t t = 0; t < T; ++t) {
    for (auto& v : x) v = dist(rng);
    uint8_t* dst = a.buf.data() + offset + size_t(t) * a.stride;
    if (!q8) {
      std::memcpy(dst, x.data(), size_t(n) * 4);
      std::copy(x.begin(), x.end(), a.used.begin() + t * n);
      continue;
    }
    quantize_activations_q8_scalar(x.data(), blocks.data(), n);
    std::memcpy(dst, blocks.data(), blocks.size() * sizeof(BlockQ8x));
    for (int64_t i = 0; i < n; ++i) {
      a.used[size_t(t * n + i)] = blocks[size_t(i / 32)].d * blocks[size_t(i / 32)].qs[i % 32];
    }
  }
  return a;
}

class GemmKernelTest : public ::testing::TestWithParam<Param> {
 protected:
  void TearDown() override { reset_isa(); }
};

TEST_P(GemmKernelTest, EqualsScalarKernel) {
  const auto [type, isa] = GetParam();
  if (!isa_supported(isa)) {
    GTEST_SKIP() << "this CPU does not support " << isa_name(isa)
                 << " (best: " << isa_name(detected_isa()) << ")";
  }
  const GemmKernel* k = find_gemm_kernel(type, isa);
  const GemmKernel* ref = find_gemm_kernel(type, Isa::kScalar);
  ASSERT_NE(k, nullptr);
  ASSERT_NE(ref, nullptr);
  if (k->isa != isa) {
    GTEST_SKIP() << "no " << isa_name(isa) << " kernel for " << tensor_type_name(type)
                 << "; it uses the " << isa_name(k->isa) << " one, tested there";
  }
  ASSERT_EQ(k->activation, ref->activation);
  force_isa(isa);
  const bool q8 = k->activation == ActivationKind::kQ8;
  const bool has_min = type == TensorType::Q4_1;
  int cases = 0;
  for (uint32_t seed = 1; seed <= 2; ++seed) {
    std::mt19937 rng(seed * 7919 + uint32_t(type));
    // Float formats have no blocks: odd n exercise the column tails.
    const std::vector<int64_t> ns = is_quantized(type)
                                        ? std::vector<int64_t>{32, 64, 96, 256 + 32, 2048}
                                        : std::vector<int64_t>{1, 7, 17, 32, 33, 100, 288, 2048};
    for (int64_t n : ns) {
      for (int64_t R : {1, 2, 3, 5, 8, 17}) {
        for (int64_t T : {1, 2, 3, 4, 5, 7, 16, 33}) {
          if (n == 2048 && R * T > 64 && (R + T) % 3 != 0) continue;  // keep the run short
          const size_t w_off = size_t(rng() % 4), w_pad = size_t(rng() % 2) * 6;
          const size_t x_off = size_t(rng() % 4) * (q8 ? 1 : 4) + (q8 ? 0 : size_t(rng() % 2)),
                       x_pad = size_t(rng() % 2) * 8;
          const Weights w = make_weights(type, R, n, rng, w_off, w_pad, seed % 2 == 0);
          const Activations x = make_activations(q8, T, n, rng, x_off, x_pad);
          const int64_t ldy = R + 3;
          std::vector<float> y(size_t(T * ldy), NAN), y_ref(size_t(T * ldy), NAN);
          k->tile(w.data(), w.stride, R, x.data(), x.stride, T, n, y.data(), ldy);
          ref->tile(w.data(), w.stride, R, x.data(), x.stride, T, n, y_ref.data(), ldy);
          for (int64_t t = 0; t < T; ++t) {
            for (int64_t r = 0; r < ldy; ++r) {
              const size_t i = size_t(t * ldy + r);
              if (r >= R) {
                ASSERT_TRUE(std::isnan(y[i])) << "wrote outside the tile at r=" << r;
                continue;
              }
              double mag = 0;
              for (int64_t c = 0; c < n; ++c) {
                const double xv = std::fabs(x.used[size_t(t * n + c)]);
                double wv = std::fabs(w.deq[size_t(r * n + c)]);
                if (has_min) wv += w.mins[size_t(r * (n / 32) + c / 32)];
                mag += wv * xv;
              }
              ASSERT_NEAR(y[i], y_ref[i], 1e-5 * mag + 1e-30)
                  << tensor_type_name(type) << " " << isa_name(isa) << " n=" << n << " R=" << R
                  << " T=" << T << " r=" << r << " t=" << t << " seed=" << seed;
            }
          }
          ++cases;
        }
      }
    }
  }
  RecordProperty("cases", cases);
}

std::vector<Param> all_params() {
  std::vector<Param> p;
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0, TensorType::F32,
                       TensorType::F16, TensorType::BF16}) {
    for (Isa i : {Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) p.push_back({t, i});
  }
  return p;
}

INSTANTIATE_TEST_SUITE_P(AllTargets, GemmKernelTest, ::testing::ValuesIn(all_params()), param_name);

// The GGUF-row kernels with BlockQ16x activations (kFast where AVX-512 VNNI
// is missing) have no scalar twin: they are held to the dequantized weights
// times the activations they were given, summed in double.
class GemmQ16RowKernelTest : public ::testing::TestWithParam<Param> {
 protected:
  void TearDown() override { reset_isa(); }
};

TEST_P(GemmQ16RowKernelTest, EqualsDequantizedProduct) {
  const auto [type, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  const GemmKernel* k = find_gemm_kernel(type, isa, WeightLayout::kRows, ActivationKind::kQ16);
  ASSERT_NE(k, nullptr);
  if (k->isa != isa) GTEST_SKIP() << "uses the " << isa_name(k->isa) << " kernel, tested there";
  force_isa(isa);
  const bool has_min = type == TensorType::Q4_1;
  for (uint32_t seed = 1; seed <= 2; ++seed) {
    std::mt19937 rng(seed * 104729 + uint32_t(type));
    for (int64_t n : {32, 64, 96, 256 + 32, 2048}) {
      for (int64_t R : {1, 3, 4, 5, 9}) {
        for (int64_t T : {1, 2, 3, 5}) {
          const size_t w_off = size_t(rng() % 4), w_pad = size_t(rng() % 2) * 6;
          const size_t x_off = size_t(rng() % 4), x_pad = size_t(rng() % 2) * 8;
          const Weights w = make_weights(type, R, n, rng, w_off, w_pad, seed == 2);
          const test_util::TestBuffer x = test_util::make_block_activations(
              ActivationKind::kQ16, T, n, rng, x_off, x_pad, seed == 2);
          const int64_t ldy = R + 2;
          std::vector<float> y(size_t(T * ldy), NAN);
          k->tile(w.data(), w.stride, R, x.data(), x.stride, T, n, y.data(), ldy);
          for (int64_t t = 0; t < T; ++t) {
            for (int64_t r = 0; r < ldy; ++r) {
              const size_t i = size_t(t * ldy + r);
              if (r >= R) {
                ASSERT_TRUE(std::isnan(y[i])) << "wrote outside the tile at r=" << r;
                continue;
              }
              double want = 0, mag = 0;
              for (int64_t c = 0; c < n; ++c) {
                const double xv = x.used[size_t(t * n + c)];
                const double wv = w.deq[size_t(r * n + c)];
                want += wv * xv;
                mag += (std::fabs(wv) + (has_min ? w.mins[size_t(r * (n / 32) + c / 32)] : 0.0)) *
                       std::fabs(xv);
              }
              ASSERT_NEAR(y[i], want, 1e-5 * mag + 1e-30)
                  << tensor_type_name(type) << " " << isa_name(isa) << " n=" << n << " R=" << R
                  << " T=" << T << " r=" << r << " t=" << t << " seed=" << seed;
            }
          }
        }
      }
    }
  }
}

std::vector<Param> q16_params() {
  std::vector<Param> p;
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
    for (Isa i : {Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) p.push_back({t, i});
  }
  return p;
}

INSTANTIATE_TEST_SUITE_P(AllTargets, GemmQ16RowKernelTest, ::testing::ValuesIn(q16_params()),
                         param_name);

TEST(GemmRegistry, PicksTheBestKernelAtOrBelowTheTarget) {
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0, TensorType::F32,
                       TensorType::F16, TensorType::BF16}) {
    const GemmKernel* scalar = find_gemm_kernel(t, Isa::kScalar);
    ASSERT_NE(scalar, nullptr) << tensor_type_name(t);
    EXPECT_EQ(scalar->isa, Isa::kScalar);
    EXPECT_EQ(scalar->type, t);
    EXPECT_EQ(scalar->activation, is_quantized(t) ? ActivationKind::kQ8 : ActivationKind::kF32);
    Isa prev = Isa::kScalar;
    for (Isa i : {Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
      const GemmKernel* k = find_gemm_kernel(t, i);
      ASSERT_NE(k, nullptr);
      EXPECT_EQ(k->type, t);
      EXPECT_LE(static_cast<int>(k->isa), static_cast<int>(i));
      EXPECT_GE(static_cast<int>(k->isa), static_cast<int>(prev));  // never worse than below
      prev = k->isa;
    }
  }
  EXPECT_EQ(find_gemm_kernel(TensorType::Q4_K, Isa::kAvx512Vnni), nullptr);
}

}  // namespace
}  // namespace memwall::kernels
