// memwall chat: an interactive conversation using the model's chat template.
// Each turn re-renders the whole history; the session reuses the cached
// prefix, so only the new turn is computed.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "base/error.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "common.h"
#include "engine.h"
#include "generation_flags.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "runtime/session.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace memwall::tools {
namespace {

struct ChatOptions {
  GenerationFlags gen;
  std::string system;
  std::string once;
};

int run_chat(ChatOptions& opt) {
  const SamplerConfig sampling = sampler_config(opt.gen);
  Sampler sampler(sampling);  // validates the sampling flags before any work
  Engine engine({resolve_model_path(opt.gen.model), opt.gen.memory, resolved_threads(opt.gen),
                 parse_precision(opt.gen.precision)});
  Model& model = engine.model();
  Tokenizer& tokenizer = engine.tokenizer();
  ChatTemplate chat_template = ChatTemplate::from_gguf(model.file, tokenizer);
  if (!chat_template.note().empty())
    std::fprintf(stderr, "note: %s\n", chat_template.note().c_str());

  // Without --ctx, the model's full context, or what the budget holds (at least 512).
  const int64_t wanted = opt.gen.ctx > 0 ? opt.gen.ctx : model.spec.n_ctx_train;
  engine.set_workload(256, opt.gen.n_predict);  // a typical turn
  engine.plan_and_load(wanted, opt.gen.ctx > 0 ? wanted : std::min<int64_t>(wanted, 512),
                       opt.gen.batch);
  const int64_t ctx = engine.plan().ctx;
  SessionConfig session_config = engine.plan().session_config();
  session_config.max_ctx = ctx;
  Session session(model, engine.store(), engine.pool(), engine.ledger(), session_config);
  GenerateStats last;
  print_seed(opt.gen, sampling);
  const bool interactive = opt.once.empty();
  const bool tty = isatty(fileno(stdin));
  if (interactive && tty) {
    std::fprintf(stderr,
                 "memwall chat (%s template). /reset clears the history, /exit or Ctrl-D quits.\n",
                 std::string(chat_template.format_name()).c_str());
  }

  std::vector<ChatMessage> history;
  if (!opt.system.empty()) history.push_back({"system", opt.system});
  for (;;) {
    std::string line;
    if (interactive) {
      if (tty) std::fprintf(stderr, "> ");
      if (!std::getline(std::cin, line)) break;
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        history.resize(opt.system.empty() ? 0 : 1);
        continue;
      }
      if (line.empty()) continue;
    } else {
      line = opt.once;
    }
    history.push_back({"user", line});
    std::vector<int32_t> prompt = tokenizer.encode(chat_template.render(history, true), true);
    // Forget the oldest turns when the conversation outgrows the context.
    while (int64_t(prompt.size()) + opt.gen.n_predict > ctx && history.size() > 1) {
      size_t first = history.front().role == "system" ? 1 : 0;
      if (first + 1 >= history.size()) break;
      history.erase(history.begin() + long(first));
      prompt = tokenizer.encode(chat_template.render(history, true), true);
    }
    GenerateOptions go;
    go.n_predict = std::min(opt.gen.n_predict, ctx - int64_t(prompt.size()));
    if (go.n_predict <= 0) fail("the message is too long for the context of ", ctx, " tokens");
    go.ignore_eos = opt.gen.ignore_eos;
    StreamDecoder decoder(tokenizer);
    std::string reply;
    GenerateStats stats = generate(session, sampler, tokenizer, prompt, go, [&](int32_t id) {
      std::string text = decoder.push(id);
      reply += text;
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::string rest = decoder.flush();
    reply += rest;
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::printf("\n");
    std::fflush(stdout);
    history.push_back({"assistant", reply});
    print_stats(stats);
    last = stats;
    if (!interactive) break;
  }
  engine.finish(last.prefill_tokens_per_s(), last.decode_tokens_per_s());
  return 0;
}

const CommandRegistration kChat{
    "chat", "Talk with the model using its chat template (history kept; /reset, /exit)", 20,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<ChatOptions>();
      add_generation_flags(sub, opt->gen);
      sub.add_option("--system", opt->system, "System message (default: the template's own)");
      sub.add_option("--once", opt->once, "Send one message, print the reply and exit");
      return [opt] { return run_chat(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
