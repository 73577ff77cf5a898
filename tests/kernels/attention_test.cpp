// Attention pieces on every ISA target the machine supports, against plain
// double-precision loops: the vector softmax, the value mix (mix_rows), and
// a whole causal block (attend_block) over odd shapes, GQA-style strides and
// head dims that are not multiples of the vector width. The vector exp is a
// polynomial good to a few ulp, so softmax is held to 4e-6 relative.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "format/tensor_type.h"
#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/isa.h"
#include "kernels/vector_ops.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

class AttentionTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << "CPU lacks " << isa_name(GetParam());
    force_isa(GetParam());
  }
  void TearDown() override { reset_isa(); }
};

std::vector<float> random_vec(std::mt19937& rng, size_t n, float sd) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST_P(AttentionTest, SoftmaxMatchesDouble) {
  const VectorOps& ops = vector_ops(GetParam());
  std::mt19937 rng(7);
  for (int64_t n : {1, 2, 15, 16, 17, 100, 1000}) {
    for (float sd : {0.1f, 5.0f, 40.0f}) {
      std::vector<float> x = random_vec(rng, size_t(n), sd);
      if (n > 3) x[2] = -1e30f;  // a masked-like value must give 0, not NaN
      std::vector<double> ref(x.begin(), x.end());
      double mx = -INFINITY, sum = 0;
      for (double v : ref) mx = std::max(mx, v);
      for (double& v : ref) sum += (v = std::exp(v - mx));
      ops.softmax(x.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(x[size_t(i)], ref[size_t(i)] / sum, 4e-6 * ref[size_t(i)] / sum + 1e-12)
            << "n=" << n << " sd=" << sd << " i=" << i;
      }
    }
  }
}

// exp_sum: the online-softmax step of attend (x[i] = exp(x[i] - shift),
// returning their sum), from scores far below the shift (masked-like ones
// flush to 0) up to the shift itself.
TEST_P(AttentionTest, ExpSumMatchesDouble) {
  const VectorOps& ops = vector_ops(GetParam());
  std::mt19937 rng(5);
  for (int64_t n : {1, 7, 8, 9, 31, 100, 1000}) {
    for (float sd : {0.1f, 5.0f, 40.0f}) {
      std::vector<float> x = random_vec(rng, size_t(n), sd);
      if (n > 3) x[2] = -1e30f;
      float shift = -INFINITY;
      for (float v : x) shift = std::max(shift, v);
      std::vector<double> ref(x.size());
      double sum = 0;
      for (size_t i = 0; i < x.size(); ++i) sum += (ref[i] = std::exp(double(x[i]) - shift));
      const float got = ops.exp_sum(x.data(), n, shift);
      ASSERT_NEAR(got, sum, 4e-6 * sum) << "n=" << n << " sd=" << sd;
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(x[size_t(i)], ref[size_t(i)], 4e-6 * ref[size_t(i)] + 1e-30)
            << "n=" << n << " sd=" << sd << " i=" << i;
      }
    }
  }
}

TEST_P(AttentionTest, MixRowsMatchesDouble) {
  const VectorOps& ops = vector_ops(GetParam());
  std::mt19937 rng(11);
  for (int64_t D : {8, 16, 40, 64, 80, 128}) {
    for (int64_t nq : {1, 3, 4, 5, 9}) {
      for (int64_t n : {1, 7, 33}) {
        const int64_t ldp = n + 3, vs = D * 3 + 5, ldo = D + 7;
        const std::vector<float> p = random_vec(rng, size_t(nq * ldp), 1.0f);
        const std::vector<float> v = random_vec(rng, size_t(n * vs), 1.0f);
        // mix_rows adds to what out holds: start from known values.
        std::vector<float> out(size_t(nq * ldo), NAN);
        const std::vector<float> init = random_vec(rng, out.size(), 1.0f);
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t d = 0; d < D; ++d) out[size_t(i * ldo + d)] = init[size_t(i * ldo + d)];
        ops.mix_rows(p.data(), ldp, nq, v.data(), vs, n, D, out.data(), ldo);
        for (int64_t i = 0; i < nq; ++i) {
          for (int64_t d = 0; d < ldo; ++d) {
            const float got = out[size_t(i * ldo + d)];
            if (d >= D) {
              ASSERT_TRUE(std::isnan(got)) << "wrote past D at d=" << d;
              continue;
            }
            double ref = init[size_t(i * ldo + d)], mag = std::fabs(ref);
            for (int64_t j = 0; j < n; ++j) {
              const double term = double(p[size_t(i * ldp + j)]) * v[size_t(j * vs + d)];
              ref += term;
              mag += std::fabs(term);
            }
            ASSERT_NEAR(got, ref, 1e-5 * mag + 1e-30) << "D=" << D << " nq=" << nq << " n=" << n;
          }
        }
      }
    }
  }
}

