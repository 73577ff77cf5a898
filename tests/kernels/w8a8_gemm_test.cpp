// The w8a8 GEMM tiles (w8a8_kernels.h) with per-token int8 activations
// (kQ8Row), on every target this machine supports:
//   * every SIMD tile equals the scalar tile EXACTLY (float bits): the
//     integer sums are exact and the two float products run in one order;
//   * the scalar tile equals d_w * d_x * sum(q_w q_x) computed in int64 and
//     double within 3 float roundings (4e-7 relative), and with unit scales
//     equals float(the int64 sum) exactly;
// over odd R (decode's 16-row and prefill's 4-row micro-tiles and their
// tails), T in 1..9 and 67, cols 32..1536 (32 mod 64 included), unaligned
// rows and strides, ldy > R with the rest of Y untouched; weights are
// codec-quantized rows, random int8 rows and rows at +-127 (AVX2's int16
// pairs at their largest, VNNI's unsigned offset at its largest).
// Then matmul: kFast and kInt8 run this kernel on the records matmul
// quantizes, kExact the codec, and fast stays within the activations' half
// step of exact; and MatmulInput sizes the records up front.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "kernels/weight_format.h"
#include "model/weight_units.h"

namespace memwall::kernels {
namespace {

constexpr Isa kTargets[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni};

// Rows of int8 values behind {f32 d; int32 sum} headers (both W and X).
struct Rows {
  std::vector<uint8_t> buf;
  size_t offset = 0, stride = 0;
  int64_t n = 0;
  const uint8_t* data() const { return buf.data() + offset; }
  const uint8_t* row(int64_t i) const { return data() + size_t(i) * stride; }
  float d(int64_t i) const {
    float v;
    std::memcpy(&v, row(i), 4);
    return v;
  }
  int8_t q(int64_t i, int64_t c) const { return int8_t(row(i)[8 + c]); }
};

void set_header(uint8_t* row, float d, const int8_t* q, int64_t n) {
  int32_t sum = 0;
  for (int64_t c = 0; c < n; ++c) sum += q[c];
  std::memcpy(row, &d, 4);
  std::memcpy(row + 4, &sum, 4);
}

// variant 0: codec-quantized normal rows (every third skewed); 1: random
// int8 in [-127, 127] under random scales; 2: +-127 runs; 3: as 1 with d = 1.
Rows make_weights(int64_t R, int64_t n, std::mt19937& rng, size_t offset, size_t pad, int variant) {
  const size_t rb = row_bytes(TensorType::W8A8, uint64_t(n));
  Rows w;
  w.offset = offset;
  w.stride = rb + pad;
  w.n = n;
  w.buf.assign(offset + w.stride * size_t(R), 0xa5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::uniform_int_distribution<int> byte(-127, 127);
  std::vector<float> src(static_cast<size_t>(n));
  std::vector<int8_t> q(static_cast<size_t>(n));
  for (int64_t r = 0; r < R; ++r) {
    uint8_t* row = w.buf.data() + offset + size_t(r) * w.stride;
    if (variant == 0) {
      for (float& v : src) v = dist(rng) + (r % 3 == 1 ? 0.7f : 0.0f);
      codec_w8a8().quantize_row(src.data(), row, n);
      continue;
    }
    for (int64_t c = 0; c < n; ++c) {
      q[size_t(c)] = variant == 2 ? int8_t((r + c / 7) % 2 == 0 ? 127 : -127) : int8_t(byte(rng));
    }
    const float d = variant == 3 ? 1.0f : std::ldexp(1.0f + float(rng() % 1000) / 1000.0f, -8);
    std::memcpy(row + 8, q.data(), size_t(n));
    set_header(row, d, q.data(), n);
  }
  return w;
}

// Per-token records: quantized floats (variant 0), random int8 (1, 3: d = 1)
// or +-127 runs (2). stride: q8_row_stride(n) + pad.
Rows make_activations(int64_t T, int64_t n, std::mt19937& rng, size_t offset, size_t pad,
                      int variant) {
  Rows x;
  x.offset = offset;
  x.stride = q8_row_stride(n) + pad;
  x.n = n;
  x.buf.assign(offset + x.stride * size_t(T), 0x5a);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::uniform_int_distribution<int> byte(-127, 127);
  std::vector<float> src(static_cast<size_t>(n));
  std::vector<uint8_t> rec(q8_row_stride(n));
  std::vector<int8_t> q(static_cast<size_t>(n));
  for (int64_t t = 0; t < T; ++t) {
    uint8_t* dst = x.buf.data() + offset + size_t(t) * x.stride;
    if (variant == 0) {
      for (float& v : src) v = dist(rng);
      if (t % 2 == 1) src[size_t(t * 7) % size_t(n)] = 90.0f;  // an outlier channel
      quantize_activations_q8_row(src.data(), rec.data(), n);
      std::memcpy(dst, rec.data(), rec.size());
      continue;
    }
    for (int64_t c = 0; c < n; ++c) {
      q[size_t(c)] = variant == 2 ? int8_t((t + c / 5) % 3 == 0 ? -127 : 127) : int8_t(byte(rng));
    }
    const float d = variant == 3 ? 1.0f : std::ldexp(1.0f + float(rng() % 1000) / 1000.0f, -6);
    std::memcpy(dst + 8, q.data(), size_t(n));
    set_header(dst, d, q.data(), n);
  }
  return x;
}

int64_t int_dot(const Rows& w, int64_t r, const Rows& x, int64_t t) {
  int64_t s = 0;
  for (int64_t c = 0; c < w.n; ++c) s += int64_t(w.q(r, c)) * int64_t(x.q(t, c));
  return s;
}

const GemmKernel* kernel_at(Isa isa) {
  return find_gemm_kernel(TensorType::W8A8, isa, WeightLayout::kRows, ActivationKind::kQ8Row);
}

class W8A8GemmTest : public ::testing::TestWithParam<Isa> {};

TEST_P(W8A8GemmTest, EqualsScalarExactlyAndScalarEqualsReference) {
  const Isa isa = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  const GemmKernel* k = kernel_at(isa);
  const GemmKernel* ref = kernel_at(Isa::kScalar);
  ASSERT_NE(k, nullptr);
  ASSERT_NE(ref, nullptr);
  // avx512 without VNNI runs the AVX2 tile.
  ASSERT_EQ(k->isa, isa == Isa::kAvx512 ? Isa::kAvx2 : isa);
  ASSERT_EQ(ref->isa, Isa::kScalar);
  ASSERT_EQ(k->activation, ActivationKind::kQ8Row);
  ASSERT_EQ(k->layout, WeightLayout::kRows);
  // Other activation kinds find nothing for w8a8.
  EXPECT_EQ(find_gemm_kernel(TensorType::W8A8, isa, WeightLayout::kRows, ActivationKind::kQ8),
            nullptr);

  std::mt19937 rng(uint32_t(isa) * 7919 + 1);
  constexpr int64_t kRowChoices[] = {1, 2, 3, 4, 5, 7, 13, 15, 16, 17, 31, 33, 48, 64};
  constexpr int64_t kTokenChoices[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 67};
  constexpr int64_t kColChoices[] = {32, 64, 96, 576, 608, 1536};
  int checked = 0;
  for (const int64_t T : kTokenChoices) {
    for (const int64_t n : kColChoices) {
      // Two row counts per (T, n), one of them odd; large products sparingly.
      for (int pick = 0; pick < 2; ++pick) {
        int64_t R = kRowChoices[rng() % std::size(kRowChoices)];
        if (pick == 1 && R % 2 == 0) R += 1;
        if (T * R * n > 3'000'000) R = 5;
        const int variant = int(rng() % 4);
        const Rows w = make_weights(R, n, rng, 1 + rng() % 7, rng() % 9, variant);
        const Rows x = make_activations(T, n, rng, 3, (rng() % 3) * 4, variant);
        const int64_t ldy = R + 3;
        constexpr float kSentinel = -12345.0f;
        std::vector<float> y(size_t(T * ldy), kSentinel), yr(y.size(), kSentinel);
        k->tile(w.data(), w.stride, R, x.data(), x.stride, T, n, y.data(), ldy);
        ref->tile(w.data(), w.stride, R, x.data(), x.stride, T, n, yr.data(), ldy);
        const std::string shape = "R=" + std::to_string(R) + " T=" + std::to_string(T) +
                                  " n=" + std::to_string(n) + " variant=" + std::to_string(variant);
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t r = 0; r < ldy; ++r) {
            const size_t o = size_t(t * ldy + r);
            if (r >= R) {
              ASSERT_EQ(y[o], kSentinel) << "wrote outside the tile at t=" << t << " r=" << r;
              ASSERT_EQ(yr[o], kSentinel) << "scalar wrote outside the tile";
              continue;
            }
            ASSERT_EQ(std::memcmp(&y[o], &yr[o], sizeof(float)), 0)
                << isa_name(isa) << " " << y[o] << " vs scalar " << yr[o] << " at t=" << t
                << " r=" << r << " " << shape;
            const int64_t isum = int_dot(w, r, x, t);
            if (variant == 3) {
              ASSERT_EQ(yr[o], float(isum)) << "unit scales, t=" << t << " r=" << r << " " << shape;
            }
            const double want = double(w.d(r)) * double(x.d(t)) * double(isum);
            ASSERT_NEAR(yr[o], want, 4e-7 * std::fabs(want))
                << "scalar vs double, t=" << t << " r=" << r << " " << shape;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

INSTANTIATE_TEST_SUITE_P(AllTargets, W8A8GemmTest, ::testing::ValuesIn(kTargets),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

// Through matmul, every target forced: kFast and kInt8 equal the kernel on the
// records quantize_activations_q8_row makes (bits), kExact the codec's
// weights times f32 x, and fast differs from exact by at most what the
// activations' rounding allows: sum_c |w_c| * d_x / 2.
class W8A8MatmulTest : public ::testing::TestWithParam<Isa> {
 protected:
  void TearDown() override { reset_isa(); }
};

TEST_P(W8A8MatmulTest, PrecisionsTakeTheirPaths) {
  const Isa isa = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << "this CPU does not support " << isa_name(isa);
  force_isa(isa);
  ThreadPool pool(2);
  std::mt19937 rng(uint32_t(isa) + 90);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const WeightCodec& codec = codec_w8a8();
  for (const int64_t T : {1, 3, 70}) {
    for (const int64_t n : {576, 96}) {
      const int64_t R = 37;
      const size_t rb = row_bytes(TensorType::W8A8, uint64_t(n));
      std::vector<float> wf(size_t(R * n)), x(size_t(T * n));
      for (auto& v : wf) v = dist(rng);
      for (auto& v : x) v = dist(rng);
      x[size_t(n / 3)] = 40.0f;  // an outlier channel in token 0
      std::vector<uint8_t> wq(rb * size_t(R));
      for (int64_t r = 0; r < R; ++r)
        codec.quantize_row(wf.data() + r * n, wq.data() + size_t(r) * rb, n);
      MatrixView m;
      m.name = "w";
      m.type = TensorType::W8A8;
      m.codec = &codec;
      m.data = wq.data();
      m.rows = R;
      m.cols = n;
      m.row_bytes = rb;
      std::vector<float> deq(size_t(R * n));
      for (int64_t r = 0; r < R; ++r) codec.dequantize_row(m.row(r), deq.data() + r * n, n);

      std::vector<float> exact(size_t(T * R)), fast(exact.size()), int8(exact.size());
      matmul(pool, m, x.data(), T, exact.data(), Precision::kExact);
      matmul(pool, m, x.data(), T, fast.data(), Precision::kFast);
      matmul(pool, m, x.data(), T, int8.data(), Precision::kInt8);

      const size_t xs = q8_row_stride(n);
      std::vector<uint8_t> rec(size_t(T) * xs);
      for (int64_t t = 0; t < T; ++t)
        quantize_activations_q8_row(x.data() + t * n, rec.data() + size_t(t) * xs, n);
      std::vector<float> yk(exact.size());
      kernel_at(isa)->tile(m.data, rb, R, rec.data(), xs, T, n, yk.data(), R);

      for (int64_t t = 0; t < T; ++t) {
        Q8RowHeader h;
        std::memcpy(&h, rec.data() + size_t(t) * xs, sizeof h);
        for (int64_t r = 0; r < R; ++r) {
          double want = 0, mag = 0, wabs = 0;
          for (int64_t c = 0; c < n; ++c) {
            const double wv = deq[size_t(r * n + c)];
            want += wv * x[size_t(t * n + c)];
            mag += std::fabs(wv * x[size_t(t * n + c)]);
            wabs += std::fabs(wv);
          }
          const size_t o = size_t(t * R + r);
          const std::string at = "T=" + std::to_string(T) + " n=" + std::to_string(n) +
                                 " t=" + std::to_string(t) + " r=" + std::to_string(r);
          ASSERT_NEAR(exact[o], want, 1e-5 * mag + 1e-6) << "exact, " << at;
          ASSERT_EQ(fast[o], yk[o]) << "fast path is not the w8a8 kernel, " << at;
          ASSERT_EQ(int8[o], yk[o]) << "int8 path is not the w8a8 kernel, " << at;
          ASSERT_NEAR(fast[o], want, 0.5 * double(h.d) * wabs * (1 + 1e-4) + 1e-5 * mag)
              << "fast vs exact beyond half an activation step, " << at;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, W8A8MatmulTest, ::testing::ValuesIn(kTargets),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

// The per-token records are sized by reserve (so a forward pass allocates
// nothing) and counted by bytes_for; only for the forms the model reads.
TEST(W8A8MatmulInput, ReserveAndBytesForCoverTheRecords) {
  const int64_t T = 64, cols = 1536;
  const size_t rows_bytes = size_t(T) * q8_row_stride(cols);
  const InputForms rows_only{false, true}, both{true, true}, blocks_only{true, false};
  EXPECT_EQ(MatmulInput::bytes_for(T, cols, Precision::kFast, rows_only), rows_bytes);
  EXPECT_EQ(MatmulInput::bytes_for(T, cols, Precision::kInt8, rows_only), rows_bytes);
  EXPECT_EQ(MatmulInput::bytes_for(T, cols, Precision::kExact, both), 0u);
  EXPECT_EQ(MatmulInput::bytes_for(T, cols, Precision::kFast, InputForms{}), 0u);
  EXPECT_EQ(MatmulInput::bytes_for(T, cols, Precision::kFast, both),
            rows_bytes + MatmulInput::bytes_for(T, cols, Precision::kFast, blocks_only));
  EXPECT_EQ(MatmulInput::bytes_for(T, cols, Precision::kInt8, blocks_only),
            size_t(T * cols / 32) * sizeof(BlockQ8x));

  ThreadPool pool(2);
  std::vector<float> x(size_t(T * cols), 0.25f);
  MatmulInput in;
  in.reserve(T, cols, Precision::kFast, rows_only);
  in.set(x.data(), T, cols);
  const uint8_t* first = in.q8_rows(pool);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
  EXPECT_EQ(in.q8_rows(pool), first);  // made once per set()
  in.set(x.data(), 5, 576);
  EXPECT_EQ(in.q8_rows(pool), first);  // smaller inputs reuse the records
  Q8RowHeader h;
  std::memcpy(&h, first + q8_row_stride(576), sizeof h);
  EXPECT_EQ(h.d, 0.25f / 127.0f);
  EXPECT_EQ(h.sum, 576 * 127);
}

TEST(W8A8MatmulInput, InputFormsFollowTheWeights) {
  ModelWeights w;
  w.layers.resize(2);
  const auto set_all = [&](TensorType t) {
    for (LayerWeights& L : w.layers) {
      for (MatrixView* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) m->type = t;
    }
    w.output.type = t;
  };
  set_all(TensorType::W8A8);
  InputForms f = input_forms(w, Precision::kFast);
  EXPECT_TRUE(f.q8_rows);
  EXPECT_FALSE(f.blocks);
  f = input_forms(w, Precision::kExact);
  EXPECT_FALSE(f.q8_rows || f.blocks);
  w.output.type = TensorType::Q8_0;  // --keep output=q8_0
  f = input_forms(w, Precision::kInt8);
  EXPECT_TRUE(f.q8_rows && f.blocks);
  set_all(TensorType::F16);
  f = input_forms(w, Precision::kFast);
  EXPECT_FALSE(f.q8_rows || f.blocks);
  set_all(TensorType::Q4_0);
  f = input_forms(w, Precision::kFast);
  EXPECT_TRUE(f.blocks);
  EXPECT_FALSE(f.q8_rows);
}

}  // namespace
}  // namespace memwall::kernels
