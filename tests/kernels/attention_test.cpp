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
#include "kernels/attention.h"
#include "kernels/isa.h"
#include "kernels/vector_ops.h"

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

TEST_P(AttentionTest, MixRowsMatchesDouble) {
  const VectorOps& ops = vector_ops(GetParam());
  std::mt19937 rng(11);
  for (int64_t D : {8, 16, 40, 64, 80, 128}) {
    for (int64_t nq : {1, 3, 4, 5, 9}) {
      for (int64_t n : {1, 7, 33}) {
        const int64_t ldp = n + 3, vs = D * 3 + 5, ldo = D + 7;
        const std::vector<float> p = random_vec(rng, size_t(nq * ldp), 1.0f);
        const std::vector<float> v = random_vec(rng, size_t(n * vs), 1.0f);
        std::vector<float> out(size_t(nq * ldo), NAN);
        ops.mix_rows(p.data(), ldp, nq, v.data(), vs, n, D, out.data(), ldo);
        for (int64_t i = 0; i < nq; ++i) {
          for (int64_t d = 0; d < ldo; ++d) {
            const float got = out[size_t(i * ldo + d)];
            if (d >= D) {
              ASSERT_TRUE(std::isnan(got)) << "wrote past D at d=" << d;
              continue;
            }
            double ref = 0, mag = 0;
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

// step 1: consecutive tokens of one head (prefill); step 0: the query heads
// of one token that share a KV head (GQA decode), all seeing the same keys.
// With f16 K/V (kv_f16) the reference uses the same f16-rounded values.
TEST_P(AttentionTest, CausalBlockMatchesDouble) {
  std::mt19937 rng(13);
  for (bool f16 : {false, true})
    for (int64_t step : {1, 0}) {
      for (int64_t D : {16, 64, 80}) {
        for (int64_t first_pos : {0, 1, 30}) {
          for (int64_t nq : {1, 3, 5, 16}) {
            const int64_t n_keys = first_pos + (nq - 1) * step + 1;
            const int64_t kv_stride = 3 * D + 4, q_stride = 2 * D + 1;
            const std::vector<float> q = random_vec(rng, size_t(nq * q_stride), 1.0f);
            std::vector<float> k = random_vec(rng, size_t(n_keys * kv_stride), 1.0f);
            std::vector<float> v = random_vec(rng, size_t(n_keys * kv_stride), 1.0f);
            std::vector<uint16_t> k16(k.size()), v16(v.size());
            for (size_t e = 0; e < k.size(); ++e) {
              k16[e] = fp32_to_fp16(k[e]), v16[e] = fp32_to_fp16(v[e]);
              if (f16) k[e] = fp16_to_fp32(k16[e]), v[e] = fp16_to_fp32(v16[e]);
            }
            std::vector<float> out(size_t(nq * D), NAN), scratch(size_t(nq * n_keys));
            AttentionBlock b;
            b.q = q.data();
            b.q_stride = q_stride;
            b.nq = nq;
            b.first_pos = first_pos;
            b.step = step;
            b.k = f16 ? static_cast<const void*>(k16.data()) : k.data();
            b.v = f16 ? static_cast<const void*>(v16.data()) : v.data();
            b.kv_f16 = f16;
            b.kv_stride = kv_stride;
            b.head_dim = D;
            b.scale = 0.125f;
            b.out = out.data();
            b.out_stride = D;
            attend_block(b, scratch.data(), attention_kernels(GetParam()));
            for (int64_t i = 0; i < nq; ++i) {
              const int64_t seen = first_pos + i * step + 1;
              std::vector<double> s(static_cast<size_t>(seen));
              double mx = -INFINITY, sum = 0;
              for (int64_t j = 0; j < seen; ++j) {
                double dot = 0;
                for (int64_t d = 0; d < D; ++d) {
                  dot += double(q[size_t(i * q_stride + d)]) * k[size_t(j * kv_stride + d)];
                }
                s[size_t(j)] = dot * 0.125;
                mx = std::max(mx, s[size_t(j)]);
              }
              for (double& x : s) sum += (x = std::exp(x - mx));
              for (int64_t d = 0; d < D; ++d) {
                double ref = 0;
                for (int64_t j = 0; j < seen; ++j)
                  ref += s[size_t(j)] / sum * v[size_t(j * kv_stride + d)];
                ASSERT_NEAR(out[size_t(i * D + d)], ref, 1e-5)
                    << "f16=" << f16 << " step=" << step << " D=" << D << " first_pos=" << first_pos
                    << " nq=" << nq << " i=" << i;
              }
            }
          }
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
