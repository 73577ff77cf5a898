// memwall run: generate a continuation of a prompt. Only the generated text
// goes to stdout; statistics go to stderr.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/error.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "common.h"
#include "engine.h"
#include "generation_flags.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "runtime/session.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace memwall::tools {
namespace {

struct RunOptions {
  GenerationFlags gen;
  std::string prompt;
  std::string prompt_file;
  std::string tokens;
  bool output_ids = false;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read prompt file '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int run_run(const RunOptions& opt) {
  if (opt.gen.n_predict < 0) fail("-n must be >= 0");
  const SamplerConfig sampling = sampler_config(opt.gen);
  Sampler sampler(sampling);  // validates the sampling flags before any work
  Engine engine({resolve_model_path(opt.gen.model), opt.gen.memory, resolved_threads(opt.gen),
                 parse_precision(opt.gen.precision)});
  Model& model = engine.model();
  Tokenizer& tokenizer = engine.tokenizer();

  std::vector<int32_t> prompt;
  if (!opt.tokens.empty()) {
    prompt = parse_token_ids(opt.tokens);
    for (int32_t id : prompt) {
      if (id >= model.spec.n_vocab) {
        fail("token id ", id, " is outside the vocabulary of ", model.spec.n_vocab, " tokens");
      }
    }
  } else {
    std::string text = opt.prompt_file.empty() ? opt.prompt : read_file(opt.prompt_file);
    prompt = tokenizer.encode(text, /*add_special=*/true);
  }
  if (prompt.empty()) fail("the prompt is empty and the model adds no BOS token: pass -p TEXT");

  const int64_t needed = int64_t(prompt.size()) + opt.gen.n_predict;
  int64_t ctx = opt.gen.ctx > 0 ? opt.gen.ctx : std::min(needed, model.spec.n_ctx_train);
  if (int64_t(prompt.size()) > ctx) {
    fail("the prompt has ", prompt.size(), " tokens but the context holds ", ctx,
         " (raise --ctx, up to the model's ", model.spec.n_ctx_train, ")");
  }
  engine.set_workload(int64_t(prompt.size()), opt.gen.n_predict);
  engine.plan_and_load(ctx, std::min(ctx, needed), opt.gen.batch);
  ctx = engine.plan().ctx;
  SessionConfig session_config = engine.plan().session_config();
  session_config.max_ctx = ctx;
  Session session(model, engine.store(), engine.pool(), engine.ledger(), session_config);
  GenerateOptions go;
  go.n_predict = std::min(opt.gen.n_predict, ctx - int64_t(prompt.size()));
  go.ignore_eos = opt.gen.ignore_eos;
  if (go.n_predict < opt.gen.n_predict) {
    std::fprintf(stderr, "note: the context (%lld tokens) limits generation to %lld tokens\n",
                 (long long)ctx, (long long)go.n_predict);
  }

  print_seed(opt.gen, sampling);
  StreamDecoder decoder(tokenizer);
  bool first_id = true;
  GenerateStats stats = generate(session, sampler, tokenizer, prompt, go, [&](int32_t id) {
    if (opt.output_ids) {
      std::printf(first_id ? "%d" : " %d", id);
      first_id = false;
    } else {
      std::string text = decoder.push(id);
      std::fwrite(text.data(), 1, text.size(), stdout);
    }
    std::fflush(stdout);
    return true;
  });
  if (opt.output_ids) {
    std::printf("\n");
  } else {
    std::string rest = decoder.flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    if (isatty(fileno(stdout))) std::printf("\n");  // keep the shell prompt on its own line
  }
  std::fflush(stdout);
  print_stats(stats);
  engine.finish(stats.prefill_tokens_per_s(), stats.decode_tokens_per_s());
  return 0;
}

const CommandRegistration kRun{
    "run", "Generate a continuation of a prompt (text to stdout, statistics to stderr)", 10,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<RunOptions>();
      add_generation_flags(sub, opt->gen);
      auto* p = sub.add_option("-p,--prompt", opt->prompt, "Prompt text");
      auto* f = sub.add_option("-f,--file", opt->prompt_file, "Read the prompt from a file");
      auto* t = sub.add_option("--tokens", opt->tokens,
                               "Prompt as token ids (space separated, used as given)");
      p->excludes(f)->excludes(t);
      f->excludes(t);
      sub.add_flag("--output-ids", opt->output_ids, "Print generated token ids instead of text");
      return [opt] { return run_run(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
