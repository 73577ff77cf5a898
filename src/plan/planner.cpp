#include "plan/planner.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "base/process_stats.h"
#include "model/weight_units.h"
#include "runtime/session.h"

namespace memwall::plan {
namespace {

// Serial work per layer and token besides the matmuls' streaming: norms,
// RoPE, a dozen thread-pool dispatches (measured about this on 2 cores).
constexpr double kLayerOverheadSeconds = 25e-6;
// Reading through page faults (mapped, window < all) runs below pread speed.
constexpr double kFaultEfficiency = 0.5;
// The loader thread reads and repacks while two compute threads share the
// same two cores and memory: measured 2.7-3.1 GB/s against 4.0 from the
// profile's separate pread and repack rates (bench/results/budget.md).
constexpr double kLoaderEfficiency = 0.75;
// Attention's flops per thread and second inside the engine, 2 threads, the
// default model, f16 K/V (bench/results/attention.md): prefill about 22
// (45 GFLOP/s for 2 threads at 8192 tokens); decode about 9, whose K/V are
// read once per step from DRAM in 16-token pages (their bytes are counted
// apart, at the profile's read bandwidth).
constexpr double kPrefillAttentionFlopsPerThread = 22e9;
constexpr double kDecodeAttentionFlopsPerThread = 9e9;

std::string kib(size_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f KiB", double(b) / 1024.0);
  return buf;
}

std::string mib(size_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1 << 20));
  return buf;
}

struct UnitCost {
  double decode_s = 0;  // one token
  double prefill_s_per_tok = 0;
  double read_s = 0;  // pread (or fault) the unit's file bytes
  double pack_s = 0;  // repack them
};

// Extra seconds per byte of reading weights through the file's memory map
// rather than from anonymous huge pages, where the profile's kernel rates
// were measured: at most the difference of the two read bandwidths, whatever
// the kernel's own rate (memory-bound kernels pay all of it, compute-bound
// ones less; this errs toward resident weights).
double mapped_penalty_s_per_byte(const MachineProfile& prof) {
  if (prof.mapped_read_gbps <= 0 || prof.read_gbps <= 0) return 0;
  return std::max(0.0, 1.0 / (prof.mapped_read_gbps * 1e9) - 1.0 / (prof.read_gbps * 1e9));
}

// Costs of one unit from the profile's measured rate of each matrix's own
// path (format, precision, packed or rows); `mapped`: read through the map.
UnitCost unit_cost(const WeightUnit& u, const MachineProfile& prof, kernels::Precision precision,
                   double io_gbps, bool mapped) {
  UnitCost c;
  const double penalty = mapped ? mapped_penalty_s_per_byte(prof) : 0;
  for (const UnitMatrix& m : u.matrices) {
    const std::string key = kernel_key(std::string(tensor_type_name(m.source->type)),
                                       std::string(precision_name(precision)), m.packed);
    const KernelRate r = prof.rate(key);
    c.decode_s += double(m.file_bytes()) / (std::max(0.05, r.decode_gbps) * 1e9) +
                  double(m.file_bytes()) * penalty;
    c.prefill_s_per_tok +=
        2.0 * double(m.rows) * double(m.source->cols) / (std::max(0.05, r.prefill_gops) * 1e9);
    c.read_s += double(m.file_bytes()) / (io_gbps * 1e9);
    if (m.packed) c.pack_s += double(m.file_bytes()) / (std::max(0.05, prof.pack_gbps) * 1e9);
  }
  return c;
}

struct Candidate {
  Residency residency;
  int64_t window;
  int64_t resident_units = 0;
};

}  // namespace

std::string_view precision_name(kernels::Precision p) {
  switch (p) {
    case kernels::Precision::kExact:
      return "exact";
    case kernels::Precision::kFast:
      return "fast";
    case kernels::Precision::kInt8:
      return "int8";
  }
  return "?";
}

size_t headroom_bytes(size_t predicted) {
  return std::max<size_t>(size_t(6) << 20, predicted / 25);
}

StoreConfig Plan::store_config() const {
  StoreConfig c;
  c.residency = residency;
  c.window = window;
  c.resident_units = resident_units;
  c.precision = precision;
  return c;
}

SessionConfig Plan::session_config() const {
  SessionConfig c;
  c.max_ctx = ctx;
  c.batch = batch;
  c.kv = kv;
  c.attention = {attention, kv_block};
  return c;
}

