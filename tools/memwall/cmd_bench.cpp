// memwall bench: prefill and decode speed of one model, like llama-bench.
// Loads the model once; each repetition starts a fresh Session, prefills
// -p deterministic pseudo-random tokens (no tokenizer needed; end-of-generation
// ids excluded), then decodes -n tokens one at a time, feeding back the argmax
// of the logits. Prefill and decode are timed separately with a steady clock;
// -w warm-up repetitions run first and are not counted. Reports the median and
// the spread (min, max, sample standard deviation) over the -r repetitions.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/process_stats.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "common.h"
#include "engine.h"
#include "generation_flags.h"
#include "kernels/isa.h"
#include "model/model.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace memwall::tools {
namespace {

struct BenchOptions {
  std::string model;
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int threads = 0;
  int reps = 5;
  int warmup = 1;
  int64_t batch = 512;
  int64_t ctx = 0;
  uint64_t seed = 42;
  std::string precision = GenerationFlags{}.precision;  // the same default as run and chat
  bool json = false;
  bool harness = false;
  MemoryFlags memory;
};

struct Spread {
  double median = 0, min = 0, max = 0, mean = 0, stddev = 0;
  std::vector<double> samples;
};

Spread spread_of(std::vector<double> v) {
  Spread s;
  s.samples = v;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / double(n);
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.stddev = n > 1 ? std::sqrt(ss / double(n - 1)) : 0.0;
  return s;
}

nlohmann::json spread_json(const Spread& s) {
  return {{"median", s.median}, {"min", s.min},       {"max", s.max},
          {"mean", s.mean},     {"stddev", s.stddev}, {"samples", s.samples}};
}

// End-of-generation ids: from the tokenizer when memwall can build it, else
// from the metadata keys that name them.
std::set<int32_t> end_of_generation_ids(const Model& model) {
  std::set<int32_t> out;
  try {
    Tokenizer tok = Tokenizer::from_gguf(model.file);
    for (int32_t id : tok.end_of_generation_ids()) out.insert(id);
    return out;
  } catch (const Error&) {
  }
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    int64_t id = model.file.get_int(key, -1);
    if (id >= 0) out.insert(int32_t(id));
  }
  return out;
}

// Deterministic pseudo-random prompt (splitmix64), ids in [0, V) minus `skip`.
std::vector<int32_t> make_prompt(int64_t n, int64_t n_vocab, const std::set<int32_t>& skip,
                                 uint64_t seed) {
  if (int64_t(skip.size()) >= n_vocab) fail("every token of the vocabulary ends generation");
  std::vector<int32_t> out;
  out.reserve(size_t(n));
  uint64_t state = seed;
  while (int64_t(out.size()) < n) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    auto id = int32_t(z % uint64_t(n_vocab));
    if (!skip.count(id)) out.push_back(id);
  }
  return out;
}

int32_t argmax(const float* logits, int64_t n) {
  return int32_t(std::max_element(logits, logits + n) - logits);
}

// Every matrix the forward pass multiplies by, once per token: the layers'
// seven and the output head (the embedding itself when tied). The embedding
// lookup of an untied model reads one row per token and is not counted.
struct MatrixTotals {
  uint64_t bytes = 0;
  std::map<std::string, uint64_t> elements_by_type;
};