// Quantized value rows (q8_0, q4_0): the mix equals double loops over the
// values the codec's reference dequantization gives.
TEST_P(AttentionTest, MixRowsQuantizedMatchesDouble) {
  const VectorOps& ops = vector_ops(GetParam());
  std::mt19937 rng(17);
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0}) {
    const WeightCodec& codec = codec_for(t, "v");
    const auto mix = t == TensorType::Q8_0 ? ops.mix_rows_q8_0 : ops.mix_rows_q4_0;
    for (int64_t D : {32, 64, 96, 160}) {
      for (int64_t nq : {1, 3, 4, 6}) {
        for (int64_t n : {1, 16, 37}) {
          const int64_t ldp = n + 1, ldo = D + 3;
          const size_t row_bytes = size_t(D / 32) * tensor_type_info(t).block_bytes + 6;
          const std::vector<float> p = random_vec(rng, size_t(nq * ldp), 1.0f);
          std::vector<uint8_t> v(size_t(n) * row_bytes);
          std::vector<float> vd(size_t(n * D));
          for (int64_t j = 0; j < n; ++j) {
            const std::vector<float> row = random_vec(rng, size_t(D), 2.0f);
            codec.quantize_row(row.data(), v.data() + size_t(j) * row_bytes, D);
            codec.dequantize_row(v.data() + size_t(j) * row_bytes, vd.data() + j * D, D);
          }
          std::vector<float> out = random_vec(rng, size_t(nq * ldo), 1.0f);
          const std::vector<float> init = out;
          mix(p.data(), ldp, nq, v.data(), int64_t(row_bytes), n, D, out.data(), ldo);
          for (int64_t i = 0; i < nq; ++i) {
            for (int64_t d = 0; d < ldo; ++d) {
              double ref = init[size_t(i * ldo + d)], mag = std::fabs(ref);
              for (int64_t j = 0; d < D && j < n; ++j) {
                const double term = double(p[size_t(i * ldp + j)]) * vd[size_t(j * D + d)];
                ref += term;
                mag += std::fabs(term);
              }
              ASSERT_NEAR(out[size_t(i * ldo + d)], ref, 1e-5 * mag + 1e-30)
                  << tensor_type_name(t) << " D=" << D << " nq=" << nq << " n=" << n << " d=" << d;
            }
          }
        }
      }
    }
  }
}

// K/V of 2 KV heads in pages of P positions, in any cache type; the test
// attends over head 1, so the head's offset inside a row is exercised too.
struct PagedCache {
  int64_t P, D, n;
  TensorType kt, vt;
  size_t k_row, v_row;
  std::vector<std::vector<uint8_t>> pages;
  std::vector<const uint8_t*> bases;
  std::vector<float> k, v;  // what the cache holds, decoded: [n][D] of head 1

  static size_t row_bytes(TensorType t, int64_t elements) {
    const TensorTypeInfo& info = tensor_type_info(t);
    return size_t(elements / info.block_elements) * info.block_bytes;
  }
  PagedCache(std::mt19937& rng, int64_t P_, int64_t D_, int64_t n_, TensorType kt_, TensorType vt_)
      : P(P_),
        D(D_),
        n(n_),
        kt(kt_),
        vt(vt_),
        k_row(row_bytes(kt, 2 * D)),
        v_row(row_bytes(vt, 2 * D)) {
    const WeightCodec& kc = codec_for(kt, "k");
    const WeightCodec& vc = codec_for(vt, "v");
    for (int64_t p = 0; p * P < n; ++p) pages.emplace_back(size_t(P) * (k_row + v_row));
    for (auto& pg : pages) bases.push_back(pg.data());
    std::vector<float> row(size_t(2 * D));
    k.resize(size_t(n * D));
    v.resize(size_t(n * D));
    for (int64_t j = 0; j < n; ++j) {
      uint8_t* page = pages[size_t(j / P)].data();
      uint8_t* kr = page + size_t(j % P) * k_row;
      uint8_t* vr = page + size_t(P) * k_row + size_t(j % P) * v_row;
      row = random_vec(rng, row.size(), 1.0f);
      kc.quantize_row(row.data(), kr, 2 * D);
      kc.dequantize_row(kr, row.data(), 2 * D);
      std::copy(row.begin() + D, row.end(), k.begin() + j * D);
      row = random_vec(rng, row.size(), 1.0f);
      vc.quantize_row(row.data(), vr, 2 * D);
      vc.dequantize_row(vr, row.data(), 2 * D);
      std::copy(row.begin() + D, row.end(), v.begin() + j * D);
    }
  }
  PagedKv view() const {
    return {bases.data(), P, row_bytes(kt, D), size_t(P) * k_row + row_bytes(vt, D), k_row, v_row,
            kt,           vt};
  }
};