std::string Plan::weights_text() const {
  std::ostringstream s;
  switch (residency) {
    case Residency::kResident:
      s << "resident";
      break;
    case Residency::kMapped:
      s << "mapped";
      if (window > 0) s << ", " << window << "-unit window";
      break;
    case Residency::kStreamed:
      s << "streamed, ring of " << window << (window == 1 ? " unit" : " units") << " ("
        << window - 1 << " read ahead)";
      if (resident_units > 0) s << ", " << resident_units << "/" << units << " units resident";
      break;
  }
  return s.str();
}

std::string Plan::summary() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "weights %s | batch %lld | ctx %lld | KV %s (%s/token) | %s attention | %s "
                "precision | predicted peak %s | ~%.1f tok/s decode, ~%.0f tok/s prefill",
                weights_text().c_str(), (long long)batch, (long long)ctx, kv.name().c_str(),
                kib(kv_bytes_per_token).c_str(), kernels::attention_kind_name(attention),
                std::string(precision_name(precision)).c_str(), mib(predicted_peak).c_str(),
                decode_tps, prefill_tps);
  return buf;
}

nlohmann::json Plan::to_json() const {
  nlohmann::json by_category = nlohmann::json::object();
  for (size_t c = 0; c < bytes.size(); ++c) {
    by_category[std::string(category_name(MemCategory(c)))] = bytes[c];
  }
  return {{"weights", std::string(residency_name(residency))},
          {"window_units", window},
          {"resident_units", residency == Residency::kResident ? units : resident_units},
          {"units", units},
          {"prefetch_depth", residency == Residency::kStreamed ? window - 1 : 0},
          {"kv_type", kv.name()},
          {"k_type", std::string(kv_type_name(kv.k))},
          {"v_type", std::string(kv_type_name(kv.v))},
          {"kv_bytes_per_token", kv_bytes_per_token},
          {"kv_block_tokens", kv_block},
          {"attention", kernels::attention_kind_name(attention)},
          {"ctx", ctx},
          {"batch", batch},
          {"precision", std::string(precision_name(precision))},
          {"threads", threads},
          {"predicted_bytes", by_category},
          {"predicted_peak_bytes", predicted_peak},
          {"predicted_decode_tokens_per_s", decode_tps},
          {"predicted_prefill_tokens_per_s", prefill_tps},
          {"predicted_seconds", predicted_seconds},
          {"fits", fits},
          {"pareto", pareto},
          {"summary", summary()}};
}

namespace {

int kv_cost(KvType t) {
  return t == KvType::kQ8_0 ? 1 : t == KvType::kQ4_0 ? 2 : 0;
}

int kv_quality_cost(const KvTypes& kv) {
  return std::max(kv_cost(kv.k), kv_cost(kv.v));
}

// f16 K/V (llama.cpp's default) and quantized K/V for the quantized paths;
// the exact path keeps f32 so it still matches an f32 reference. 4-bit keys
// are not offered unless asked for: on the default model they cost mean KL
// 0.13 against f16 (the keys' outlier channels), 4-bit values only 0.009.
std::vector<KvTypes> kv_choices(const ModelSpec& spec, kernels::Precision precision,
                                const PlanRequest& req) {
  if (req.kv) return {*req.kv};
  std::vector<KvTypes> out = {{KvType::kF32, KvType::kF32}};
  if (precision == kernels::Precision::kExact) return out;
  out.push_back({KvType::kF16, KvType::kF16});
  if (kernels::kv_type_supported(TensorType::Q8_0, spec.head_dim)) {
    out.push_back({KvType::kQ8_0, KvType::kQ8_0});
    out.push_back({KvType::kQ8_0, KvType::kQ4_0});
  }
  return out;
}

std::vector<kernels::AttentionKind> attention_choices(const PlanRequest& req) {
  if (req.attention) return {*req.attention};
  return {kernels::AttentionKind::kFlash, kernels::AttentionKind::kMaterialized};
}

}  // namespace