MatrixTotals matrix_totals(const Model& model) {
  MatrixTotals t;
  auto add = [&](const kernels::MatrixView& m) {
    t.bytes += m.bytes();
    t.elements_by_type[std::string(tensor_type_name(m.type))] += uint64_t(m.rows * m.cols);
  };
  for (const auto& L : model.weights.layers) {
    for (const auto* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(*m);
  }
  add(model.weights.output);
  return t;
}

std::string dominant_type(const MatrixTotals& t) {
  std::string best = "unknown";
  uint64_t most = 0;
  for (const auto& [name, n] : t.elements_by_type) {
    if (n > most) most = n, best = name;
  }
  return best;
}

int run_bench(const BenchOptions& opt) {
  if (opt.n_prompt < 1) fail("-p must be >= 1 (prefill needs at least one token)");
  if (opt.n_gen < 0) fail("-n must be >= 0");
  if (opt.reps < 1) fail("-r must be >= 1");
  if (opt.warmup < 0) fail("-w must be >= 0");
  if (opt.threads < 0) fail("-t must be >= 0 (0: physical cores)");
  if (opt.batch < 1) fail("-b must be >= 1");
  if (opt.harness && !opt.json) fail("--harness needs --json");
  // Both throw Error on bad input (an unsupported MEMWALL_ISA, an unknown --precision).
  const std::string isa(kernels::isa_name(kernels::active_isa()));
  const kernels::Precision precision = parse_precision(opt.precision);

  const std::string path = resolve_model_path(opt.model);
  using Clock = std::chrono::steady_clock;
  const auto load_start = Clock::now();
  const int threads = opt.threads > 0 ? opt.threads : ThreadPool::default_threads();
  Engine engine({path, opt.memory, threads, precision, /*tokenizer=*/false});
  Model& model = engine.model();

  const int64_t needed = opt.n_prompt + opt.n_gen;
  const int64_t ctx = opt.ctx > 0 ? opt.ctx : needed;
  if (needed > ctx) {
    fail("-p ", opt.n_prompt, " plus -n ", opt.n_gen, " needs ", needed, " positions but --ctx is ",
         ctx);
  }
  const std::vector<int32_t> prompt =
      make_prompt(opt.n_prompt, model.spec.n_vocab, end_of_generation_ids(model), opt.seed);
  const MatrixTotals matrices = matrix_totals(model);
  engine.set_workload(opt.n_prompt, opt.n_gen);
  engine.plan_and_load(ctx, ctx, opt.batch);
  // Reading (and repacking) the weights is part of loading; reported on its own.
  const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();
  const StoreStats loaded = engine.store().stats();

  std::vector<double> prefill_tps, decode_tps, prefill_s, decode_s;
  size_t kv_bytes = 0;
  for (int rep = 0; rep < opt.warmup + opt.reps; ++rep) {
    const bool counted = rep >= opt.warmup;
    if (counted && opt.harness) {
      if (rep == opt.warmup) {  // warmed up: tell the harness, which then drives the reps
        std::printf("%s\n", nlohmann::json{{"ready", true}, {"warmup", opt.warmup}}.dump().c_str());
        std::fflush(stdout);
      }
      // Wait for the harness to ask for the next repetition; EOF ends the run.
      std::string line;
      if (!std::getline(std::cin, line)) break;
    }
    SessionConfig session_config = engine.plan().session_config();
    session_config.max_ctx = ctx;
    Session session(model, engine.store(), engine.pool(), engine.ledger(), session_config);
    const auto t0 = Clock::now();
    session.feed(prompt);
    const auto t1 = Clock::now();
    std::vector<int32_t> next(1);
    for (int64_t i = 0; i < opt.n_gen; ++i) {
      next[0] = argmax(session.logits(), session.n_vocab());
      session.feed(next);
    }
    const auto t2 = Clock::now();
    kv_bytes = session.kv_bytes();
    if (!counted) continue;
    const double sp = std::chrono::duration<double>(t1 - t0).count();
    const double sd = std::chrono::duration<double>(t2 - t1).count();
    prefill_s.push_back(sp);
    decode_s.push_back(sd);
    prefill_tps.push_back(sp > 0 ? double(opt.n_prompt) / sp : 0.0);
    decode_tps.push_back(sd > 0 ? double(opt.n_gen) / sd : 0.0);
    if (opt.harness) {
      nlohmann::json r = {{"rep", prefill_tps.size() - 1},
                          {"prefill_seconds", sp},
                          {"decode_seconds", sd},
                          {"prefill_tokens_per_s", prefill_tps.back()},
                          {"decode_tokens_per_s", decode_tps.back()},
                          {"peak_rss_bytes", peak_rss_bytes()}};
      std::printf("%s\n", r.dump().c_str());
      std::fflush(stdout);
    }
  }
  if (prefill_tps.empty()) fail("no repetition was measured");
  const Spread pp = spread_of(prefill_tps), tg = spread_of(decode_tps);
  const uint64_t rss = peak_rss_bytes();
  const std::string format = dominant_type(matrices);

  if (opt.json) {
    nlohmann::json j;
    j["model"] = path;
    j["architecture"] = model.spec.architecture;
    j["weight_format"] = format;
    j["isa"] = isa;
    j["precision"] = opt.precision;
    j["threads"] = threads;
    j["n_prompt"] = opt.n_prompt;
    j["n_gen"] = opt.n_gen;
    j["batch"] = opt.batch;
    j["ctx"] = ctx;
    j["reps"] = int(prefill_tps.size());
    j["warmup"] = opt.warmup;
    j["prefill_tokens_per_s"] = pp.median;
    j["decode_tokens_per_s"] = tg.median;
    j["prefill_tokens_per_s_spread"] = spread_json(pp);
    j["decode_tokens_per_s_spread"] = spread_json(tg);
    j["prefill_seconds"] = prefill_s;
    j["decode_seconds"] = decode_s;
    j["peak_rss_bytes"] = rss;
    j["load_seconds"] = load_seconds;
    j["weights_load_seconds"] = loaded.load_seconds;
    j["plan"] = engine.plan().to_json();
    j["budget_bytes"] = engine.budget();
    j["predicted_peak_bytes"] = engine.plan().predicted_peak;
    j["file_bytes"] = model.file.file_size();
    // Bytes of every matrix read once per decoded token (incl. the output head).
    j["matrix_bytes"] = matrices.bytes;
    j["kv_bytes"] = kv_bytes;
    // KV cache bytes per position (all layers, K and V) as this build stores it.
    j["kv_bytes_per_token"] = engine.plan().kv_bytes_per_token;
    j["kv_type"] = engine.plan().kv.name();
    j["attention"] = kernels::attention_kind_name(engine.plan().attention);
    j["n_vocab"] = model.spec.n_vocab;
    // One object; on one line in harness mode, where every line is an object.
    std::printf(
        "%s\n",
        j.dump(opt.harness ? -1 : 2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    engine.finish(pp.median, tg.median);
    return 0;
  }

  std::printf("model:   %s (%s, %s, %s of matrices)\n", path.c_str(),
              model.spec.architecture.c_str(), format.c_str(),
              format_bytes(double(matrices.bytes)).c_str());
  std::printf(
      "threads: %d | isa: %s | precision: %s | batch: %lld | reps: %d (+%d warm-up) | load %.2f "
      "s\n",
      threads, isa.c_str(), opt.precision.c_str(), (long long)opt.batch, opt.reps, opt.warmup,
      load_seconds);
  std::printf("weights: %s, read in %.2f s\n", engine.plan().weights_text().c_str(),
              loaded.load_seconds);
  std::printf("\n| %-8s | %6s | %12s | %12s | %12s | %10s |\n", "test", "tokens", "tok/s median",
              "min", "max", "stddev");
  std::printf("|----------|--------|--------------|--------------|--------------|------------|\n");
  auto row = [](const char* name, int64_t n, const Spread& s) {
    std::printf("| %-8s | %6lld | %12.2f | %12.2f | %12.2f | %10.2f |\n", name, (long long)n,
                s.median, s.min, s.max, s.stddev);
  };
  row(("pp" + std::to_string(opt.n_prompt)).c_str(), opt.n_prompt, pp);
  if (opt.n_gen > 0) row(("tg" + std::to_string(opt.n_gen)).c_str(), opt.n_gen, tg);
  std::printf("\npeak RSS: %s\n", format_bytes(double(rss)).c_str());
  engine.finish(pp.median, tg.median);
  return 0;
}

const CommandRegistration kBench{
    "bench", "Measure prefill and decode tokens/s (median and spread over repetitions)", 50,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<BenchOptions>();
      sub.add_option("-m,--model", opt->model, "GGUF model (default: the default model)");
      sub.add_option("-p,--n-prompt", opt->n_prompt, "Prompt tokens to prefill")
          ->capture_default_str();
      sub.add_option("-n,--n-gen", opt->n_gen, "Tokens to decode one at a time")
          ->capture_default_str();
      sub.add_option("-t,--threads", opt->threads, "Threads (0: physical cores)")
          ->capture_default_str();
      sub.add_option("-r,--reps", opt->reps, "Measured repetitions")->capture_default_str();
      sub.add_option("-w,--warmup", opt->warmup, "Warm-up repetitions, not counted")
          ->capture_default_str();
      sub.add_option("-b,--batch", opt->batch, "Prefill chunk size (tokens per forward pass)")
          ->capture_default_str();
      sub.add_option("--ctx", opt->ctx, "Context size (0: prompt + generation)")
          ->capture_default_str();
      sub.add_option("--precision", opt->precision, kPrecisionHelp)->capture_default_str();
      sub.add_option("--seed", opt->seed, "Seed of the pseudo-random prompt")
          ->capture_default_str();
      sub.add_flag("--json", opt->json, "Print one JSON object instead of the table");
      add_memory_flags(sub, opt->memory);
      sub.add_flag("--harness", opt->harness,
                   "With --json: after the warm-up, run each measured repetition when a line "
                   "arrives on stdin (EOF ends early) and print its result as one JSON line; "
                   "a {\"ready\":true} line comes first, the summary object last (for "
                   "bench/e2e_kernels.py, which "
                   "interleaves engines)");
      return [opt] { return run_bench(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
