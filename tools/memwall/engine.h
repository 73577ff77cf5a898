// What every command that runs a model does around its own work, in order:
// load the model's header and tokenizer (measuring what they hold), read or
// measure the machine profile, plan under the --mem budget (failing before
// any work with the smallest budget that would do when nothing fits), load
// the weights as the plan says, and at exit print the ledger's per-category
// peaks beside the measured peak RSS (and write --report as JSON).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/memory_ledger.h"
#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "plan/planner.h"
#include "runtime/weight_store.h"
#include "tokenizer/tokenizer.h"

namespace memwall::tools {

struct MemoryFlags {
  std::string mem = "auto";
  std::string weights = "auto";  // auto | resident | mapped[:K] | streamed[:K]
  std::string report;
  std::string kv_type = "auto";    // auto | f32 | f16 | q8_0 | q4_0 | K,V
  std::string attention = "auto";  // auto | flash | materialized
  int64_t kv_block = 16;
  bool verbose = false;
};
void add_memory_flags(CLI::App& sub, MemoryFlags& flags);

// "256MiB", "1.5 GiB", "512M", "1000000" (bytes), or "auto": a safe share of
// the memory available now. Throws Error on anything else.
size_t parse_mem_size(const std::string& text);

struct EngineOptions {
  std::string model_path;
  MemoryFlags memory;
  int threads = 0;  // 0: physical cores
  kernels::Precision precision = kernels::Precision::kFast;
  bool tokenizer = true;
};

class Engine {
 public:
  // Loads the model's header and tokenizer and starts the thread pool.
  explicit Engine(const EngineOptions& options);
  ~Engine();

  // Plans for a context of up to ctx positions (at least min_ctx) and
  // prefill batches of up to batch tokens; throws Error when nothing fits.
  // Then loads the weights. Prints the chosen plan on one stderr line.
  void plan_and_load(int64_t ctx, int64_t min_ctx, int64_t batch);
  // The job the plan should be fastest for (default: 256 prompt tokens, 128
  // generated); call before planning.
  void set_workload(int64_t prompt_tokens, int64_t gen_tokens) {
    workload_prompt_ = prompt_tokens;
    workload_gen_ = gen_tokens;
  }
  // Buffers the command itself will reserve from the ledger (scratch), so
  // the plan leaves room for them; call before planning.
  void set_extra_scratch(size_t bytes) { extra_scratch_ = bytes; }
  // The plans alone (memwall plan): nothing is loaded, nothing fails.
  plan::Planning plans(int64_t ctx, int64_t min_ctx, int64_t batch, plan::PlanRequest* request);

  MemoryLedger& ledger() { return ledger_; }
  Model& model() { return model_; }
  Tokenizer& tokenizer() { return *tokenizer_; }
  ThreadPool& pool() { return *pool_; }
  WeightStore& store() { return *store_; }
  const plan::Plan& plan() const { return plan_; }
  size_t budget() const { return budget_; }

  // Per-category ledger peaks and measured peak RSS to stderr; the JSON
  // report when --report was given.
  void finish(double prefill_tokens_per_s, double decode_tokens_per_s);

 private:
  EngineOptions options_;
  size_t budget_;
  MemoryLedger ledger_;
  Model model_;
  std::optional<Tokenizer> tokenizer_;
  std::unique_ptr<ThreadPool> pool_;
  plan::Plan plan_;
  std::unique_ptr<WeightStore> store_;
  int64_t workload_prompt_ = 256, workload_gen_ = 128;
  size_t extra_scratch_ = 0;
};

}  // namespace memwall::tools
