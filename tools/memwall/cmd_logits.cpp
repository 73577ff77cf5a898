// memwall logits: one causal forward pass over given token ids, writing the
// logits at every position to a .npy file (for reference comparisons).
#include <cstdio>
#include <memory>

#include "base/error.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "common.h"
#include "engine.h"
#include "format/npy_writer.h"
#include "generation_flags.h"
#include "model/forward.h"
#include "runtime/weight_store.h"

namespace memwall::tools {
namespace {

struct LogitsOptions {
  std::string model;
  std::string tokens;
  std::string out;
  int threads = 0;
  std::string precision = "exact";
  MemoryFlags memory;
};

int run_logits(const LogitsOptions& opt) {
  std::vector<int32_t> ids = parse_token_ids(opt.tokens);
  if (ids.empty()) fail("--tokens is empty");
  Engine engine({resolve_model_path(opt.model), opt.memory, opt.threads,
                 parse_precision(opt.precision), /*tokenizer=*/false});
  const int64_t T = int64_t(ids.size()), V = engine.model().spec.n_vocab;
  // One pass over every token: the batch is the whole sequence.
  engine.set_workload(T, 0);
  engine.set_extra_scratch(size_t(T * V) * sizeof(float));  // every position's logits
  engine.plan_and_load(T, T, T);
  if (engine.plan().batch < T) {
    fail("--mem holds a batch of ", engine.plan().batch, " tokens; logits needs all ", T,
         " in one pass (raise --mem)");
  }
  const plan::Plan& plan = engine.plan();
  KvPool kv(engine.model().spec, {plan.kv, plan.kv_block, (T + plan.kv_block - 1) / plan.kv_block},
            engine.ledger());
  const KvPool::SeqId seq = kv.create();
  Forward forward(engine.model(), engine.store(), engine.pool(), engine.ledger(), T, T,
                  {plan.attention, plan.kv_block});
  MemoryLedger::Reservation out =
      engine.ledger().reserve(MemCategory::kScratch, size_t(T * V) * sizeof(float));
  std::vector<float> logits(size_t(T * V));
  forward.run(ids.data(), T, kv, seq, logits.data(), true);
  write_npy_f32(opt.out, logits.data(), {T, V});
  engine.finish(0, 0);
  return 0;
}

const CommandRegistration kLogits{
    "logits", "Write the logits of every position of a token sequence to a .npy file", 90,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<LogitsOptions>();
      sub.add_option("-m,--model", opt->model, "GGUF model (default: the default model)");
      sub.add_option("--tokens", opt->tokens, "Token ids, space separated (no BOS is added)")
          ->required();
      sub.add_option("-o,--output", opt->out, "Output .npy path ([T, V] float32)")->required();
      sub.add_option("-t,--threads", opt->threads, "Threads (default: physical cores)");
      sub.add_option("--precision", opt->precision, kPrecisionHelp)->capture_default_str();
      add_memory_flags(sub, opt->memory);
      return [opt] { return run_logits(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
