#include "engine.h"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/process_stats.h"
#include "plan/machine_profile.h"

namespace memwall::tools {
namespace {

// What `auto` takes of MemAvailable: the rest stays for the page cache and
// everything else on the machine.
constexpr double kAutoShare = 0.75;

uint64_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

void parse_weights_flag(const std::string& text, plan::PlanRequest& req) {
  if (text == "auto") return;
  const size_t colon = text.find(':');
  const std::string mode = text.substr(0, colon);
  req.force_residency = true;
  if (mode == "resident" && colon == std::string::npos) {
    req.residency = Residency::kResident;
    return;
  }
  if (mode == "mapped") {
    req.residency = Residency::kMapped;
    req.window = 0;
  } else if (mode == "streamed") {
    req.residency = Residency::kStreamed;
  } else {
    fail("--weights '", text, "': use auto, resident, mapped, mapped:K or streamed[:K]");
  }
  if (colon == std::string::npos) return;
  try {
    size_t used = 0;
    req.window = std::stoll(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || req.window < 1) throw std::invalid_argument("k");
  } catch (const std::exception&) {
    fail("--weights '", text, "': K must be a whole number of layers >= 1");
  }
}

}  // namespace

void add_memory_flags(CLI::App& sub, MemoryFlags& f) {
  sub.add_option("--mem", f.mem,
                 "Memory budget: SIZE (B, KiB, MiB, GiB; e.g. 256MiB) or auto (a safe share of "
                 "available RAM); memwall picks the fastest plan that fits")
      ->capture_default_str();
  sub.add_option("--weights", f.weights,
                 "Where weights live: auto (the planner chooses), resident, mapped[:K] (mmap; "
                 "K layers kept), streamed[:K] (ring of K layers read ahead from disk)")
      ->capture_default_str();
  sub.add_option("--report", f.report,
                 "Write the plan, measured peak RSS and ledger peaks as JSON to this file");
  sub.add_option("--kv-type", f.kv_type,
                 "KV cache element type: auto (f16; q8_0, or q8_0 keys with q4_0 values, when "
                 "only they fit the context or they are much faster), f32, f16, q8_0, q4_0, or "
                 "K,V (e.g. q8_0,q4_0)")
      ->capture_default_str();
  sub.add_option("--attention", f.attention,
                 "Attention kernel: auto, flash (tiled, online softmax: scratch independent of "
                 "context) or materialized (every score in memory)")
      ->capture_default_str();
  sub.add_option("--kv-block", f.kv_block, "Tokens per KV cache block (paged KV pool)")
      ->capture_default_str();
  sub.add_flag("--verbose", f.verbose, "Print every plan considered, not only the chosen one");
}

size_t parse_mem_size(const std::string& text) {
  if (text == "auto") {
    const uint64_t avail = mem_available_bytes();
    if (avail == 0) fail("--mem auto: cannot read MemAvailable from /proc/meminfo; give a size");
    return size_t(double(avail) * kAutoShare);
  }
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  std::string number = text.substr(0, i), unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(number, &used);
    if (used != number.size()) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    fail("--mem '", text, "' is not a size: use e.g. 256MiB, 1.5GiB, 800000000 or auto");
  }
  std::string u;
  for (char c : unit) u += char(std::tolower(static_cast<unsigned char>(c)));
  double scale = 0;
  if (u.empty() || u == "b") scale = 1;
  if (u == "k" || u == "kib" || u == "kb") scale = 1024.0;
  if (u == "m" || u == "mib" || u == "mb") scale = 1024.0 * 1024;
  if (u == "g" || u == "gib" || u == "gb") scale = 1024.0 * 1024 * 1024;
  if (scale == 0) fail("--mem '", text, "': unknown unit '", unit, "' (use B, KiB, MiB or GiB)");
  const double bytes = value * scale;
  if (!(bytes >= 1) || bytes > 1e18) fail("--mem '", text, "' is out of range");
  return size_t(bytes);
}

Engine::Engine(const EngineOptions& options)
    : options_(options), budget_(parse_mem_size(options.memory.mem)), ledger_(budget_) {
  model_ = Model::load(options.model_path);
  const size_t before_tokenizer = current_rss_bytes();
  if (options.tokenizer) tokenizer_.emplace(Tokenizer::from_gguf(model_.file));
  const size_t after = current_rss_bytes();
  ledger_.record(MemCategory::kProcess, before_tokenizer);
  ledger_.record(MemCategory::kTokenizer, after > before_tokenizer ? after - before_tokenizer : 0);
  const int threads = options.threads > 0 ? options.threads : ThreadPool::default_threads();
  pool_ = std::make_unique<ThreadPool>(threads);
}

Engine::~Engine() = default;

