// memwall perplexity: llama.cpp's perplexity protocol, and KL-divergence
// against a base model's saved distributions (llama.cpp's --kl-divergence).
//
// The text is tokenized whole (BOS first when the model adds one) and cut
// into non-overlapping windows of --ctx tokens. Each window is evaluated from
// an empty KV cache, its first token replaced by BOS when the model adds BOS;
// the logits at positions ctx/2 .. ctx-2 are scored against the next token
// (ctx/2 - 1 tokens per window, exactly as llama.cpp's perplexity). PPL =
// exp(mean NLL); its uncertainty is PPL times the standard error of the mean
// NLL. Progress ([1]12.34,[2]...) goes to stderr; stdout gets the results.
//
// Only the logits of one pass are ever held: the first half of a window is
// prefilled without logits, the scored half in passes of the plan's batch,
// each scored (and written to --save-logits, or compared with --kl-base's
// rows) before the next. Nothing is kept per chunk except, with --kl-base,
// one float per scored token (the KL percentiles) and, with --per-token, its
// NLL.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/process_stats.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "common.h"
#include "engine.h"
#include "generation_flags.h"
#include "logprob_file.h"
#include "model/forward.h"
#include "model/kv_pool.h"
#include "tokenizer/tokenizer.h"

namespace memwall::tools {
namespace {

struct PerplexityOptions {
  std::string model;
  std::string text_file;
  int64_t ctx = 512;
  int64_t chunks = 0;  // 0: every whole window of the text
  int threads = 0;
  // Exact by default: the reference llama.cpp comparisons are made at.
  std::string precision = "exact";
  bool json = false;
  bool per_token = false;
  std::string save_logits;
  std::string kl_base;
  MemoryFlags memory;
  const CLI::Option* ctx_given = nullptr;
  const CLI::Option* chunks_given = nullptr;
};

// Mean and standard error of the mean from a sum and a sum of squares, as
// llama.cpp computes them.
struct Moments {
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  void add(double x) {
    sum += x;
    sum2 += x * x;
    ++n;
  }
  double mean() const { return n ? sum / double(n) : 0.0; }
  double stderr_of_mean() const {
    if (n < 2) return 0.0;
    const double m = mean(), var = sum2 / double(n) - m * m;
    return var > 0 ? std::sqrt(var / double(n - 1)) : 0.0;
  }
};

// llama.cpp's percentile: linear between the two nearest sorted values.
double percentile(const std::vector<float>& sorted, double fraction) {
  if (sorted.empty()) return 0.0;
  const double p = fraction * double(sorted.size() - 1);
  const size_t i = size_t(p);
  const size_t j = std::min(i + 1, sorted.size() - 1);
  return (1 - (p - double(i))) * sorted[i] + (p - double(i)) * sorted[j];
}

// What one scored position gives.
struct RowResult {
  double nll = 0;
  int32_t argmax = 0;
  double kl = 0;  // with --kl-base; NaN: the base row is corrupt
  BaseRow base;
};

// KL-divergence statistics over every scored token (llama.cpp's set).
struct KlStats {
  Moments kl, nll, nll_base, p_diff2;
  double sum_nll_nll_base = 0, sum_p_diff4 = 0, max_p_diff = 0;
  int64_t same_top = 0;
  std::vector<float> values;  // one per scored token, for the percentiles
};

int64_t checked_ctx(int64_t ctx) {
  if (ctx < 4 || ctx % 2 != 0) {
    fail(
        "--ctx must be an even number >= 4 (each window scores its second half but the last "
        "position: ctx/2 - 1 tokens), got ",
        ctx);
  }
  return ctx;
}

int run_perplexity(const PerplexityOptions& opt) {
  using Clock = std::chrono::steady_clock;
  int64_t ctx = checked_ctx(opt.ctx);
  if (opt.chunks_given->count() && opt.chunks < 1) fail("--chunks must be >= 1, got ", opt.chunks);
  if (opt.threads < 0) fail("-t must be >= 0 (0: physical cores)");
  if (opt.per_token && !opt.json) fail("--per-token needs --json");
  const kernels::Precision precision = parse_precision(opt.precision);
  // Every window frees its KV blocks and allocates them again. glibc's
  // dynamic mmap threshold would then serve them from a heap that does not
  // shrink (measured: peak RSS 8 MiB over the plan after 4 windows of 256);
  // a fixed threshold keeps buffers this large mmapped and returned.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);

  // The base's file first: a bad file fails before the model loads.
  std::optional<LogProbReader> base;
  int64_t chunks_wanted = opt.chunks_given->count() ? opt.chunks : 0;
  if (!opt.kl_base.empty()) {
    base.emplace(opt.kl_base);
    const LogProbHeader& h = base->header();
    if (opt.ctx_given->count() && ctx != int64_t(h.ctx)) {
      fail("--kl-base '", opt.kl_base, "' was saved with --ctx ", h.ctx, ", not ", ctx,
           " (omit --ctx to use the file's)");
    }
    if (chunks_wanted && chunks_wanted != int64_t(h.n_chunks)) {
      fail("--kl-base '", opt.kl_base, "' holds ", h.n_chunks, " chunks, not ", chunks_wanted,
           " (omit --chunks to use the file's)");
    }
    ctx = h.ctx;
    chunks_wanted = h.n_chunks;
  }

  // The text before the model: a missing or empty file fails at once.
  std::string text = read_text_file(opt.text_file, "-f");
  if (text.empty()) fail("-f '", opt.text_file, "' is empty");
  const std::string model_path = resolve_model_path(opt.model);
  Engine engine({model_path, opt.memory, opt.threads, precision, /*tokenizer=*/true});
  const ModelSpec& spec = engine.model().spec;
  const Tokenizer& tok = engine.tokenizer();
  const int64_t V = spec.n_vocab;
  if (int64_t(tok.vocab_size()) != V) {
    fail("the model's tokenizer has ", tok.vocab_size(), " tokens but its output has ", V);
  }
  if (ctx > spec.n_ctx_train) {
    fail("--ctx ", ctx, " is beyond the model's context of ", spec.n_ctx_train, " tokens");
  }
  const uint64_t vocab = vocab_hash(tok);
  if (base) {
    const LogProbHeader& h = base->header();
    if (int64_t(h.n_vocab) != V || h.vocab_hash != vocab) {
      fail("--kl-base '", opt.kl_base, "' was made by a model with another vocabulary (", h.n_vocab,
           " tokens, hash ", h.vocab_hash, "; this model: ", V, " tokens, hash ", vocab,
           "): KL-divergence needs the same tokenizer");
    }
  }

  // llama.cpp tokenizes with BOS (when the model adds it), no EOS, and the
  // text's control-token spellings left as text.
  const bool add_bos = tok.add_bos() && tok.bos_id() >= 0;
  std::vector<int32_t> tokens;
  {
    if (add_bos) tokens.push_back(tok.bos_id());
    const std::vector<int32_t> body = tok.encode(text, /*add_special=*/false, false);
    tokens.insert(tokens.end(), body.begin(), body.end());
    text = std::string();  // freed before planning
  }
  const int64_t n_tokens = int64_t(tokens.size());
  if (n_tokens < 2 * ctx) {
    fail("-f '", opt.text_file, "' tokenizes to ", n_tokens, " tokens; --ctx ", ctx,
         " needs at least ", 2 * ctx,
         " (2 x ctx, as llama.cpp): give a longer text or a smaller --ctx");
  }
  const int64_t max_chunks = n_tokens / ctx;
  int64_t n_chunks = chunks_wanted ? std::min(chunks_wanted, max_chunks) : max_chunks;
  if (base && n_chunks < chunks_wanted) {
    fail("--kl-base '", opt.kl_base, "' holds ", chunks_wanted, " chunks of ", ctx,
         " tokens but -f '", opt.text_file, "' has only ", max_chunks, ": not the same text");
  }
  if (chunks_wanted > max_chunks) {
    std::fprintf(stderr, "note: the text holds %lld windows of %lld tokens; scoring them all\n",
                 (long long)max_chunks, (long long)ctx);
  }
  tokens.resize(size_t(n_chunks * ctx));  // only the evaluated windows are kept
  tokens.shrink_to_fit();
  if (base) {
    const LogProbHeader& h = base->header();
    if (h.add_bos != add_bos || (add_bos && h.bos != tok.bos_id())) {
      fail("--kl-base '", opt.kl_base, "' was made with BOS ", h.add_bos ? "on" : "off",
           "; this model has it ", add_bos ? "on" : "off");
    }
    const auto diff = std::mismatch(tokens.begin(), tokens.end(), h.tokens.begin());
    if (diff.first != tokens.end()) {
      const int64_t at = diff.first - tokens.begin();
      fail("--kl-base '", opt.kl_base, "' was made from another text: token ", at % ctx,
           " of window ", at / ctx + 1, " is ", *diff.second, " there and ", *diff.first, " here");
    }
  }
  const int64_t first = ctx / 2, scored = ctx - 1 - first, n_scored = scored * n_chunks;
  const size_t row_bytes = logprob_row_bytes(V);

  // Opened before planning: an unwritable path fails before any work.
  std::optional<LogProbWriter> writer;
  if (!opt.save_logits.empty()) {
    LogProbHeader h;
    h.n_vocab = uint32_t(V);
    h.ctx = uint32_t(ctx);
    h.n_chunks = uint32_t(n_chunks);
    h.first = uint32_t(first);
    h.add_bos = add_bos;
    h.bos = add_bos ? tok.bos_id() : -1;
    h.vocab_hash = vocab;
    h.model = model_path;
    h.tokens = tokens;
    const uint64_t bytes = logprob_file_bytes(h);
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path dir = fs::absolute(opt.save_logits, ec).parent_path();
    const fs::space_info space = fs::space(dir, ec);
    if (!ec && space.available < bytes) {
      fail("--save-logits '", opt.save_logits, "' needs ", format_bytes(double(bytes)), " but ",
           dir.string(), " has ", format_bytes(double(space.available)), " free");
    }
    std::fprintf(stderr, "perplexity: saving %lld distributions (%s) to %s\n", (long long)n_scored,
                 format_bytes(double(bytes)).c_str(), opt.save_logits.c_str());
    writer.emplace(opt.save_logits, h);
  }

  // Buffers per pass of B tokens: their logits, and the rows written or read.
  auto pass_bytes = [&](int64_t B) {
    size_t b = size_t(B) * size_t(V) * sizeof(float) + size_t(B) * sizeof(RowResult);
    if (!opt.save_logits.empty()) b += size_t(B) * row_bytes;
    if (base) b += size_t(B) * row_bytes;
    return b;
  };
  const size_t run_bytes = (base ? size_t(n_scored) * sizeof(float) : 0) +
                           (opt.per_token ? size_t(n_scored) * sizeof(double) : 0);
  // The batch: the fastest predicted plan over the pass sizes worth trying
  // (its logits grow with it; a small budget may favour a smaller pass that
  // keeps the weights resident). More than ctx/2 tokens per pass is useless.
  engine.set_workload(ctx, 0);
  std::vector<int64_t> ladder;
  for (int64_t b : {first, int64_t(256), int64_t(64), int64_t(16), int64_t(1)}) {
    if (b <= first && std::find(ladder.begin(), ladder.end(), b) == ladder.end()) {
      ladder.push_back(b);
    }
  }
  int64_t batch = ladder.back();
  double best_tps = -1;
  for (int64_t b : ladder) {
    engine.set_extra_scratch(pass_bytes(b) + run_bytes);
    plan::PlanRequest req;
    const plan::Planning planning = engine.plans(ctx, ctx, b, &req);
    if (planning.chosen < 0) continue;
    const double tps = planning.plans[size_t(planning.chosen)].prefill_tps;
    if (tps > best_tps * 1.001) best_tps = tps, batch = b;
  }
  engine.set_extra_scratch(pass_bytes(batch) + run_bytes);
  engine.plan_and_load(ctx, ctx, batch);
  const plan::Plan& chosen = engine.plan();
  const int64_t B = std::min(chosen.batch, batch);

  MemoryLedger& ledger = engine.ledger();
  MemoryLedger::Reservation run_reservation = ledger.reserve(MemCategory::kScratch, run_bytes);
  LedgerBuffer logits_buf(ledger, MemCategory::kScratch, size_t(B * V) * sizeof(float));
  LedgerBuffer save_rows, base_rows;
  if (writer) save_rows = LedgerBuffer(ledger, MemCategory::kScratch, size_t(B) * row_bytes);
  if (base) base_rows = LedgerBuffer(ledger, MemCategory::kScratch, size_t(B) * row_bytes);

  KvPool kv(spec, {chosen.kv, chosen.kv_block, (ctx + chosen.kv_block - 1) / chosen.kv_block},
            ledger);
  Forward forward(engine.model(), engine.store(), engine.pool(), ledger, B, ctx,
                  {chosen.attention, chosen.kv_block});
  std::fprintf(stderr,
               "perplexity: %lld tokens, %lld chunks of %lld (BOS %s), scoring %lld tokens "
               "(%lld per chunk) in passes of %lld\n",
               (long long)n_tokens, (long long)n_chunks, (long long)ctx, add_bos ? "on" : "off",
               (long long)n_scored, (long long)scored, (long long)B);

  Moments nll;
  KlStats kls;
  std::vector<double> per_token;
  if (opt.per_token) per_token.reserve(size_t(n_scored));
  if (base) kls.values.reserve(size_t(n_scored));
  std::vector<RowResult> rows(static_cast<size_t>(B));
  float* logits = logits_buf.as<float>();
  std::vector<int32_t> window(static_cast<size_t>(ctx));
  const auto t_start = Clock::now();

  // The progress line is open while chunks run: an error (a corrupt base
  // row) must still print on a line of its own.
  try {
    for (int64_t c = 0; c < n_chunks; ++c) {
      const auto t_chunk = Clock::now();
      std::copy_n(tokens.begin() + c * ctx, ctx, window.begin());
      if (add_bos) window[0] = tok.bos_id();
      const KvPool::SeqId seq = kv.create();  // an empty cache per window
      for (int64_t p = 0; p < first; p += B) {
        forward.run(window.data() + p, std::min(B, first - p), kv, seq, logits, false);
      }
      for (int64_t p = first; p < ctx - 1; p += B) {
        const int64_t n = std::min(B, ctx - 1 - p);
        forward.run(window.data() + p, n, kv, seq, logits, true);
        if (base) base->read_rows(base_rows.data(), n);
        // Rows are independent: score them on every thread (fn must not throw).
        engine.pool().parallel_for(n, [&](int64_t r0, int64_t r1, int) {
          for (int64_t r = r0; r < r1; ++r) {
            const float* x = logits + r * V;
            int32_t am = 0;
            for (int64_t i = 1; i < V; ++i) {
              if (x[i] > x[am]) am = int32_t(i);
            }
            double sum = 0;
            for (int64_t i = 0; i < V; ++i) sum += std::exp(double(x[i]) - double(x[am]));
            const double lse = double(x[am]) + std::log(sum);
            const int32_t target = window[size_t(p + r + 1)];
            RowResult& out = rows[size_t(r)];
            out.nll = lse - double(x[target]);
            out.argmax = am;
            if (writer) encode_logprob_row(x, V, lse, am, target, save_rows.data() + r * row_bytes);
            if (base)
              out.kl = kl_from_logprob_row(base_rows.data() + r * row_bytes, x, V, lse, &out.base);
          }
        });
        if (writer) writer->write_rows(save_rows.data(), n);
        for (int64_t r = 0; r < n; ++r) {
          const RowResult& x = rows[size_t(r)];
          nll.add(x.nll);
          if (opt.per_token) per_token.push_back(x.nll);
          if (!base) continue;
          if (std::isnan(x.kl)) {
            fail("--kl-base '", opt.kl_base, "': its row for position ", p + r, " of chunk ", c + 1,
                 " is corrupt");
          }
          kls.kl.add(x.kl);
          kls.values.push_back(float(x.kl));
          kls.nll.add(x.nll);
          kls.nll_base.add(x.base.nll);
          kls.sum_nll_nll_base += x.nll * x.base.nll;
          kls.same_top += x.argmax == x.base.argmax;
          const double dp = std::exp(-x.nll) - std::exp(-x.base.nll);
          kls.p_diff2.add(dp * dp);
          kls.sum_p_diff4 += dp * dp * dp * dp;
          kls.max_p_diff = std::max(kls.max_p_diff, std::fabs(dp));
        }
      }
      kv.release(seq);
      if (writer) writer->end_chunk();
      if (base) base->end_chunk(c);
      if (c == 0) {
        const double s = std::chrono::duration<double>(Clock::now() - t_chunk).count();
        std::fprintf(stderr, "perplexity: %.2f seconds per pass - ETA %.2f minutes\n", s,
                     s * double(n_chunks) / 60.0);
      }
      std::fprintf(stderr, "[%lld]%.4f,", (long long)(c + 1), std::exp(nll.mean()));
      std::fflush(stderr);
    }
  } catch (...) {
    std::fprintf(stderr, "\n");
    throw;
  }
  std::fprintf(stderr, "\n");
  const double seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  if (writer) writer->commit();

  const double ppl = std::exp(nll.mean());
  const double ppl_err = ppl * nll.stderr_of_mean();
  const double evaluated = double(n_chunks * (ctx - 1));  // the last position needs no pass
  std::fprintf(stderr, "perplexity: %lld tokens evaluated in %.2f s (%.1f tokens/s)\n",
               (long long)evaluated, seconds, seconds > 0 ? evaluated / seconds : 0.0);

  nlohmann::json j;
  j["model"] = model_path;
  j["text"] = opt.text_file;
  j["ctx"] = ctx;
  j["chunks"] = n_chunks;
  j["tokens"] = n_tokens;
  j["tokens_scored"] = nll.n;
  j["add_bos"] = add_bos;
  j["precision"] = opt.precision;
  j["threads"] = engine.pool().size();
  j["batch"] = B;
  j["perplexity"] = ppl;
  j["stderr"] = ppl_err;
  j["mean_nll"] = nll.mean();
  j["seconds"] = seconds;
  j["tokens_per_s"] = seconds > 0 ? evaluated / seconds : 0.0;
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["budget_bytes"] = engine.budget();
  j["plan"] = chosen.to_json();
  if (writer) j["saved_logits"] = opt.save_logits;
  if (opt.per_token) j["nll"] = per_token;

  std::string out;
  char line[512];
  if (base) {
    // As llama.cpp's --kl-divergence: the two log-perplexities are
    // correlated, so the ratio's uncertainty subtracts their covariance.
    const int64_t n = kls.kl.n;
    const double cov =
        n > 1 ? (kls.sum_nll_nll_base / double(n) - kls.nll.mean() * kls.nll_base.mean()) /
                    double(n - 1)
              : 0.0;
    const double s_q = kls.nll.stderr_of_mean(), s_b = kls.nll_base.stderr_of_mean();
    const double ppl_base = std::exp(kls.nll_base.mean()), ppl_base_err = ppl_base * s_b;
    const double ln_ratio = kls.nll.mean() - kls.nll_base.mean();
    const double ln_ratio_err = std::sqrt(std::max(0.0, s_q * s_q + s_b * s_b - 2 * cov));
    const double ratio = std::exp(ln_ratio), ratio_err = ratio * ln_ratio_err;
    const double diff = ppl - ppl_base;
    const double diff_err = std::sqrt(
        std::max(0.0, ppl_err * ppl_err + ppl_base_err * ppl_base_err - 2 * ppl * ppl_base * cov));
    const double top = double(kls.same_top) / double(n);
    const double top_err = n > 1 ? std::sqrt(top * (1 - top) / double(n - 1)) : 0.0;
    const double rms_dp = std::sqrt(kls.p_diff2.mean());
    std::sort(kls.values.begin(), kls.values.end());
    const std::vector<float>& v = kls.values;
    const double median = percentile(v, 0.5);
    nlohmann::json k;
    k["base_file"] = opt.kl_base;
    k["base_model"] = base->header().model;
    k["mean"] = kls.kl.mean();
    k["stderr"] = kls.kl.stderr_of_mean();
    k["max"] = v.back();
    k["p99_9"] = percentile(v, 0.999);
    k["p99"] = percentile(v, 0.99);
    k["p95"] = percentile(v, 0.95);
    k["p90"] = percentile(v, 0.90);
    k["median"] = median;
    k["p10"] = percentile(v, 0.10);
    k["p1"] = percentile(v, 0.01);
    k["min"] = v.front();
    k["top1_agreement"] = top;
    k["top1_agreement_stderr"] = top_err;
    k["rms_delta_p"] = rms_dp;
    k["max_delta_p"] = kls.max_p_diff;
    k["base_perplexity"] = ppl_base;
    k["base_perplexity_stderr"] = ppl_base_err;
    k["perplexity_ratio"] = ratio;
    k["perplexity_ratio_stderr"] = ratio_err;
    k["ln_perplexity_ratio"] = ln_ratio;
    k["ln_perplexity_ratio_stderr"] = ln_ratio_err;
    k["perplexity_difference"] = diff;
    k["perplexity_difference_stderr"] = diff_err;
    j["kl_divergence"] = k;
    std::snprintf(line, sizeof line, "KLD (base || this) = %.6f +/- %.6f\n", kls.kl.mean(),
                  kls.kl.stderr_of_mean());
    out += line;
    std::snprintf(line, sizeof line,
                  "KLD max %.6f | 99.9%% %.6f | 99%% %.6f | 95%% %.6f | median %.6f\n", v.back(),
                  percentile(v, 0.999), percentile(v, 0.99), percentile(v, 0.95), median);
    out += line;
    std::snprintf(line, sizeof line, "same top token = %.3f%% +/- %.3f%%  (RMS delta p %.3f%%)\n",
                  100 * top, 100 * top_err, 100 * rms_dp);
    out += line;
    std::snprintf(line, sizeof line, "PPL(base) = %.4f +/- %.5f\n", ppl_base, ppl_base_err);
    out += line;
    std::snprintf(line, sizeof line,
                  "PPL/PPL(base) = %.6f +/- %.6f | PPL-PPL(base) = %.6f +/- %.6f\n", ratio,
                  ratio_err, diff, diff_err);
    out += line;
  }
  std::snprintf(line, sizeof line, "PPL = %.4f +/- %.5f\n", ppl, ppl_err);
  out += line;

  if (opt.json) {
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputs(out.c_str(), stdout);
  }
  std::fflush(stdout);
  engine.finish(evaluated / std::max(seconds, 1e-9), 0);
  return 0;
}

const CommandRegistration kPerplexity{
    "perplexity",
    "Perplexity of a text by llama.cpp's protocol; KL-divergence against a base model's saved "
    "distributions",
    55, [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<PerplexityOptions>();
      sub.add_option("-m,--model", opt->model, "GGUF model (default: the default model)");
      sub.add_option("-f,--file", opt->text_file, "Text to score (e.g. wiki.test.raw)")->required();
      opt->ctx_given =
          sub.add_option("-c,--ctx", opt->ctx,
                         "Tokens per window (even, >= 4); each window scores its second half "
                         "but the last position")
              ->capture_default_str();
      opt->chunks_given =
          sub.add_option("--chunks", opt->chunks, "Windows to score (default: every whole window)");
      sub.add_option("-t,--threads", opt->threads, "Threads (default: physical cores)");
      sub.add_option("--precision", opt->precision,
                     std::string(kPrecisionHelp) +
                         ". Default here: exact, the reference llama.cpp is compared at; "
                         "--precision fast is faster at about exact quality")
          ->capture_default_str();
      sub.add_flag("--json", opt->json, "Print one JSON object instead of the result lines");
      sub.add_flag("--per-token", opt->per_token,
                   "With --json: every scored token's NLL (\"nll\", in order)");
      sub.add_option("--save-logits", opt->save_logits,
                     "Write this (base) model's distributions at every scored position to FILE "
                     "(12 + 2 x vocab bytes per scored token; for --kl-base)")
          ->type_name("FILE");
      sub.add_option("--kl-base", opt->kl_base,
                     "Compare with a base model's --save-logits FILE: KL-divergence (base || "
                     "this), top-1 agreement, both perplexities; --ctx and --chunks default to "
                     "the file's, the text must be the same")
          ->type_name("FILE");
      add_memory_flags(sub, opt->memory);
      return [opt] { return run_perplexity(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
