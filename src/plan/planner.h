// The planner: from a model, this machine's profile and a memory budget, the
// plans memwall could run (weight residency and window, batch, context cap;
// KV dtype and attention kernel as they gain alternatives), each with its
// predicted peak bytes per ledger category and its predicted tokens/s; the
// Pareto frontier of (bytes, decode tokens/s); and the one to run: the
// largest context, then the least predicted time for the job's workload
// (prompt tokens to prefill, tokens to generate), then the fewest bytes,
// that fits the budget with headroom.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/memory_ledger.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "model/kv_pool.h"
#include "model/model.h"
#include "plan/machine_profile.h"
#include "runtime/session.h"
#include "runtime/weight_store.h"

namespace memwall::plan {

struct Plan {
  Residency residency = Residency::kResident;
  int64_t window = 0;          // streamed: ring slots; mapped: units kept (0: all)
  int64_t resident_units = 0;  // streamed: leading units held resident
  int64_t units = 0;           // units in the model (layers + output head parts)
  KvTypes kv;                  // K and V element types
  int64_t kv_block = 16;       // tokens per KV pool block
  size_t kv_bytes_per_token = 0;
  kernels::AttentionKind attention = kernels::AttentionKind::kFlash;
  int64_t ctx = 0;
  int64_t batch = 0;                                         // prefill tokens per forward pass
  kernels::Precision precision = kernels::Precision::kFast;  // the one that runs
  int threads = 1;

  std::array<size_t, size_t(MemCategory::kCount)> bytes{};  // predicted peak per category
  size_t predicted_peak = 0;
  double decode_tps = 0, prefill_tps = 0;
  double predicted_seconds = 0;  // the request's workload: prefill, then generation
  bool fits = false, pareto = false;

  StoreConfig store_config() const;
  SessionConfig session_config() const;
  std::string weights_text() const;  // "streamed, ring of 2 units (1 read ahead)"
  std::string summary() const;       // one line: weights, batch, ctx, KV, bytes, tok/s
  nlohmann::json to_json() const;
};

struct PlanRequest {
  size_t budget = 0;              // bytes, > 0
  int64_t ctx = 0;                // the context wanted
  int64_t min_ctx = 0;            // the least context that does the job (<= ctx)
  int64_t batch = 512;            // the largest prefill batch wanted
  int64_t workload_prompt = 256;  // tokens the job prefills (what the choice optimizes)
  int64_t workload_gen = 128;     // tokens it generates
  size_t extra_scratch = 0;       // the job's own buffers (e.g. logits of every position)
  kernels::Precision precision = kernels::Precision::kFast;
  int threads = 1;
  int cpus = 0;  // CPUs the threads and the weight loader share (0: this machine's online CPUs)
  // Weights as the user forced them (--weights), else any.
  bool force_residency = false;
  Residency residency = Residency::kResident;
  int64_t window = -1;  // with force_residency: -1 lets the planner choose
  // KV types and attention kernel as the user forced them (--kv-type, --attention).
  std::optional<KvTypes> kv;
  std::optional<kernels::AttentionKind> attention;
  int64_t kv_block = 16;
  size_t process_bytes = 0;    // measured resident bytes before the weights
  double cached_fraction = 0;  // of the weights' file bytes in the page cache
};

struct Planning {
  std::vector<Plan> plans;  // by predicted peak, ascending
  int chosen = -1;          // index into plans, -1: nothing fits
  int smallest = -1;        // the plan with the least predicted peak
};

// Bytes kept free between a plan's prediction and the budget, for what the
// prediction cannot see (allocator slack, thread stacks, page tables).
size_t headroom_bytes(size_t predicted);

Planning make_plans(const Model& model, const MachineProfile& profile, const PlanRequest& req);

// "KV bytes per token: f32 ..., f16 ..., q8_0 ..., q4_0 ..." for this model.
std::string kv_bytes_line(const ModelSpec& spec, int64_t ctx);

// "error"-ready text: the budget is too small; names the smallest plan.
std::string too_small_message(const Model& model, const Planning& p, const PlanRequest& req);

// A table of the plans, frontier and choice marked: every plan, or only the
// frontier, the chosen one and the smallest.
std::string plan_table(const Planning& p, bool all);

std::string_view precision_name(kernels::Precision p);

}  // namespace memwall::plan