plan::Planning Engine::plans(int64_t ctx, int64_t min_ctx, int64_t batch,
                             plan::PlanRequest* request) {
  bool measured = false;
  const plan::MachineProfile profile =
      plan::load_or_measure_profile(*pool_, false, [&](const std::string& line) {
        measured = true;
        std::fprintf(stderr, "profile: %s\n", line.c_str());
      });
  // Measuring the machine (once, then cached) streams a large buffer: not
  // part of the run whose peak memory is reported against the budget.
  if (measured && !reset_peak_rss()) {
    std::fprintf(stderr, "note: peak RSS includes the machine profile's measurement\n");
  }
  plan::PlanRequest req;
  req.budget = budget_;
  req.ctx = ctx;
  req.min_ctx = std::min(min_ctx, ctx);
  req.batch = batch;
  req.workload_prompt = workload_prompt_;
  req.workload_gen = workload_gen_;
  req.extra_scratch = extra_scratch_;
  req.precision = options_.precision;
  req.threads = pool_->size();
  parse_weights_flag(options_.memory.weights, req);
  if (options_.memory.kv_type != "auto") {
    req.kv = parse_kv_types(options_.memory.kv_type);
    KvPool::check_types(model_.spec, *req.kv);
  }
  if (options_.memory.attention == "flash") {
    req.attention = kernels::AttentionKind::kFlash;
  } else if (options_.memory.attention == "materialized") {
    req.attention = kernels::AttentionKind::kMaterialized;
  } else if (options_.memory.attention != "auto") {
    fail("--attention '", options_.memory.attention, "': use auto, flash or materialized");
  }
  if (options_.memory.kv_block < 1 || options_.memory.kv_block > 65536) {
    fail("--kv-block must be between 1 and 65536 tokens, got ", options_.memory.kv_block);
  }
  req.kv_block = options_.memory.kv_block;
  req.process_bytes = current_rss_bytes();
  size_t file_bytes = 0, cached = 0;
  for (const gguf::TensorInfo& t : model_.file.tensors()) {
    file_bytes += t.n_bytes;
    cached += model_.file.cached_bytes(t.data, t.n_bytes);
  }
  req.cached_fraction = file_bytes ? double(cached) / double(file_bytes) : 1.0;
  *request = req;
  return plan::make_plans(model_, profile, req);
}

void Engine::plan_and_load(int64_t ctx, int64_t min_ctx, int64_t batch) {
  plan::PlanRequest req;
  const plan::Planning planning = plans(ctx, min_ctx, batch, &req);
  if (options_.memory.verbose) std::fprintf(stderr, "%s", plan::plan_table(planning, true).c_str());
  if (planning.chosen < 0) fail(plan::too_small_message(model_, planning, req));
  plan_ = planning.plans[size_t(planning.chosen)];
  std::string note;
  effective_precision(options_.precision, kernels::active_isa(), model_.weights, &note);
  if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
  std::fprintf(stderr, "plan: %s (budget %s)\n", plan_.summary().c_str(),
               format_bytes(double(budget_)).c_str());
  if (plan_.ctx < ctx) {
    std::fprintf(stderr, "note: the budget caps the context at %lld tokens (asked %lld)\n",
                 (long long)plan_.ctx, (long long)ctx);
  }
  store_ = std::make_unique<WeightStore>(model_, plan_.store_config(), ledger_, *pool_);
  // Resident and streamed weights are read with pread: the file's tensor
  // data need not stay mapped at all.
  if (plan_.residency != Residency::kMapped) model_.file.unmap_tensor_data();
}

void Engine::finish(double prefill_tps, double decode_tps) {
  const uint64_t rss = peak_rss_bytes();
  std::string by_cat;
  nlohmann::json peaks = nlohmann::json::object();
  for (int c = 0; c < int(MemCategory::kCount); ++c) {
    const size_t b = ledger_.peak(MemCategory(c));
    peaks[std::string(category_name(MemCategory(c)))] = b;
    if (b == 0) continue;
    by_cat += (by_cat.empty() ? "" : ", ") + std::string(category_name(MemCategory(c))) + " " +
              format_bytes(double(b));
  }
  std::fprintf(stderr, "memory: budget %s | peak RSS %s | predicted %s | ledger peak %s (%s)\n",
               format_bytes(double(budget_)).c_str(), format_bytes(double(rss)).c_str(),
               format_bytes(double(plan_.predicted_peak)).c_str(),
               format_bytes(double(ledger_.peak())).c_str(), by_cat.c_str());
  if (store_ && plan_.residency == Residency::kStreamed) {
    const StoreStats s = store_->stats();
    const double overlap = s.load_seconds > 0 ? 1.0 - s.wait_seconds / s.load_seconds : 1.0;
    std::fprintf(stderr,
                 "stream: read %s in %.2f s (%.2f GB/s), compute waited %.2f s (%.0f%% of "
                 "loading overlapped)\n",
                 format_bytes(double(s.bytes_read)).c_str(), s.load_seconds,
                 s.load_seconds > 0 ? double(s.bytes_read) / s.load_seconds / 1e9 : 0.0,
                 s.wait_seconds, 100.0 * std::max(0.0, overlap));
  }
  if (options_.memory.report.empty()) return;
  nlohmann::json j = {{"budget_bytes", budget_},
                      {"peak_rss_bytes", rss},
                      {"predicted_peak_bytes", plan_.predicted_peak},
                      {"ledger_peak_bytes", peaks},
                      {"ledger_total_peak_bytes", ledger_.peak()},
                      {"plan", plan_.to_json()},
                      {"prefill_tokens_per_s", prefill_tps},
                      {"decode_tokens_per_s", decode_tps}};
  if (store_) {
    const StoreStats s = store_->stats();
    j["weights_read_bytes"] = s.bytes_read;
    j["weights_load_seconds"] = s.load_seconds;
    j["weights_wait_seconds"] = s.wait_seconds;
  }
  std::ofstream out(options_.memory.report);
  out << j.dump(2) << "\n";
  if (!out) fail("cannot write the report to '", options_.memory.report, "'");
}

}  // namespace memwall::tools