bool quantized_type(TensorType t) {
  return t == TensorType::Q8_0 || t == TensorType::Q4_0;
}

// step 1: consecutive tokens of one head; step 0: the query heads of one
// token that share a KV head (GQA decode), all seeing the same keys; step 1
// with 3 heads: each token's group of query heads (GQA prefill).
// The reference attends in double over the values the cache holds (and, for
// quantized keys, over the 8-bit queries the kernel multiplies them with), so
// what is left is float rounding: 2e-5.
TEST_P(AttentionTest, PagedBlockMatchesDouble) {
  std::mt19937 rng(13);
  const AttentionKernels kernels = attention_kernels(GetParam());
  const std::vector<std::pair<TensorType, TensorType>> types = {
      {TensorType::F32, TensorType::F32},   {TensorType::F16, TensorType::F16},
      {TensorType::Q8_0, TensorType::Q8_0}, {TensorType::Q4_0, TensorType::Q4_0},
      {TensorType::Q8_0, TensorType::Q4_0}, {TensorType::F16, TensorType::Q8_0}};
  for (const auto& [kt, vt] : types)
    for (AttentionKind kind : {AttentionKind::kFlash, AttentionKind::kMaterialized})
      for (auto [step, heads] : {std::pair<int64_t, int64_t>{1, 1}, {0, 1}, {1, 3}})
        for (int64_t D : {32, 96})
          for (int64_t P : {1, 5, 16})
            for (int64_t first_pos : {0, 30, 150})
              for (int64_t nq : {1, 3, 16}) {
                const int64_t n_keys = first_pos + ((nq - 1) / heads) * step + 1;
                const int64_t q_stride = 2 * D + 1;
                PagedCache cache(rng, P, D, n_keys, kt, vt);
                std::vector<float> q = random_vec(rng, size_t(nq * q_stride), 1.0f);
                std::vector<float> qref(q.begin(), q.end());
                if (quantized_type(kt)) {  // the reference sees the queries as the kernel does
                  std::vector<BlockQ8x> qb(size_t(D / 32));
                  for (int64_t i = 0; i < nq; ++i) {
                    quantize_activations_q8(q.data() + i * q_stride, qb.data(), D);
                    for (int64_t d = 0; d < D; ++d) {
                      qref[size_t(i * q_stride + d)] =
                          qb[size_t(d / 32)].d * qb[size_t(d / 32)].qs[d % 32];
                    }
                  }
                }
                std::vector<float> out(size_t(nq * D), NAN);
                std::vector<float> scratch(attention_scratch_floats(kind, nq, P, D));
                std::vector<float> scores(size_t(nq * n_keys));
                AttentionBlock b;
                b.q = q.data();
                b.q_stride = q_stride;
                b.nq = nq;
                b.first_pos = first_pos;
                b.step = step;
                b.heads = heads;
                b.kv = cache.view();
                b.head_dim = D;
                b.scale = 0.125f;
                b.out = out.data();
                b.out_stride = D;
                attend(kind, b, scratch.data(), scores.data(), kernels);
                for (int64_t i = 0; i < nq; ++i) {
                  const int64_t seen = first_pos + (i / heads) * step + 1;
                  std::vector<double> s(static_cast<size_t>(seen));
                  double mx = -INFINITY, sum = 0;
                  for (int64_t j = 0; j < seen; ++j) {
                    double dot = 0;
                    for (int64_t d = 0; d < D; ++d) {
                      dot += double(qref[size_t(i * q_stride + d)]) * cache.k[size_t(j * D + d)];
                    }
                    s[size_t(j)] = dot * 0.125;
                    mx = std::max(mx, s[size_t(j)]);
                  }
                  for (double& x : s) sum += (x = std::exp(x - mx));
                  for (int64_t d = 0; d < D; ++d) {
                    double ref = 0;
                    for (int64_t j = 0; j < seen; ++j)
                      ref += s[size_t(j)] / sum * cache.v[size_t(j * D + d)];
                    ASSERT_NEAR(out[size_t(i * D + d)], ref, 2e-5)
                        << attention_kind_name(kind) << " k=" << tensor_type_name(kt)
                        << " v=" << tensor_type_name(vt) << " step=" << step << " heads=" << heads
                        << " D=" << D << " P=" << P << " first_pos=" << first_pos << " nq=" << nq
                        << " i=" << i;
                  }
                }
              }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, AttentionTest,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512,
                                           Isa::kAvx512Vnni),
                         [](const ::testing::TestParamInfo<Isa>& i) {
                           return std::string(isa_name(i.param));
                         });

}  // namespace
}  // namespace memwall::kernels