Planning make_plans(const Model& model, const MachineProfile& prof, const PlanRequest& req) {
  const ModelSpec& spec = model.spec;
  const kernels::Isa isa = kernels::active_isa();
  const kernels::Precision precision = effective_precision(req.precision, isa, model.weights);
  const WeightUnits packed = weight_units(model.weights, precision, isa, true);
  const WeightUnits rows = weight_units(model.weights, precision, isa, false);
  const kernels::InputForms forms = input_forms(model.weights, precision);
  const int64_t n_units = int64_t(packed.units.size());
  const double cached = std::clamp(req.cached_fraction, 0.0, 1.0);
  const double io_gbps = 1.0 / (cached / std::max(0.05, prof.cached_read_gbps) +
                                (1 - cached) / std::max(0.01, prof.disk_read_gbps));
  // The loader's reading (a copy out of the page cache) and repacking are CPU
  // work: when the compute threads already take every CPU, it displaces
  // compute, about its time spread over the threads. Without this a streamed
  // plan of a compute-bound format (q5_0: 1 GB/s) tied with resident weights
  // and won on bytes, measured 10-20% slower.
  const int cpus = req.cpus > 0 ? req.cpus : std::max(1, int(::sysconf(_SC_NPROCESSORS_ONLN)));
  const double loader_cpu_share = req.threads >= cpus ? 1.0 / std::max(1, req.threads) : 0.0;

  std::vector<Candidate> candidates = {{Residency::kResident, 0}, {Residency::kMapped, 0}};
  if (n_units > 1) candidates.push_back({Residency::kMapped, 1});
  for (int64_t k : {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64}) {
    if (k < n_units) candidates.push_back({Residency::kStreamed, k});
  }
  // Between streaming everything and holding everything: a resident prefix.
  std::set<int64_t> prefixes;
  for (int eighth = 1; eighth < 8; ++eighth) prefixes.insert(n_units * eighth / 8);
  for (int64_t r : prefixes) {
    if (r >= 1 && r + 2 <= n_units) candidates.push_back({Residency::kStreamed, 2, r});
  }
  std::set<int64_t> batches = {1};
  for (int64_t b : {req.batch, int64_t(256), int64_t(64), int64_t(16)}) {
    if (b >= 1 && b <= req.batch) batches.insert(std::min(b, req.ctx));
  }
  std::set<int64_t> ctxs = {req.ctx};
  for (int64_t c = req.ctx / 2; c >= std::max<int64_t>(1, req.min_ctx); c /= 2) ctxs.insert(c);
  ctxs.insert(std::max<int64_t>(1, req.min_ctx));

  if (req.force_residency) {
    std::erase_if(candidates, [&](const Candidate& c) {
      return c.residency != req.residency || (req.window >= 0 && c.window != req.window);
    });
    if (candidates.empty()) candidates.push_back({req.residency, std::max<int64_t>(req.window, 1)});
  }
  Planning out;
  for (const Candidate& cand : candidates) {
    const bool mapped = cand.residency == Residency::kMapped;
    const WeightUnits& units = mapped ? rows : packed;
    // Per-token decode time and per-pass prefill costs, from the unit costs.
    double decode_s = 0, compute_tok_s = 0, pass_io_s = 0;
    size_t prefix_bytes = 0, slot_bytes = 0;
    for (size_t i = 0; i < units.units.size(); ++i) {
      const WeightUnit& u = units.units[i];
      const UnitCost c = unit_cost(u, prof, precision, io_gbps, mapped);
      compute_tok_s += c.prefill_s_per_tok;
      const bool held = int64_t(i) < cand.resident_units;
      if (held) {
        prefix_bytes += u.bytes;
      } else {
        slot_bytes = std::max(slot_bytes, u.bytes);
      }
      if (cand.residency == Residency::kResident || (mapped && cand.window == 0) || held) {
        decode_s += c.decode_s;
      } else if (mapped) {
        const double io = c.read_s / kFaultEfficiency;
        decode_s += c.decode_s + io;
        pass_io_s += io;
      } else {
        const double load = (c.read_s + c.pack_s) / kLoaderEfficiency;
        decode_s += cand.window == 1 ? c.decode_s + load
                                     : std::max(c.decode_s + load * loader_cpu_share, load);
        pass_io_s += cand.window == 1 ? load : std::max(0.0, load - c.decode_s);
      }
    }
    decode_s += double(spec.n_layer) * kLayerOverheadSeconds;

    const size_t staging =
        WeightStore::staging_bytes({cand.residency, cand.window, 0, req.precision}, units);
    size_t weights = 0, stream = 0, mapped_bytes = 0;
    if (cand.residency == Residency::kResident)
      weights = AlignedBuffer::footprint(units.total_bytes);
    if (cand.residency == Residency::kStreamed) {
      weights = AlignedBuffer::footprint(prefix_bytes);
      stream = size_t(cand.window) * AlignedBuffer::footprint(slot_bytes) +
               AlignedBuffer::footprint(staging);
    }
    if (mapped) {
      for (const WeightUnit& u : units.units) {
        size_t b = 0;
        for (const UnitMatrix& m : u.matrices) b += m.file_bytes();
        mapped_bytes = cand.window == 0 ? mapped_bytes + b : std::max(mapped_bytes, b);
      }
    }
    for (const KvTypes& kv : kv_choices(spec, precision, req)) {
      for (kernels::AttentionKind attention : attention_choices(req)) {
        const AttentionConfig acfg{attention, req.kv_block};
        for (int64_t ctx : ctxs) {
          for (int64_t batch : batches) {
            if (batch > ctx) continue;
            Plan p;
            p.kv = kv;
            p.kv_block = req.kv_block;
            p.kv_bytes_per_token = KvPool::bytes_per_token(spec, kv);
            p.attention = attention;
            p.residency = cand.residency;
            p.window = cand.window;
            p.resident_units = cand.resident_units;
            p.units = n_units;
            p.ctx = ctx;
            p.batch = batch;
            p.precision = precision;
            p.threads = req.threads;
            auto& b = p.bytes;
            b[size_t(MemCategory::kProcess)] = req.process_bytes;
            b[size_t(MemCategory::kWeights)] = weights;
            b[size_t(MemCategory::kWeightStream)] = stream;
            b[size_t(MemCategory::kWeightsMapped)] = mapped_bytes;
            b[size_t(MemCategory::kKv)] = Session::kv_bytes_for(spec, ctx, kv, req.kv_block);
            b[size_t(MemCategory::kScratch)] =
                Session::scratch_bytes_for(spec, ctx, batch, precision, forms) + req.extra_scratch;
            b[size_t(MemCategory::kAttention)] =
                Session::attention_bytes_for(spec, ctx, batch, req.threads, acfg);
            size_t run = 0;
            for (size_t v : b) run += v;
            // A resident load holds its staging buffer before the session exists.
            const size_t load = req.process_bytes + weights + AlignedBuffer::footprint(staging);
            p.predicted_peak = std::max(run, weights > 0 ? load : 0);
            // Each (query head, cached position) pair costs 4 x head_dim flops
            // per layer: a decoded token has one per position before it, the
            // prompt's causal attention prompt^2 / 2.
            const double prompt = double(std::min<int64_t>(req.workload_prompt, ctx));
            const double mean_pos = std::min(double(ctx), prompt + double(req.workload_gen) / 2);
            const double pair_flops =
                double(spec.n_layer * spec.n_head) * 4.0 * double(spec.head_dim);
            const double threads = double(std::max(1, req.threads));
            const double decode_pair_s = pair_flops / (kDecodeAttentionFlopsPerThread * threads);
            const double prefill_pair_s = pair_flops / (kPrefillAttentionFlopsPerThread * threads);
            const double kv_s =
                double(p.kv_bytes_per_token) * mean_pos / (std::max(1.0, prof.read_gbps) * 1e9);
            p.decode_tps = 1.0 / (decode_s + kv_s + decode_pair_s * mean_pos);
            const double matmul_s =
                double(req.workload_prompt) *
                (compute_tok_s +
                 (pass_io_s + double(spec.n_layer) * kLayerOverheadSeconds) / double(batch));
            const double prefill_s = matmul_s + prefill_pair_s * prompt * prompt / 2;
            p.prefill_tps = double(req.workload_prompt) / std::max(prefill_s, 1e-9);
            p.predicted_seconds = prefill_s + double(req.workload_gen) / p.decode_tps;
            p.fits = p.predicted_peak + headroom_bytes(p.predicted_peak) <= req.budget;
            out.plans.push_back(p);
          }
        }
      }
    }
  }
  std::stable_sort(out.plans.begin(), out.plans.end(), [](const Plan& a, const Plan& b) {
    return a.predicted_peak < b.predicted_peak;
  });
  // Frontier: no other plan is both smaller and faster at decode.
  double best = -1;
  for (Plan& p : out.plans) {
    if (p.ctx != req.ctx) continue;
    if (p.decode_tps > best * 1.001) {
      p.pareto = true;
      best = p.decode_tps;
    }
  }
  if (!out.plans.empty()) out.smallest = 0;  // every ctx enumerated is >= min_ctx
  for (size_t i = 0; i < out.plans.size(); ++i) {
    const Plan& p = out.plans[i];
    if (!p.fits) continue;
    if (out.chosen < 0) {
      out.chosen = int(i);
      continue;
    }
    const Plan& c = out.plans[size_t(out.chosen)];
    // Quantizing K/V costs quality, so a quantized-K/V plan must be predicted
    // 1.5x (q8_0) or 2x (q4_0) faster than one with f16 K/V to win: under a
    // tight budget it beats streaming the weights, otherwise f16 stays.
    auto rank = [](const Plan& x) {
      const double penalty = 1.0 + 0.5 * kv_quality_cost(x.kv);
      return std::make_tuple(x.ctx, -x.predicted_seconds * penalty, -double(x.predicted_peak));
    };
    if (rank(p) > rank(c)) out.chosen = int(i);
  }
  return out;
}

