// The k-quant and ternary GEMM kernels (kquant_kernels.h) on every target
// this machine supports, with both activation kinds (BlockQ8K, BlockQ16K):
// each equals the dequantized weights times the dequantized activations in
// double, and the scalar kernel, within float reordering error; on random
// shapes with tails (T not a multiple of the micro-tile), padded and
// unaligned strides, ldy > R, and outputs outside the tile untouched.
// Weights are both codec-quantized rows and random bytes (every quant
// value and scale) under valid f16 scales.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "base/thread_pool.h"
#include "kernels/activations_k.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/kquant_kernels.h"
#include "kernels/matmul.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr TensorType kTypes[] = {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
                                 TensorType::TQ1_0, TensorType::TQ2_0};

// Byte offsets of each format's f16 scales within a block, kept valid when
// the rest of a block is randomized.
std::vector<size_t> f16_fields(TensorType t) {
  switch (t) {
    case TensorType::Q4_K:
    case TensorType::Q5_K:
      return {0, 2};
    case TensorType::Q6_K:
      return {208};
    case TensorType::TQ1_0:
      return {52};
    default:
      return {64};
  }
}

struct Weights {
  std::vector<uint8_t> buf;
  size_t offset = 0, stride = 0;
  std::vector<float> deq;  // R x n
  const uint8_t* data() const { return buf.data() + offset; }
};

Weights make_weights(TensorType type, int64_t R, int64_t n, std::mt19937& rng, size_t offset,
                     size_t pad, bool random_bits) {
  const WeightCodec& codec = *find_codec(type);
  const size_t rb = row_bytes(type, uint64_t(n));
  const size_t bb = tensor_type_info(type).block_bytes;
  Weights w;
  w.offset = offset;
  w.stride = rb + pad;
  w.buf.assign(offset + w.stride * size_t(R), 0xa5);
  w.deq.resize(size_t(R * n));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> src(static_cast<size_t>(n));
  std::vector<uint8_t> row(rb);
  for (int64_t r = 0; r < R; ++r) {
    for (auto& v : src) v = dist(rng) + (r % 3 == 1 ? 0.7f : 0.0f);  // some rows skewed
    codec.quantize_row(src.data(), row.data(), n);
    if (random_bits) {
      for (size_t b = 0; b < rb / bb; ++b) {
        std::vector<uint8_t> keep;
        const std::vector<size_t> fields = f16_fields(type);
        for (size_t f : fields)
          keep.insert(keep.end(), row.begin() + b * bb + f, row.begin() + b * bb + f + 2);
        for (size_t i = 0; i < bb; ++i) row[b * bb + i] = uint8_t(rng());
        for (size_t k = 0; k < fields.size(); ++k) {
          std::memcpy(&row[b * bb + fields[k]], &keep[2 * k], 2);
        }
      }
    }
    codec.dequantize_row(row.data(), w.deq.data() + r * n, n);
    std::memcpy(w.buf.data() + offset + size_t(r) * w.stride, row.data(), rb);
  }
  return w;
}

struct Activations {
  std::vector<uint8_t> buf;
  size_t offset = 0, stride = 0;
  std::vector<double> used;  // what the kernel multiplies by, T x n
  const uint8_t* data() const { return buf.data() + offset; }
};

