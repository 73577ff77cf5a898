// memwall logits: one causal forward pass over given token ids, writing the
// logits at every position to a .npy file (for reference comparisons).
#include <cstdio>
#include <memory>

#include "base/error.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "common.h"
#include "format/npy_writer.h"
#include "generation_flags.h"
#include "model/forward.h"
#include "model/weight_packing.h"

namespace memwall::tools {
namespace {

struct LogitsOptions {
  std::string model;
  std::string tokens;
  std::string out;
  int threads = 0;
  std::string precision = "exact";
};

int run_logits(const LogitsOptions& opt) {
  std::vector<int32_t> ids = parse_token_ids(opt.tokens);
  if (ids.empty()) fail("--tokens is empty");
  Model model = Model::load(resolve_model_path(opt.model));
  ThreadPool pool(opt.threads > 0 ? opt.threads : ThreadPool::default_threads());
  prepare_weights(model, pool, parse_precision(opt.precision));
  KvCache kv(model.spec, int64_t(ids.size()));
  Forward forward(model, pool, parse_precision(opt.precision));
  const int64_t T = int64_t(ids.size()), V = model.spec.n_vocab;
  std::vector<float> logits(size_t(T * V));
  forward.run(ids.data(), T, 0, kv, logits.data(), true);
  write_npy_f32(opt.out, logits.data(), {T, V});
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
      return [opt] { return run_logits(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
