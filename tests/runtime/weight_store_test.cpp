// Every way of holding the weights computes the same logits: resident,
// mapped (all, or one unit at a time with pages dropped) and streamed
// through rings of 1-3 units. At exact precision all read the same rows;
// at fast precision resident and streamed share the packed kernels. The
// ledger's books return to zero when the store goes.
#include "runtime/weight_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "base/error.h"
#include "model/forward.h"
#include "model/synthetic.h"

namespace memwall {
namespace {

std::string make_model(TensorType type, const std::string& name) {
  SyntheticShape s;
  s.n_embd = 64, s.n_ff = 160, s.n_layer = 3, s.n_head = 4, s.n_head_kv = 2, s.n_vocab = 700;
  s.n_ctx = 64;
  auto path = std::filesystem::temp_directory_path() /
              ("memwall_store_test_" + name + "_" + std::to_string(::getpid()) + ".gguf");
  write_synthetic_model(path.string(), s, type, 5);
  return path.string();
}

// Logits of a prefill then two decode steps, through a store of `config`.
std::vector<float> run(const Model& model, const StoreConfig& config, MemoryLedger& ledger,
                       ThreadPool& pool) {
  WeightStore store(model, config, ledger, pool);
  const std::vector<int32_t> tokens = {3, 99, 511, 7, 650, 12};
  const int64_t V = model.spec.n_vocab;
  KvPool kv(model.spec, {{}, 16, 1}, ledger);
  const KvPool::SeqId seq = kv.create();
  Forward f(model, store, pool, ledger, 8, 16);
  std::vector<float> out(static_cast<size_t>(V)), all;
  f.run(tokens.data(), 4, kv, seq, out.data(), false);
  all.insert(all.end(), out.begin(), out.end());
  for (int64_t t = 4; t < 6; ++t) {
    f.run(&tokens[size_t(t)], 1, kv, seq, out.data(), false);
    all.insert(all.end(), out.begin(), out.end());
  }
  return all;
}

const std::vector<StoreConfig> kLayouts = {
    {Residency::kMapped, 0},      {Residency::kMapped, 1},      {Residency::kStreamed, 1},
    {Residency::kStreamed, 2},    {Residency::kStreamed, 3},    {Residency::kStreamed, 50},
    {Residency::kStreamed, 2, 1}, {Residency::kStreamed, 1, 4}, {Residency::kStreamed, 2, 99}};

TEST(WeightStore, EveryResidencyGivesTheSameLogits) {
  for (TensorType type : {TensorType::F32, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
    const std::string path = make_model(type, std::string(tensor_type_name(type)));
    Model model = Model::load(path);
    ThreadPool pool(2);
    for (kernels::Precision precision : {kernels::Precision::kExact, kernels::Precision::kFast}) {
      MemoryLedger ledger;
      const std::vector<float> want =
          run(model, {Residency::kResident, 0, 0, precision}, ledger, pool);
      for (StoreConfig c : kLayouts) {
        c.precision = precision;
        // Mapped weights are GGUF rows: at fast precision they run the exact
        // path, so they match the resident store only at exact precision.
        if (c.residency == Residency::kMapped && precision != kernels::Precision::kExact &&
            type != TensorType::F32)
          continue;
        const std::vector<float> got = run(model, c, ledger, pool);
        ASSERT_EQ(got, want) << tensor_type_name(type) << " " << residency_name(c.residency)
                             << " window " << c.window << " resident " << c.resident_units;
      }
      EXPECT_EQ(ledger.used(), 0u);
      EXPECT_GT(ledger.peak(MemCategory::kWeightStream), 0u);
    }
    std::filesystem::remove(path);
  }
}

TEST(WeightStore, StreamedRingHoldsItsSlots) {
  const std::string path = make_model(TensorType::Q8_0, "slots");
  Model model = Model::load(path);
  ThreadPool pool(1);
  MemoryLedger ledger;
  {
    WeightStore store(model, {Residency::kStreamed, 2, 0, kernels::Precision::kFast}, ledger, pool);
    const size_t slots = 2 * AlignedBuffer::footprint(store.units().max_unit_bytes);
    EXPECT_GE(ledger.used(MemCategory::kWeightStream), slots);
    EXPECT_EQ(ledger.used(MemCategory::kWeights), 0u);
  }
  EXPECT_EQ(ledger.used(), 0u);
  std::filesystem::remove(path);
}

TEST(WeightStore, RefusesOutOfOrderAccess) {
  const std::string path = make_model(TensorType::Q4_0, "order");
  Model model = Model::load(path);
  ThreadPool pool(1);
  MemoryLedger ledger;
  WeightStore store(model, {Residency::kStreamed, 2, 0, kernels::Precision::kFast}, ledger, pool);
  EXPECT_THROW(store.acquire_layer(1), Error);
  store.acquire_layer(0);
  EXPECT_THROW(store.acquire_layer(1), Error);  // 0 not released yet
  store.release_layer(0);
  store.acquire_layer(1);
  store.release_layer(1);
  std::filesystem::remove(path);
}

TEST(WeightStore, OutputHeadSplitsIntoPartsNoLargerThanALayer) {
  const std::string path = make_model(TensorType::Q8_0, "parts");
  Model model = Model::load(path);
  const WeightUnits u =
      weight_units(model.weights, kernels::Precision::kExact, kernels::Isa::kScalar, false);
  ASSERT_GT(u.output_parts(), 1);  // a 700 x 64 head is larger than a layer here
  int64_t rows = 0;
  for (int64_t p = 0; p < u.output_parts(); ++p) {
    const WeightUnit& part = u.units[size_t(u.n_layer + p)];
    EXPECT_EQ(part.matrices[0].first_row, rows);
    EXPECT_EQ(part.matrices[0].first_row % 16, 0);
    rows += part.matrices[0].rows;
  }
  EXPECT_EQ(rows, model.spec.n_vocab);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace memwall
