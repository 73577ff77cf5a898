// memwall synth: writes a llama-layout GGUF of any shape with seeded random
// weights, for tests and benchmarks.
#include <cstdio>
#include <memory>

#include "base/error.h"
#include "commands.h"
#include "kernels/weight_format.h"
#include "model/synthetic.h"

namespace memwall::tools {
namespace {

struct SynthOptions {
  std::string out;
  std::string type = "q4_0";
  std::string shape;
  SyntheticShape s;
  uint64_t seed = 1;
  bool untied = false;
  std::string rope_style = "normal";
};

int run_synth(SynthOptions& opt, CLI::App& sub) {
  SyntheticShape s = opt.shape.empty() ? opt.s : synthetic_shape(opt.shape);
  // Explicit flags override a named shape's values.
  auto given = [&](const char* name) { return sub.count(name) > 0; };
  if (!opt.shape.empty()) {
    if (given("--n-embd")) s.n_embd = opt.s.n_embd;
    if (given("--n-ff")) s.n_ff = opt.s.n_ff;
    if (given("--n-layer")) s.n_layer = opt.s.n_layer;
    if (given("--n-head")) s.n_head = opt.s.n_head;
    if (given("--n-head-kv")) s.n_head_kv = opt.s.n_head_kv;
    if (given("--vocab")) s.n_vocab = opt.s.n_vocab;
    if (given("--ctx")) s.n_ctx = opt.s.n_ctx;
    if (given("--rope-base")) s.rope_base = opt.s.rope_base;
  }
  if (opt.untied) s.tied_output = false;
  if (opt.rope_style == "neox") {
    s.rope_style = kernels::RopeStyle::kNeox;
  } else if (opt.rope_style != "normal") {
    fail("--rope-style must be normal or neox, not '", opt.rope_style, "'");
  }
  auto type = tensor_type_from_name(opt.type);
  if (!type) fail("unknown weight type '", opt.type, "'");
  write_synthetic_model(opt.out, s, *type, opt.seed);
  std::fprintf(stderr, "wrote %s: %s, C=%lld F=%lld L=%lld H=%lld Hkv=%lld V=%lld ctx=%lld%s\n",
               opt.out.c_str(), opt.type.c_str(), (long long)s.n_embd, (long long)s.n_ff,
               (long long)s.n_layer, (long long)s.n_head, (long long)s.n_head_kv,
               (long long)s.n_vocab, (long long)s.n_ctx, s.tied_output ? ", tied output" : "");
  return 0;
}

const CommandRegistration kSynth{
    "synth", "Write a llama GGUF of any shape with seeded random weights (tests, benchmarks)", 80,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<SynthOptions>();
      sub.add_option("-o,--output", opt->out, "Output GGUF path")->required();
      // k-quants and ternary formats (super-blocks of 256) need C and F
      // multiples of 256: e.g. --shape llama-3.2-1b, or --n-embd 256 --n-ff 768.
      static const std::string kTypeHelp = "Weight format: " + kernels::supported_formats() +
                                           " (q*_k, tq*: C and F multiples of 256)";
      sub.add_option("--type", opt->type, kTypeHelp)->capture_default_str();
      sub.add_option("--shape", opt->shape, "Named shape: smollm2-135m, llama-3.2-1b");
      sub.add_option("--n-embd", opt->s.n_embd, "Model width C")->capture_default_str();
      sub.add_option("--n-ff", opt->s.n_ff, "FFN width F")->capture_default_str();
      sub.add_option("--n-layer", opt->s.n_layer, "Layers L")->capture_default_str();
      sub.add_option("--n-head", opt->s.n_head, "Attention heads H")->capture_default_str();
      sub.add_option("--n-head-kv", opt->s.n_head_kv, "KV heads Hkv")->capture_default_str();
      sub.add_option("--vocab", opt->s.n_vocab, "Vocabulary size V (>= 257)")
          ->capture_default_str();
      sub.add_option("--ctx", opt->s.n_ctx, "Training context length")->capture_default_str();
      sub.add_option("--rope-base", opt->s.rope_base, "RoPE frequency base")->capture_default_str();
      sub.add_option("--rope-style", opt->rope_style, "normal or neox")->capture_default_str();
      sub.add_flag("--untied", opt->untied, "Write a separate output.weight");
      sub.add_option("--seed", opt->seed, "Random seed")->capture_default_str();
      CLI::App* self = &sub;
      return [opt, self] { return run_synth(*opt, *self); };
    }};

}  // namespace
}  // namespace memwall::tools
