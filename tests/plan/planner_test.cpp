// The planner's cost model against a made-up machine profile: each weight
// placement's predicted decode speed comes from the measured rate of the
// path that placement runs (format, precision, packed or rows), and the
// choice follows from those predictions. Nothing here is timed.
#include "plan/planner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "kernels/packed_weights.h"
#include "kernels/weight_format.h"
#include "model/synthetic.h"
#include "model/weight_units.h"

namespace memwall::plan {
namespace {

constexpr const char* kPrecisionNames[] = {"exact", "fast", "int8"};

// Every path of every format at the same rates, DRAM and mapped reads alike.
MachineProfile flat_profile(double decode_gbps, double prefill_gops) {
  MachineProfile p;
  p.cpu_model = "test";
  p.isa = "test";
  p.threads = 2;
  p.read_gbps = 20;
  p.mapped_read_gbps = 20;
  p.disk_read_gbps = 1;
  p.cached_read_gbps = 10;
  p.pack_gbps = 4;
  for (TensorType t : kernels::codec_types()) {
    for (const char* precision : kPrecisionNames) {
      for (bool packed : {false, true}) {
        p.kernels[kernel_key(std::string(tensor_type_name(t)), precision, packed)] = {decode_gbps,
                                                                                      prefill_gops};
      }
    }
  }
  return p;
}

// A 2-layer model whose matrices (tied output head included) are all `type`;
// 256 columns, as the k-quant and ternary formats need.
class PlannerModel {
 public:
  explicit PlannerModel(TensorType type) {
    SyntheticShape s;
    s.n_embd = 256, s.n_ff = 512, s.n_layer = 2, s.n_head = 4, s.n_head_kv = 2, s.n_vocab = 512;
    s.n_ctx = 256;
    path_ = (std::filesystem::temp_directory_path() /
             ("memwall_planner_test_" + std::string(tensor_type_name(type)) + "_" +
              std::to_string(::getpid()) + ".gguf"))
                .string();
    write_synthetic_model(path_, s, type, 3);
    model_ = Model::load(path_);
  }
  ~PlannerModel() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  const Model& model() const { return model_; }

