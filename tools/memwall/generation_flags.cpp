#include "generation_flags.h"

#include <cstdio>
#include <random>

#include "base/error.h"
#include "base/process_stats.h"
#include "base/thread_pool.h"

namespace memwall::tools {

void add_generation_flags(CLI::App& sub, GenerationFlags& f) {
  sub.add_option("-m,--model", f.model,
                 "GGUF model (default: models/SmolLM2-135M-Instruct.Q4_1.gguf)");
  sub.add_option("-n,--n-predict", f.n_predict, "Tokens to generate at most")
      ->capture_default_str();
  sub.add_option("-t,--threads", f.threads, "Threads (default: physical cores)");
  sub.add_option("-c,--ctx", f.ctx,
                 "Context limit in tokens (default: what the job needs, up to the model's)");
  sub.add_option("-b,--batch", f.batch, "Prompt tokens computed per forward pass")
      ->capture_default_str();
  sub.add_option("--temp", f.sampling.temperature, "Temperature; 0 = greedy")
      ->capture_default_str();
  sub.add_option("--top-k", f.sampling.top_k, "Keep the k most likely tokens; 0 = off")
      ->capture_default_str();
  sub.add_option("--top-p", f.sampling.top_p, "Nucleus sampling mass; 1 = off")
      ->capture_default_str();
  sub.add_option("--min-p", f.sampling.min_p,
                 "Drop tokens below min-p x the top probability; 0 = off")
      ->capture_default_str();
  sub.add_option("--repeat-penalty", f.sampling.repeat_penalty,
                 "Penalty for repeated tokens; 1 = off")
      ->capture_default_str();
  sub.add_option("--repeat-last-n", f.sampling.repeat_last_n, "Tokens of history the penalty sees")
      ->capture_default_str();
  sub.add_option("-s,--seed", f.sampling.seed,
                 "Random seed (default: random; same seed, same output)")
      ->each([&f](const std::string&) { f.seed_given = true; });
  sub.add_flag("--ignore-eos", f.ignore_eos, "Do not stop at end-of-generation tokens");
  sub.add_option("--precision", f.precision, kPrecisionHelp)->capture_default_str();
  add_memory_flags(sub, f.memory);
}

SamplerConfig sampler_config(const GenerationFlags& f) {
  SamplerConfig c = f.sampling;
  if (!f.seed_given) {
    c.seed = (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
  }
  return c;
}

void print_seed(const GenerationFlags& f, const SamplerConfig& c) {
  if (!f.seed_given && c.temperature > 0) {
    std::fprintf(stderr, "seed: %llu\n", (unsigned long long)c.seed);
  }
}

kernels::Precision parse_precision(const std::string& name) {
  if (name == "fast") return kernels::Precision::kFast;
  if (name == "exact") return kernels::Precision::kExact;
  if (name == "int8") return kernels::Precision::kInt8;
  fail("--precision must be fast, exact or int8, not '", name, "'");
}

int resolved_threads(const GenerationFlags& f) {
  return f.threads > 0 ? f.threads : ThreadPool::default_threads();
}

void print_stats(const GenerateStats& s) {
  auto rate = [](int64_t n, double sec) { return sec > 0 ? double(n) / sec : 0.0; };
  std::fprintf(
      stderr,
      "prefill: %lld tokens in %.3f s (%.1f tok/s)%s | decode: %lld tokens in %.3f s "
      "(%.1f tok/s) | peak RSS %s\n",
      (long long)s.prompt_tokens, s.prefill_seconds, rate(s.prompt_tokens, s.prefill_seconds),
      s.reused_tokens ? (" + " + std::to_string(s.reused_tokens) + " cached").c_str() : "",
      (long long)s.generated_tokens, s.decode_seconds, rate(s.generated_tokens, s.decode_seconds),
      format_bytes(double(peak_rss_bytes())).c_str());
}

}  // namespace memwall::tools
