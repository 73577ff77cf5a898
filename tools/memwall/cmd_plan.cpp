// memwall plan: every way memwall could run a model under a memory budget,
// with predicted peak bytes per category and tokens/s, the Pareto frontier
// of (bytes, decode speed) and the plan `run` would choose. Loads nothing
// but the model's header and tokenizer.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/process_stats.h"
#include "commands.h"
#include "common.h"
#include "engine.h"
#include "generation_flags.h"

namespace memwall::tools {
namespace {

struct PlanOptions {
  std::string model;
  MemoryFlags memory;
  int64_t ctx = 0;
  int64_t batch = 512;
  int threads = 0;
  std::string precision = GenerationFlags{}.precision;
  bool json = false;
};

nlohmann::json kv_bytes_json(const ModelSpec& spec) {
  nlohmann::json j = nlohmann::json::object();
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0, KvType::kQ4_0}) {
    if (kernels::kv_type_supported(kv_tensor_type(t), spec.head_dim)) {
      j[std::string(kv_type_name(t))] = KvPool::bytes_per_token(spec, {t, t});
    }
  }
  return j;
}

int run_plan(const PlanOptions& opt) {
  if (opt.ctx < 0) fail("--ctx must be >= 0 (0: the model's trained context)");
  if (opt.batch < 1) fail("--batch must be >= 1");
  Engine engine(
      {resolve_model_path(opt.model), opt.memory, opt.threads, parse_precision(opt.precision)});
  const int64_t ctx = opt.ctx > 0 ? opt.ctx : engine.model().spec.n_ctx_train;
  plan::PlanRequest req;
  const plan::Planning p = engine.plans(ctx, ctx, opt.batch, &req);
  if (p.chosen < 0) fail(plan::too_small_message(engine.model(), p, req));
  if (opt.json) {
    nlohmann::json plans = nlohmann::json::array();
    for (const plan::Plan& x : p.plans) plans.push_back(x.to_json());
    const plan::Plan& smallest = p.plans[size_t(p.smallest)];
    nlohmann::json j = {{"model", engine.model().file.path()},
                        {"budget_bytes", req.budget},
                        {"ctx", ctx},
                        {"process_bytes", req.process_bytes},
                        {"weights_cached_fraction", req.cached_fraction},
                        {"minimum_budget_bytes",
                         smallest.predicted_peak + plan::headroom_bytes(smallest.predicted_peak)},
                        {"chosen", p.chosen},
                        {"plan", p.plans[size_t(p.chosen)].to_json()},
                        {"kv_bytes_per_token", kv_bytes_json(engine.model().spec)},
                        {"plans", plans}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model: %s | budget %s | ctx %lld | process before weights %s\n\n",
              engine.model().file.path().c_str(), format_bytes(double(req.budget)).c_str(),
              (long long)ctx, format_bytes(double(req.process_bytes)).c_str());
  std::printf("%s\n", plan::plan_table(p, opt.memory.verbose).c_str());
  std::printf("%s\n", plan::kv_bytes_line(engine.model().spec, ctx).c_str());
  std::printf("chosen: %s\n", p.plans[size_t(p.chosen)].summary().c_str());
  return 0;
}

const CommandRegistration kPlan{
    "plan", "Show the plans that fit a memory budget, their predicted memory and speed", 45,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<PlanOptions>();
      sub.add_option("-m,--model", opt->model, "GGUF model (default: the default model)");
      sub.add_option("-c,--ctx", opt->ctx, "Context in tokens (0: the model's trained context)")
          ->capture_default_str();
      sub.add_option("-b,--batch", opt->batch, "Largest prefill batch to consider")
          ->capture_default_str();
      sub.add_option("-t,--threads", opt->threads, "Threads (default: physical cores)");
      sub.add_option("--precision", opt->precision, kPrecisionHelp)->capture_default_str();
      sub.add_flag("--json", opt->json, "Print one JSON object instead of the table");
      add_memory_flags(sub, opt->memory);
      return [opt] { return run_plan(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