std::string too_small_message(const Model& model, const Planning& p, const PlanRequest& req) {
  std::ostringstream s;
  s << "--mem " << mib(req.budget) << " is too small for " << model.spec.name << " at ctx "
    << req.min_ctx << ": ";
  if (p.smallest < 0) {
    s << "no plan exists";
    return s.str();
  }
  const Plan& m = p.plans[size_t(p.smallest)];
  const size_t need = m.predicted_peak + headroom_bytes(m.predicted_peak);
  s << "the smallest plan needs " << mib(need) << " (weights " << m.weights_text() << ", batch "
    << m.batch << ", ctx " << m.ctx << ": ";
  bool first = true;
  for (size_t c = 0; c < m.bytes.size(); ++c) {
    if (m.bytes[c] == 0) continue;
    s << (first ? "" : ", ") << category_name(MemCategory(c)) << " " << mib(m.bytes[c]);
    first = false;
  }
  s << ", headroom " << mib(need - m.predicted_peak) << ")";
  return s.str();
}

std::string kv_bytes_line(const ModelSpec& spec, int64_t ctx) {
  std::ostringstream s;
  s << "KV bytes per token";
  const char* sep = ": ";
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0, KvType::kQ4_0}) {
    if (!kernels::kv_type_supported(kv_tensor_type(t), spec.head_dim)) continue;
    const size_t per = KvPool::bytes_per_token(spec, {t, t});
    s << sep << kv_type_name(t) << " " << kib(per) << " (" << mib(per * size_t(ctx)) << " at ctx "
      << ctx << ")";
    sep = ", ";
  }
  return s.str();
}