Activations make_activations(ActivationKind act, int64_t T, int64_t n, std::mt19937& rng,
                             size_t offset, size_t pad) {
  const bool q16 = act == ActivationKind::kQ16K;
  const size_t block = q16 ? sizeof(BlockQ16K) : sizeof(BlockQ8K);
  const int64_t nb = n / kQK;
  Activations a;
  a.offset = offset;
  a.stride = size_t(nb) * block + pad;
  a.buf.assign(offset + a.stride * size_t(T), 0x5a);
  a.used.resize(size_t(T * n));
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t t = 0; t < T; ++t) {
    for (auto& v : x) v = dist(rng);
    if (t % 2 == 1) x[size_t(t) % size_t(n)] = 90.0f;  // an outlier
    uint8_t* dst = a.buf.data() + offset + size_t(t) * a.stride;
    if (q16) {
      std::vector<BlockQ16K> blocks(static_cast<size_t>(nb));
      quantize_activations_q16k(x.data(), blocks.data(), n);
      std::memcpy(dst, blocks.data(), blocks.size() * sizeof(BlockQ16K));
      for (int64_t i = 0; i < n; ++i) {
        const BlockQ16K& b = blocks[size_t(i / kQK)];
        a.used[size_t(t * n + i)] = double(b.d) * (256.0 * b.hi[i % kQK] + b.lo[i % kQK]);
      }
    } else {
      std::vector<BlockQ8K> blocks(static_cast<size_t>(nb));
      quantize_activations_q8k(x.data(), blocks.data(), n);
      std::memcpy(dst, blocks.data(), blocks.size() * sizeof(BlockQ8K));
      for (int64_t i = 0; i < n; ++i) {
        const BlockQ8K& b = blocks[size_t(i / kQK)];
        a.used[size_t(t * n + i)] = double(b.d) * b.qs[i % kQK];
      }
    }
  }
  return a;
}

struct Param {
  TensorType type;
  Isa isa;
  ActivationKind act;
};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::string(tensor_type_name(info.param.type)) + "_" +
         std::string(isa_name(info.param.isa)) +
         (info.param.act == ActivationKind::kQ16K ? "_q16k" : "_q8k");
}

class KQuantGemmTest : public ::testing::TestWithParam<Param> {};

TEST_P(KQuantGemmTest, EqualsReferenceAndScalarKernel) {
  const auto [type, isa, act] = GetParam();
  if (!isa_supported(isa)) {
    GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  }
  const GemmKernel* k = find_gemm_kernel(type, isa, WeightLayout::kRows, act);
  const GemmKernel* ref = find_gemm_kernel(type, Isa::kScalar, WeightLayout::kRows, act);
  ASSERT_NE(k, nullptr);
  ASSERT_NE(ref, nullptr);
  ASSERT_EQ(k->isa, isa);
  ASSERT_EQ(k->activation, act);
  std::mt19937 rng(uint32_t(type) * 131 + uint32_t(isa) * 7 + uint32_t(act));
  struct Shape {
    int64_t R, T, n;
  };
  for (const Shape s : {Shape{1, 1, 256}, Shape{3, 2, 512}, Shape{7, 5, 768}, Shape{17, 9, 1280},
                        Shape{5, 4, 256}, Shape{2, 3, 2048}, Shape{4, 1, 4096}}) {
    for (bool random_bits : {false, true}) {
      const Weights w = make_weights(type, s.R, s.n, rng, 3, 5, random_bits);
      const Activations x = make_activations(act, s.T, s.n, rng, 1, 7);
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
            continue;
          }
          double want = 0, mag = 0;
          for (int64_t c = 0; c < s.n; ++c) {
            const double term = double(w.deq[size_t(r * s.n + c)]) * x.used[size_t(t * s.n + c)];
            want += term;
            mag += std::fabs(term);
          }
          const double tol = 2e-5 * mag + 1e-6;
          ASSERT_NEAR(y[o], want, tol) << "t=" << t << " r=" << r << " R=" << s.R << " T=" << s.T
                                       << " n=" << s.n << " random_bits=" << random_bits;
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
      for (ActivationKind a : {ActivationKind::kQ8K, ActivationKind::kQ16K}) p.push_back({t, i, a});
    }
  }
  return p;
}

INSTANTIATE_TEST_SUITE_P(AllTargets, KQuantGemmTest, ::testing::ValuesIn(all_params()), param_name);

// The integer form every kernel computes with reproduces the codec's weights.
TEST(KQuantDecode, IntegerFormEqualsDequantize) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (TensorType t : kTypes) {
    std::vector<float> x(256), deq(256);
    std::vector<uint8_t> q(row_bytes(t, 256));
    for (int trial = 0; trial < 20; ++trial) {
      for (auto& v : x) v = dist(rng) + 0.3f * float(trial % 3);
      find_codec(t)->quantize_row(x.data(), q.data(), 256);
      find_codec(t)->dequantize_row(q.data(), deq.data(), 256);
      KSuperBlock sb;
      ASSERT_TRUE(decode_ksuper(t, q.data(), sb));
      for (int i = 0; i < 256; ++i) {
        const double w = double(sb.d) * sb.sc[i / 16] * sb.u[i] + double(sb.dmin) * sb.corr[i / 16];
        ASSERT_NEAR(w, deq[size_t(i)], 1e-6 * (std::fabs(deq[size_t(i)]) + 1.0))
            << tensor_type_name(t) << " weight " << i;
        ASSERT_LE(sb.u[i], 63) << tensor_type_name(t);
      }
    }
  }
}

