// memwall quantize: rewrite a model's weights in another type. Input: a GGUF
// in any type memwall decodes, or a Hugging Face safetensors directory.
// Output: a GGUF that memwall (and, for GGUF's own types, llama.cpp) loads.
#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/error.h"
#include "base/thread_pool.h"
#include "calibrate.h"
#include "commands.h"
#include "quant/activation_stats.h"
#include "quant/bit_budget.h"
#include "quant/gguf_source.h"
#include "quant/hf_source.h"
#include "quant/quantize_model.h"
#include "quant/rotated_source.h"
#include "quant/smoothed_source.h"

namespace memwall::tools {
namespace {

struct QuantizeOptions {
  std::string input;
  std::string output;
  std::string type;
  std::vector<std::string> keep;
  std::string rotate = "none";
  std::string ternary = "absmax";
  float smooth = 0;    // SmoothQuant alpha; 0: off
  double max_bpw = 0;  // bit budget of the whole file, when max_bpw_given
  bool max_bpw_given = false;
  std::vector<std::string> mix;
  uint64_t seed = 1;
  std::string calib;
  std::string imatrix, save_imatrix;
  int64_t calib_ctx = 512;
  int64_t calib_chunks = 32;
  int threads = 0;
  bool json = false;
};

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", double(bytes) / (1 << 20));
  return buf;
}

std::string shape(const quant::SourceTensor& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.dims.size(); ++i) s += (i ? ", " : "") + std::to_string(t.dims[i]);
  return s + "]";
}

// A k-quant-like ladder (q3_g64 standing in for q3_K) around any target.
std::vector<TensorType> default_mix() {
  return {TensorType::Q3_G64, TensorType::NF4_DQ, TensorType::Q4_K,
          TensorType::Q5_K,   TensorType::Q6_K,   TensorType::Q8_0};
}

std::unique_ptr<quant::TensorSource> open_source(const std::string& path) {
  if (!std::filesystem::exists(path)) fail("input '", path, "' does not exist");
  if (std::filesystem::is_directory(path)) {
    auto source = std::make_unique<quant::HfSource>(path);
    for (const std::string& note : source->notes()) {
      std::fprintf(stderr, "quantize: note: %s\n", note.c_str());
    }
    return source;
  }
  return std::make_unique<quant::GgufSource>(path);
}