std::string plan_table(const Planning& p, bool all) {
  std::ostringstream s;
  char line[320];
  std::snprintf(line, sizeof line,
                "   %-40s %6s %6s %9s %5s %12s %12s %12s %12s %12s %12s %10s %10s\n", "weights",
                "batch", "ctx", "kv", "attn", "weights", "stream", "mapped", "kv", "attention",
                "peak", "decode/s", "prefill/s");
  s << line;
  for (size_t i = 0; i < p.plans.size(); ++i) {
    const Plan& x = p.plans[i];
    if (!all && !x.pareto && int(i) != p.chosen && int(i) != p.smallest) continue;
    const char* mark = int(i) == p.chosen ? "=>" : x.pareto ? " *" : "  ";
    std::snprintf(
        line, sizeof line,
        "%s %-40s %6lld %6lld %9s %5s %12s %12s %12s %12s %12s %12s %10.1f %10.0f%s\n", mark,
        x.weights_text().c_str(), (long long)x.batch, (long long)x.ctx, x.kv.name().c_str(),
        x.attention == kernels::AttentionKind::kFlash ? "flash" : "mat",
        mib(x.bytes[size_t(MemCategory::kWeights)]).c_str(),
        mib(x.bytes[size_t(MemCategory::kWeightStream)]).c_str(),
        mib(x.bytes[size_t(MemCategory::kWeightsMapped)]).c_str(),
        mib(x.bytes[size_t(MemCategory::kKv)]).c_str(),
        mib(x.bytes[size_t(MemCategory::kAttention)]).c_str(), mib(x.predicted_peak).c_str(),
        x.decode_tps, x.prefill_tps, x.fits ? "" : "  (over budget)");
    s << line;
  }
  s << "=> chosen   * Pareto frontier of (predicted peak, decode tok/s) at the requested ctx\n";
  return s.str();
}

}  // namespace memwall::plan