TEST(KQuantActivations, Q16KSplitsIntoHalvesExactly) {
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> x(512);
  for (auto& v : x) v = dist(rng);
  x[17] = -250.0f;
  std::vector<BlockQ16K> b(2);
  std::vector<BlockQ8K> b8(2);
  quantize_activations_q16k(x.data(), b.data(), 512);
  quantize_activations_q8k(x.data(), b8.data(), 512);
  for (int blk = 0; blk < 2; ++blk) {
    for (int g = 0; g < 16; ++g) {
      int sh = 0, sl = 0, s8 = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        sh += b[size_t(blk)].hi[i];
        sl += b[size_t(blk)].lo[i];
        s8 += b8[size_t(blk)].qs[i];
        const double X = 256.0 * b[size_t(blk)].hi[i] + b[size_t(blk)].lo[i];
        EXPECT_LE(std::fabs(X), 32512.0);
        EXPECT_NEAR(b[size_t(blk)].d * X, x[size_t(blk * 256 + i)], 0.51 * b[size_t(blk)].d);
        EXPECT_NEAR(b8[size_t(blk)].d * b8[size_t(blk)].qs[i], x[size_t(blk * 256 + i)],
                    0.51 * b8[size_t(blk)].d);
      }
      EXPECT_EQ(sh, b[size_t(blk)].bsums_hi[g]);
      EXPECT_EQ(sl, b[size_t(blk)].bsums_lo[g]);
      EXPECT_EQ(s8, b8[size_t(blk)].bsums[g]);
    }
  }
}

// matmul picks the k-quant kernels for kFast and kInt8 on every target, and
// each precision stays within its bound of the f32 product of the decoded
// weights: kExact to rounding, kFast (16-bit activations) close to it, kInt8
// within 8-bit activation error.
TEST(KQuantMatmul, EveryPrecisionOnEveryTargetMatchesTheF32Product) {
  ThreadPool pool(2);
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t rows = 37, cols = 768;
  for (TensorType type : kTypes) {
    const Weights w = make_weights(type, rows, cols, rng, 0, 0, false);
    MatrixView view;
    view.name = "w";
    view.type = type;
    view.codec = find_codec(type);
    view.data = w.data();
    view.rows = rows;
    view.cols = cols;
    view.row_bytes = w.stride;
    for (int64_t T : {1, 6}) {
      std::vector<float> x(size_t(T * cols));
      for (auto& v : x) v = dist(rng);
      std::vector<double> want(size_t(T * rows)), mag(want.size());
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < cols; ++c) {
            const double term = double(w.deq[size_t(r * cols + c)]) * x[size_t(t * cols + c)];
            want[size_t(t * rows + r)] += term;
            mag[size_t(t * rows + r)] += std::fabs(term);
          }
        }
      }
      for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
        if (!isa_supported(isa)) continue;
        force_isa(isa);
        for (Precision p : {Precision::kExact, Precision::kFast, Precision::kInt8}) {
          // Relative to sum |w x|: f32 rounding; 16-bit activations (1/32512
          // of a super-block's largest); 8-bit ones (1/127).
          const double rel = p == Precision::kExact ? 1e-5 : p == Precision::kFast ? 1e-4 : 2e-2;
          std::vector<float> y(size_t(T * rows));
          matmul(pool, view, x.data(), T, y.data(), p);
          for (size_t i = 0; i < y.size(); ++i) {
            ASSERT_NEAR(y[i], want[i], rel * mag[i] + 1e-6)
                << tensor_type_name(type) << " " << isa_name(isa) << " precision "
                << static_cast<int>(p) << " T=" << T << " i=" << i;
          }
        }
      }
      reset_isa();
    }
  }
}

}  // namespace
}  // namespace memwall::kernels