 private:
  std::string path_;
  Model model_;
};

PlanRequest roomy_request() {
  PlanRequest r;
  r.budget = size_t(64) << 30;
  r.ctx = r.min_ctx = 128;
  r.batch = 16;
  r.workload_prompt = 64;
  r.workload_gen = 32;
  r.precision = kernels::Precision::kFast;
  r.threads = 2;
  r.kv = KvTypes{KvType::kF16, KvType::kF16};
  r.attention = kernels::AttentionKind::kFlash;
  r.cached_fraction = 1;
  return r;
}

// The plan at the request's ctx and batch with weights `residency`, whole.
const Plan& find_plan(const Planning& p, Residency residency, const PlanRequest& r) {
  for (const Plan& x : p.plans) {
    if (x.residency == residency && x.window == 0 && x.ctx == r.ctx && x.batch == r.batch) return x;
  }
  ADD_FAILURE() << "no " << residency_name(residency) << " plan";
  return p.plans.at(0);
}

// Bytes of the model's matrices as stored in the file: what decode streams.
double matrix_file_bytes(const Model& model, kernels::Precision precision) {
  const WeightUnits units = weight_units(model.weights, precision, kernels::active_isa(), false);
  double bytes = 0;
  for (const WeightUnit& u : units.units) {
    for (const UnitMatrix& m : u.matrices) bytes += double(m.file_bytes());
  }
  return bytes;
}

// For every format without a packed layout (its matrices run the row
// kernels wherever they live): resident and mapped weights are predicted
// from the format's own measured row rate, at the same speed when mapped
// pages read as fast as anonymous memory, and the time a decoded token
// spends in the matmuls is exactly bytes / that rate.
TEST(Planner, NonPackableFormatsPredictFromTheirOwnRowRate) {
  for (TensorType type : kernels::codec_types()) {
    if (kernels::packable(type)) continue;
    const std::string name(tensor_type_name(type));
    SCOPED_TRACE(name);
    const PlannerModel m(type);
    const PlanRequest req = roomy_request();
    MachineProfile prof = flat_profile(10, 50);
    const Planning base = make_plans(m.model(), prof, req);
    const Plan& resident = find_plan(base, Residency::kResident, req);
    const Plan& mapped = find_plan(base, Residency::kMapped, req);
    EXPECT_DOUBLE_EQ(resident.decode_tps, mapped.decode_tps);
    EXPECT_DOUBLE_EQ(resident.prefill_tps, mapped.prefill_tps);
    ASSERT_GE(base.chosen, 0);
    EXPECT_DOUBLE_EQ(base.plans[size_t(base.chosen)].decode_tps, resident.decode_tps);

    // Other formats' rates, and this format's packed ones, change nothing.
    MachineProfile others = prof;
    for (auto& [key, rate] : others.kernels) {
      if (key.rfind(name + "/", 0) != 0 || key.ends_with("/packed")) rate = {0.1, 0.1};
    }
    const Planning same = make_plans(m.model(), others, req);
    EXPECT_DOUBLE_EQ(find_plan(same, Residency::kResident, req).decode_tps, resident.decode_tps);
    EXPECT_DOUBLE_EQ(find_plan(same, Residency::kMapped, req).decode_tps, mapped.decode_tps);

    // Halving this format's row rate (at the precision that runs) adds
    // bytes / rate to every token, resident or mapped.
    const std::string key =
        kernel_key(name, std::string(precision_name(resident.precision)), false);
    MachineProfile slow = prof;
    slow.kernels[key].decode_gbps = 5;
    const Planning halved = make_plans(m.model(), slow, req);
    const double added = matrix_file_bytes(m.model(), resident.precision) / 10e9;
    for (Residency r : {Residency::kResident, Residency::kMapped}) {
      const double before = 1 / find_plan(base, r, req).decode_tps;
      const double after = 1 / find_plan(halved, r, req).decode_tps;
      EXPECT_NEAR(after - before, added, added * 1e-9) << residency_name(r);
    }
  }
}

// Mapped weights read page-cache pages through 4 KiB mappings: when the
// profile measured those slower than anonymous memory, mapped plans pay the
// difference per byte and a budget that holds both picks resident weights.
TEST(Planner, MappedReadsSlowerThanResidentChooseResident) {
  const PlannerModel m(TensorType::NF4);
  const PlanRequest req = roomy_request();
  MachineProfile prof = flat_profile(10, 50);
  prof.mapped_read_gbps = 10;  // read_gbps 20
  const Planning p = make_plans(m.model(), prof, req);
  const Plan& resident = find_plan(p, Residency::kResident, req);
  const Plan& mapped = find_plan(p, Residency::kMapped, req);
  const double bytes = matrix_file_bytes(m.model(), resident.precision);
  EXPECT_NEAR(1 / mapped.decode_tps - 1 / resident.decode_tps, bytes / 10e9 - bytes / 20e9,
              bytes * 1e-18);
  ASSERT_GE(p.chosen, 0);
  EXPECT_EQ(p.plans[size_t(p.chosen)].residency, Residency::kResident);

  // Equal read speeds: the same decode time, and the smaller plan is taken.
  prof.mapped_read_gbps = prof.read_gbps;
  const Planning q = make_plans(m.model(), prof, req);
  EXPECT_DOUBLE_EQ(find_plan(q, Residency::kResident, req).decode_tps,
                   find_plan(q, Residency::kMapped, req).decode_tps);
  ASSERT_GE(q.chosen, 0);
  const Plan& chosen = q.plans[size_t(q.chosen)];
  for (const Plan& x : q.plans) {
    if (x.fits && x.ctx == chosen.ctx && x.predicted_seconds == chosen.predicted_seconds) {
      EXPECT_GE(x.predicted_peak, chosen.predicted_peak);
    }
  }
}

// The plan with weights `residency` and ring `window` at the request's ctx and batch.
const Plan& find_streamed(const Planning& p, int64_t window, const PlanRequest& r) {
  for (const Plan& x : p.plans) {
    if (x.residency == Residency::kStreamed && x.window == window && x.resident_units == 0 &&
        x.ctx == r.ctx && x.batch == r.batch)
      return x;
  }
  ADD_FAILURE() << "no streamed plan with a ring of " << window;
  return p.plans.at(0);
}

// A slow (compute-bound) format whose loading hides behind compute: the
// loader's copying still costs CPU time when the compute threads take every
// CPU, so a budget that holds the weights keeps them resident rather than
// streaming them to save bytes at no predicted cost. With a CPU to spare the
// ring of 2 costs nothing over resident.
TEST(Planner, StreamingAComputeBoundFormatChargesTheLoadersCpuTime) {
  const PlannerModel m(TensorType::NF4);
  PlanRequest req = roomy_request();
  req.threads = 2;
  req.cpus = 2;
  const MachineProfile prof = flat_profile(0.5, 50);  // loads at 10 GB/s, packs at 4
  const Planning p = make_plans(m.model(), prof, req);
  ASSERT_GE(p.chosen, 0);
  EXPECT_EQ(p.plans[size_t(p.chosen)].residency, Residency::kResident);
  EXPECT_LT(find_streamed(p, 2, req).decode_tps,
            find_plan(p, Residency::kResident, req).decode_tps);

  req.cpus = 3;
  const Planning spare = make_plans(m.model(), prof, req);
  EXPECT_DOUBLE_EQ(find_streamed(spare, 2, req).decode_tps,
                   find_plan(spare, Residency::kResident, req).decode_tps);
}

// A packed format's resident plan runs the packed kernels and its mapped
// plan the row ones (GGUF rows in place): each is predicted from its own path.
TEST(Planner, PackedFormatsPredictResidentFromPackedAndMappedFromRows) {
  const PlannerModel m(TensorType::Q4_0);
  const PlanRequest req = roomy_request();
  MachineProfile prof = flat_profile(10, 50);
  const Planning p0 = make_plans(m.model(), prof, req);
  const kernels::Precision precision = p0.plans.at(0).precision;
  const bool packs = uses_packed(m.model().weights.layers[0].wq, precision, kernels::active_isa());
  for (const char* precision_key : kPrecisionNames) {
    prof.kernels[kernel_key("q4_0", precision_key, false)] = {1, 5};
  }
  const Planning p = make_plans(m.model(), prof, req);
  const Plan& resident = find_plan(p, Residency::kResident, req);
  const Plan& mapped = find_plan(p, Residency::kMapped, req);
  if (packs) {
    EXPECT_GT(resident.decode_tps, 5 * mapped.decode_tps);
    EXPECT_EQ(p.plans[size_t(p.chosen)].residency, Residency::kResident);
  } else {
    // No packed kernel on this machine: both run the rows.
    EXPECT_DOUBLE_EQ(resident.decode_tps, mapped.decode_tps);
  }
}

}  // namespace
}  // namespace memwall::plan