int run_quantize(const QuantizeOptions& opt) {
  std::error_code ec;
  if (std::filesystem::equivalent(opt.input, opt.output, ec)) {
    fail("output '", opt.output, "' is the input file; write to another path");
  }
  auto type = tensor_type_from_name(opt.type);
  if (!type) fail("unknown --type '", opt.type, "' (memwall writes ", quant::writable_types(), ")");
  quant::QuantRecipe recipe(*type, opt.keep);
  std::vector<TensorType> mix_types;
  for (const std::string& name : opt.mix) {
    auto t = tensor_type_from_name(name);
    if (!t) fail("--mix: unknown type '", name, "' (memwall writes ", quant::writable_types(), ")");
    if (!quant::writable_type(*t)) {
      fail("--mix: memwall cannot write ", name, " (it writes ", quant::writable_types(), ")");
    }
    mix_types.push_back(*t);
  }
  if (!opt.mix.empty() && !opt.max_bpw_given) fail("--mix needs --max-bpw");
  if (opt.max_bpw_given && !(opt.max_bpw > 0 && opt.max_bpw <= 64)) {
    fail("--max-bpw must be in (0, 64] bits per weight, not ", opt.max_bpw);
  }
  if (opt.rotate != "none" && opt.rotate != "hadamard") {
    fail("--rotate must be none or hadamard, not '", opt.rotate, "'");
  }
  if (opt.ternary != "absmax" && opt.ternary != "absmean") {
    fail("--ternary must be absmax or absmean, not '", opt.ternary, "'");
  }
  if (opt.smooth != 0) {
    if (!(opt.smooth > 0 && opt.smooth <= 1)) fail("--smooth must be in (0, 1], not ", opt.smooth);
    if (opt.calib.empty()) fail("--smooth needs --calib: it scales by the activations' maxima");
    if (opt.rotate != "none") fail("--smooth and --rotate are alternatives, not a pair");
  }
  if (!opt.calib.empty() && !std::filesystem::is_regular_file(opt.calib)) {
    fail("--calib '", opt.calib, "' is not a readable file");  // before any long work
  }
  std::unique_ptr<quant::TensorSource> input = open_source(opt.input);
  std::unique_ptr<quant::TensorSource> rotated;
  if (opt.rotate == "hadamard") rotated = std::make_unique<quant::RotatedSource>(*input, opt.seed);
  const quant::TensorSource* source = rotated ? rotated.get() : input.get();
  ThreadPool pool(opt.threads > 0 ? opt.threads : ThreadPool::default_threads());

  // Calibration runs the model the quantizer will read: the input file as it
  // is, or (rotated or safetensors input) that model written to a temporary
  // f32 GGUF first, which the quantizer then reads instead.
  quant::ActivationStats stats;
  struct TempFile {
    std::string path;
    ~TempFile() {
      if (!path.empty()) std::remove(path.c_str());
    }
  } temp;
  std::unique_ptr<quant::TensorSource> materialized;
  if (!opt.imatrix.empty()) {
    if (!opt.calib.empty()) fail("give --calib or --imatrix, not both");
    stats = quant::ActivationStats::load(opt.imatrix);
  }
  if (!opt.save_imatrix.empty() && opt.calib.empty()) fail("--save-imatrix needs --calib");
  if (!opt.calib.empty()) {
    std::string calib_model = opt.input;
    if (source != input.get() || std::filesystem::is_directory(opt.input)) {
      temp.path = opt.output + ".calib-f32.gguf";
      std::fprintf(stderr, "quantize: writing the model in f32 for calibration: %s\n",
                   temp.path.c_str());
      quant::quantize_model(*source, quant::QuantRecipe(TensorType::F32, {}), temp.path, pool);
      materialized = std::make_unique<quant::GgufSource>(temp.path);
      source = materialized.get();
      calib_model = temp.path;
    }
    const int64_t tokens = run_calibration(
        {calib_model, opt.calib, opt.calib_ctx, opt.calib_chunks, opt.threads}, stats);
    std::fprintf(stderr, "quantize: calibrated on %lld tokens of %s (%zu matrices observed)\n",
                 (long long)tokens, opt.calib.c_str(), stats.tensors());
    if (!opt.save_imatrix.empty()) stats.save(opt.save_imatrix);
  }
  std::unique_ptr<quant::SmoothedSource> smoothed;
  if (opt.smooth != 0) {
    smoothed = std::make_unique<quant::SmoothedSource>(*source, stats, opt.smooth);
    source = smoothed.get();
    std::fprintf(stderr,
                 "quantize: SmoothQuant alpha %.2f: widest activation range (max / median "
                 "channel) %.1f -> %.1f\n",
                 opt.smooth, smoothed->outlier_ratio_before(), smoothed->outlier_ratio_after());
  }
  const bool tty = isatty(fileno(stderr));
  quant::QuantizeOptions q;
  q.ternary_absmean = opt.ternary == "absmean";
  if (smoothed) {
    q.importance = [&smoothed](const std::string& name) { return smoothed->importance(name); };
  } else if (!opt.calib.empty() || !opt.imatrix.empty()) {
    q.importance = [&stats](const std::string& name) { return stats.importance(name); };
  }
  std::optional<quant::BitBudgetResult> budget;
  if (opt.max_bpw_given) {
    quant::BitBudgetOptions b;
    b.max_bpw = opt.max_bpw;
    b.types = mix_types.empty() ? default_mix() : mix_types;
    b.importance = q.importance;
    b.ternary_absmean = q.ternary_absmean;
    b.on_measured = [tty](size_t done, size_t total, const quant::SourceTensor& t) {
      // A terminal's line is rewritten per matrix; a log gets every tenth.
      if (!tty && done != total && done % std::max<size_t>(1, total / 10) != 0) return;
      std::fprintf(stderr,
                   "%squantize: --max-bpw: measured %zu/%zu matrices in every "
                   "candidate type (%s)%s",
                   tty ? "\r\033[K" : "", done, total, t.name.c_str(),
                   !tty || done == total ? "\n" : "");
      std::fflush(stderr);
    };
    budget = quant::apply_bit_budget(*source, recipe, b, pool);
    std::string mix;
    for (const auto& [t, n] : budget->matrices_by_type) {
      mix += (mix.empty() ? "" : ", ") + std::to_string(n) + " " + std::string(tensor_type_name(t));
    }
    std::fprintf(stderr,
                 "quantize: --max-bpw %g: %s of %d matrices; %.3f bits per weight; summed "
                 "relative output error %.4g (%s only: %s)\n",
                 opt.max_bpw, mix.c_str(), budget->mixed, budget->bits_per_weight, budget->loss,
                 std::string(tensor_type_name(recipe.target())).c_str(),
                 budget->loss_target_only < 0 ? "over the budget"
                                              : std::to_string(budget->loss_target_only).c_str());
  }
  std::fprintf(stderr, "quantize: %s -> %s as %s (%d threads)\n", opt.input.c_str(),
               opt.output.c_str(), recipe.describe().c_str(), pool.size());
  q.on_tensor = [tty](const quant::TensorReport& r) {
    const int width = int(std::to_string(r.count).size());
    std::fprintf(
        stderr, "%s[%*zu/%zu] %-28s %-14s %5s -> %-6s rel.err %.4f%s %6.2f s%s",
        tty ? "\r\033[K" : "", width, r.index + 1, r.count, r.tensor->name.c_str(),
        shape(*r.tensor).c_str(), std::string(tensor_type_name(r.tensor->type)).c_str(),
        std::string(tensor_type_name(r.choice.type)).c_str(), r.rel_rms_error,
        r.weighted ? " (imatrix)" : "", r.seconds,
        r.choice.reason.rfind("fallback", 0) == 0 ? ("  (" + r.choice.reason + ")").c_str() : "");
    // On a terminal the line is rewritten in place, except those worth keeping.
    if (!tty || r.choice.reason.rfind("fallback", 0) == 0 || r.index + 1 == r.count) {
      std::fputc('\n', stderr);
    }
    std::fflush(stderr);
  };
  const quant::QuantizeSummary s = quant::quantize_model(*source, recipe, opt.output, pool, q);

  std::fprintf(stderr,
               "quantize: %s of tensors -> %s (x%.2f), %.3f bits per weight, "
               "relative RMS error %.4f, file %s, %.1f s\n",
               mib(s.bytes_in).c_str(), mib(s.bytes_out).c_str(),
               s.bytes_in ? double(s.bytes_out) / double(s.bytes_in) : 0.0, s.bits_per_weight(),
               s.weighted_rel_error, mib(s.file_bytes).c_str(), s.seconds);
  for (const auto& [t, totals] : s.by_type) {
    std::fprintf(stderr, "  %-6s %4d tensors %12llu weights %s\n",
                 std::string(tensor_type_name(t)).c_str(), totals.tensors,
                 (unsigned long long)totals.elements, mib(totals.bytes).c_str());
  }
  if (opt.json) {
    nlohmann::json j;
    j["input"] = opt.input;
    j["output"] = opt.output;
    j["recipe"] = recipe.describe();
    j["rotate"] = opt.rotate;
    j["ternary"] = opt.ternary;
    j["smooth"] = opt.smooth;
    if (budget) {
      j["max_bpw"] = opt.max_bpw;
      j["mix_loss"] = budget->loss;
      if (budget->loss_target_only >= 0) j["mix_loss_target_only"] = budget->loss_target_only;
    }
    j["calibration"] = opt.calib.empty() ? opt.imatrix : opt.calib;
    j["bytes_in"] = s.bytes_in;
    j["bytes_out"] = s.bytes_out;
    j["file_bytes"] = s.file_bytes;
    j["weights"] = s.elements;
    j["bits_per_weight"] = s.bits_per_weight();
    j["relative_rms_error"] = s.weighted_rel_error;
    j["seconds"] = s.seconds;
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [t, totals] : s.by_type) {
      types[std::string(tensor_type_name(t))] = {
          {"tensors", totals.tensors}, {"weights", totals.elements}, {"bytes", totals.bytes}};
    }
    j["types"] = types;
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

const CommandRegistration kQuantize{
    "quantize", "Rewrite a model's weights in another type (GGUF or safetensors in, GGUF out)", 65,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<QuantizeOptions>();
      sub.add_option("input", opt->input,
                     "Input model: a GGUF file, or a Hugging Face model directory (config.json, "
                     "*.safetensors in f32/f16/bf16, tokenizer.json or tokenizer.model) of a "
                     "LlamaForCausalLM or MistralForCausalLM")
          ->required();
      sub.add_option("output", opt->output, "Output GGUF path")->required();
      sub.add_option("--type", opt->type, "Type of the weight matrices: " + quant::writable_types())
          ->required();
      sub.add_option("--keep", opt->keep,
                     "PATTERN=TYPE: tensors whose name matches the regular expression PATTERN "
                     "are written as TYPE (repeatable; first match wins), e.g. "
                     "--keep 'token_embd|output\\.weight=q8_0'");
      sub.add_option("--rotate", opt->rotate,
                     "none, or hadamard: rotate the residual stream and FFN down's input by "
                     "randomized Hadamard matrices before quantizing (QuaRot; spreads outlier "
                     "channels; the file is then memwall-only)")
          ->capture_default_str();
      sub.add_option("--ternary", opt->ternary,
                     "Scale of the ternary types (tq1_0, tq2_0): absmax (llama.cpp's) or absmean "
                     "(BitNet b1.58: mean |w| per block, larger weights clipped)")
          ->capture_default_str();
      sub.add_option("--smooth", opt->smooth,
                     "ALPHA in (0, 1]: SmoothQuant migration (needs --calib): divide each "
                     "input channel by max|x|^ALPHA / max|w|^(1-ALPHA), folded into the norms, "
                     "V and FFN up, so per-token int8 activations (w8a8) lose less to outlier "
                     "channels; 0.5 is the paper's default. Off unless given");
      CLI::Option* max_bpw = sub.add_option(
          "--max-bpw", opt->max_bpw,
          "BITS: bit budget of the whole file (every tensor, as the summary counts): "
          "each matrix the target type would take may take a --mix type instead, "
          "chosen to fit BITS per weight with the least summed relative output error "
          "(importance-weighted with --calib/--imatrix). Off unless given");
      sub.add_option("--mix", opt->mix,
                     "Types --max-bpw chooses from besides --type (comma-separated; default "
                     "q3_g64,nf4_dq,q4_k,q5_k,q6_k,q8_0)")
          ->delimiter(',');
      sub.add_option("--seed", opt->seed, "Seed of the rotation's random signs")
          ->capture_default_str();
      sub.add_option("--calib", opt->calib,
                     "Calibration text: the model is run over it and each matrix's input "
                     "statistics weigh the quantization error (importance matrix, as llama.cpp's "
                     "imatrix) for the types that support it");
      sub.add_option("--imatrix", opt->imatrix,
                     "Importance matrix file (GGUF: <tensor>.in_sum2 and <tensor>.counts, as "
                     "--save-imatrix writes) instead of --calib");
      sub.add_option("--save-imatrix", opt->save_imatrix,
                     "Write the --calib run's importance matrix to this file");
      sub.add_option("--calib-ctx", opt->calib_ctx, "Tokens per calibration window")
          ->capture_default_str();
      sub.add_option("--calib-chunks", opt->calib_chunks, "Calibration windows at most")
          ->capture_default_str();
      sub.add_option("-t,--threads", opt->threads, "Threads (default: physical cores)");
      sub.add_flag("--json", opt->json, "Print a JSON summary on stdout");
      return [opt, max_bpw] {
        opt->max_bpw_given = max_bpw->count() > 0;
        return run_quantize(*opt);
      };
    }};

}  // namespace
}  // namespace memwall::tools
