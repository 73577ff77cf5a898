// Forward-pass consistency on synthetic models: prefilling a sequence at once,
// in chunks, or token by token gives the same logits; sessions reuse prefixes
// exactly; bad inputs are refused. (The independent numpy reference is in
// tests/reference/.)
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>

#include <filesystem>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/forward.h"
#include "model/synthetic.h"
#include "runtime/session.h"
#include "runtime/weight_store.h"

namespace memwall {
namespace {

std::string make_model(TensorType type, const SyntheticShape& shape, const std::string& name) {
  auto path = std::filesystem::temp_directory_path() /
              ("memwall_forward_test_" + name + "_" + std::to_string(::getpid()) + ".gguf");
  write_synthetic_model(path.string(), shape, type, 11);
  return path.string();
}

SyntheticShape small_shape() {
  SyntheticShape s;
  s.n_embd = 96, s.n_ff = 160, s.n_layer = 2, s.n_head = 3, s.n_head_kv = 1, s.n_vocab = 300;
  s.n_ctx = 64;
  return s;
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

class ForwardPrecision : public ::testing::TestWithParam<kernels::Precision> {};

TEST_P(ForwardPrecision, PrefillChunksAndTokenByTokenAgree) {
  const kernels::Precision precision = GetParam();
  for (TensorType type : {TensorType::F32, TensorType::Q4_1, TensorType::Q8_0}) {
    std::string path = make_model(type, small_shape(), std::string(tensor_type_name(type)));
    Model model = Model::load(path);
    ThreadPool pool(2);
    MemoryLedger ledger;
    WeightStore store(model, {Residency::kResident, 0, 0, precision}, ledger, pool);
    const std::vector<int32_t> tokens = {5, 77, 256, 1, 299, 42, 42, 8, 120, 3, 17};
    const int64_t T = int64_t(tokens.size()), V = model.spec.n_vocab;

    std::vector<float> all(size_t(T * V));
    {
      KvPool kv(model.spec, {{}, 16, 1}, ledger);
      Forward f(model, store, pool, ledger, T, T);
      f.run(tokens.data(), T, kv, kv.create(), all.data(), true);
    }
    // Token by token: each step's logits equal row t of the full pass.
    KvPool kv(model.spec, {{}, 16, 1}, ledger);
    const KvPool::SeqId seq = kv.create();
    Forward f(model, store, pool, ledger, T, T);
    std::vector<float> step(static_cast<size_t>(V));
    const float tol = 1e-4f * max_abs(all);
    for (int64_t t = 0; t < T; ++t) {
      f.run(&tokens[size_t(t)], 1, kv, seq, step.data(), false);
      for (int64_t v = 0; v < V; ++v)
        ASSERT_NEAR(step[size_t(v)], all[size_t(t * V + v)], tol) << t;
    }
    // Session in chunks of 4 ends with the last row.
    Session session(model, store, pool, ledger, {T, 4, {}, {}});
    session.feed(tokens);
    for (int64_t v = 0; v < V; ++v) {
      ASSERT_NEAR(session.logits()[v], all[size_t((T - 1) * V + v)], tol);
    }
    // Truncate and refeed reproduces the same state.
    session.truncate(5);
    session.feed(std::vector<int32_t>(tokens.begin() + 5, tokens.end()));
    for (int64_t v = 0; v < V; ++v) {
      ASSERT_NEAR(session.logits()[v], all[size_t((T - 1) * V + v)], tol);
    }
    std::filesystem::remove(path);
  }
}

INSTANTIATE_TEST_SUITE_P(Both, ForwardPrecision,
                         ::testing::Values(kernels::Precision::kExact, kernels::Precision::kFast),
                         [](const auto& info) {
                           return info.param == kernels::Precision::kExact ? "Exact" : "Fast";
                         });

TEST(Forward, RefusesBadTokensAndFullContext) {
  std::string path = make_model(TensorType::F32, small_shape(), "bad");
  Model model = Model::load(path);
  ThreadPool pool(1);
  MemoryLedger ledger;
  WeightStore store(model, {}, ledger, pool);
  Session session(model, store, pool, ledger, {4, 4, {}, {}});
  EXPECT_THROW(session.feed({300}), Error);
  EXPECT_THROW(session.feed({-1}), Error);
  EXPECT_THROW(session.feed({1, 2, 3, 4, 5}), Error);
  session.feed({1, 2, 3, 4});
  EXPECT_THROW(session.feed({5}), Error);
  std::filesystem::remove(path);
}

TEST(Forward, SpecIsReadFromMetadata) {
  SyntheticShape s = small_shape();
  std::string path = make_model(TensorType::F32, s, "spec");
  gguf::File file = gguf::File::open(path);
  ModelSpec spec = read_model_spec(file);
  EXPECT_EQ(spec.n_head, 3);
  EXPECT_EQ(spec.n_head_kv, 1);
  EXPECT_EQ(spec.head_dim, 32);
  EXPECT_TRUE(spec.tied_output);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace memwall
