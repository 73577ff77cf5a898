// memwall_kv_attention_bench: the measurements of bench/attention.py (issue 5)
// that need the engine's pieces directly. One JSON object on stdout.
//
//   --mode scaling  Attention of one layer of the default model's shape (H 9,
//     Hkv 3, D 64; f16 K/V with random values in a KvPool of 16-token blocks),
//     run as Forward runs it, on --threads threads of a ThreadPool:
//       prefill of n tokens at position 0: items (16-token block, KV head),
//         each token's 3 query heads of that KV head gathered into one block
//         of 48 queries; the materialized scores are H x n x n floats;
//       one decode step at position n (n + 1 keys): items = KV heads, each
//         with its group of 3 query heads as the block's queries (step 0),
//         flash splitting each KV head's keys into parts merged afterwards.
//     (Forward::attention's scheme at commit 18acd8c, mirrored here since it
//     is private: keep the two in step.)
//     For n in 512..8192 and both kernels: the attention bytes
//     Forward::attention_bytes books (prefill: batch n, ctx n; decode: batch 1,
//     ctx n + 1), the bytes this run allocated for them, the median time over
//     --reps repetitions (kernels alternated), and the largest difference
//     between the two kernels' outputs.
//   --mode waste  A seeded mixed-length workload (prompts log-uniform in
//     [16, 2048] tokens, generations log-uniform in [16, 512], a share of the
//     requests forked into 2 samples after the prompt) through KvPools of the
//     default model's shape (30 layers, f16) with at most --slots live
//     sequences. A request starts when slots free up; its prompt is cached in
//     one step, then every live sequence grows by one token per step. After
//     every step: allocated = blocks held by live sequences x block bytes,
//     used = distinct cached positions x bytes per token (a forked prompt
//     counts once), waste = (allocated - used) / allocated. Block sizes 8, 16,
//     32, 64 and contiguous reservation (one block of --max-ctx tokens per
//     sequence). At the end every sequence has ended: blocks_in_use must be 0.
//
// Usage:
//   memwall_kv_attention_bench --mode scaling [--threads 2] [--reps 5] [--min-n 512] [--max-n 8192]
//   memwall_kv_attention_bench --mode waste [--requests 224] [--slots 16] [--max-ctx 4096]
//                              [--fork-share 0.25] [--seed 42]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/aligned_buffer.h"
#include "base/error.h"
#include "base/memory_ledger.h"
#include "base/process_stats.h"
#include "base/splitmix64.h"
#include "base/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/isa.h"
#include "model/forward.h"
#include "model/kv_pool.h"
#include "model/model_spec.h"

namespace memwall {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using kernels::AttentionKind;

constexpr int64_t kPage = 16;        // KV block size of the scaling mode (the engine's default)
constexpr int64_t kQueryBlock = 16;  // Forward's queries per prefill work item
// Forward's flash decode splits each KV head's keys into up to kMaxDecodeParts
// page-aligned parts of at least kMinDecodeKeys keys (model/forward.cpp).
constexpr int64_t kMaxDecodeParts = 8;
constexpr int64_t kMinDecodeKeys = 256;

struct Options {
  std::string mode;
  int threads = 2;
  int reps = 5;
  int64_t min_n = 512, max_n = 8192;
  int requests = 224;
  int slots = 16;
  int64_t max_ctx = 4096;
  double fork_share = 0.25;
  uint64_t seed = 42;
};

// SmolLM2-135M (the default model): C 576, F 1536, H 9, Hkv 3, D 64, V 49152.
ModelSpec default_shape(int64_t n_layer) {
  ModelSpec s;
  s.architecture = "llama";
  s.name = "SmolLM2-135M shape";
  s.n_embd = 576;
  s.n_ff = 1536;
  s.n_layer = n_layer;
  s.n_head = 9;
  s.n_head_kv = 3;
  s.head_dim = 64;
  s.n_rot = 64;
  s.n_vocab = 49152;
  s.n_ctx_train = 8192;
  return s;
}

double uniform01(SplitMix64& r) {
  return double(r.next() >> 11) * 0x1.0p-53;
}
float uniform_pm1(SplitMix64& r) {
  return float(uniform01(r) * 2.0 - 1.0);
}

double seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

json spread(std::vector<double> v) {
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  return {{"median", median}, {"min", sorted.front()}, {"max", sorted.back()}, {"samples", v}};
}

// ---------------------------------------------------------------- scaling

// Forward's buffers for a batch of B tokens: per thread, the kernel's scratch for
// score_rows = min(B, 16) x group queries and the prefill's gathered queries and
// outputs (2 x score_rows x D); materialized: the H x B x ctx scores; flash: the
// split decode's partial rows, maxima and sums.
struct AttentionBuffers {
  std::vector<AlignedBuffer> scratch;  // per thread: kernel scratch, then gathered q and out
  AlignedBuffer scores;                // materialized only: [KV head][query x head][key]
  AlignedBuffer partial;               // flash only
  int64_t rows = 0;
  size_t kernel_floats = 0;
  size_t bytes = 0;

  AttentionBuffers(AttentionKind kind, int threads, const ModelSpec& s, int64_t B, int64_t ctx) {
    const int64_t group = s.n_head / s.n_head_kv;
    rows = std::min(B, kQueryBlock) * group;
    kernel_floats = kernels::attention_scratch_floats(kind, rows, kPage, s.head_dim);
    const size_t per_thread = (kernel_floats + size_t(2 * rows * s.head_dim)) * sizeof(float);
    for (int t = 0; t < threads; ++t) scratch.emplace_back(per_thread);
    bytes = size_t(threads) * per_thread;
    if (kind == AttentionKind::kMaterialized) {
      scores = AlignedBuffer(size_t(s.n_head) * size_t(B) * size_t(ctx) * sizeof(float));
      bytes += scores.size();
    } else {
      partial =
          AlignedBuffer(size_t(s.n_head * kMaxDecodeParts * (s.head_dim + 2)) * sizeof(float));
      bytes += partial.size();
    }
  }
  float* thread_scratch(int t) { return reinterpret_cast<float*>(scratch[size_t(t)].data()); }
  float* thread_gather(int t) { return thread_scratch(t) + kernel_floats; }
  float* score_base() { return scores.size() ? reinterpret_cast<float*>(scores.data()) : nullptr; }
  float* partial_base() { return reinterpret_cast<float*>(partial.data()); }
};

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

double max_abs(const std::vector<float>& a) {
  double m = 0.0;
  for (float x : a) m = std::max(m, double(std::fabs(x)));
  return m;
}

json scaling_point(const Options& o, int64_t n, ThreadPool& pool) {
  const ModelSpec s = default_shape(1);
  const int64_t H = s.n_head, D = s.head_dim, Q = s.q_dim(), KV = s.kv_dim();
  const int64_t group = s.n_head / s.n_head_kv;
  const kernels::AttentionKernels k = kernels::attention_kernels(kernels::active_isa());
  const float scale = 1.0f / std::sqrt(float(D));

  // One sequence of n + 1 positions: the prefill's n and the decode step's one.
  MemoryLedger ledger;
  KvPool kv(s, {KvTypes{KvType::kF16, KvType::kF16}, kPage, (n + 1 + kPage - 1) / kPage}, ledger);
  const KvPool::SeqId seq = kv.create();
  SplitMix64 rng{0x6b76ull * 1000003ull + uint64_t(n)};
  kv.prepare(seq, n + 1);
  std::vector<float> krow(static_cast<size_t>(KV)), vrow(static_cast<size_t>(KV));
  std::vector<int32_t> tokens(size_t(n + 1));
  for (int64_t pos = 0; pos <= n; ++pos) {
    for (auto& x : krow) x = uniform_pm1(rng);
    for (auto& x : vrow) x = uniform_pm1(rng);
    kv.store(seq, 0, pos, krow.data(), vrow.data());
    tokens[size_t(pos)] = int32_t(pos % 1000);
  }
  kv.commit(seq, tokens.data(), n + 1);
  std::vector<kernels::PagedKv> views;
  for (int64_t g = 0; g < s.n_head_kv; ++g) views.push_back(kv.view(seq, 0, g));

  std::vector<float> q(static_cast<size_t>(n * Q)), q_dec(static_cast<size_t>(Q));
  for (auto& x : q) x = uniform_pm1(rng);
  for (auto& x : q_dec) x = uniform_pm1(rng);

  auto block = [&](const float* qp, int64_t stride, int64_t nq, int64_t first_pos, int64_t step,
                   int64_t kvh, float* out) {
    kernels::AttentionBlock b;
    b.q = qp;
    b.q_stride = stride;
    b.nq = nq;
    b.first_pos = first_pos;
    b.step = step;
    b.kv = views[size_t(kvh)];
    b.head_dim = D;
    b.scale = scale;
    b.out = out;
    b.out_stride = stride;
    return b;
  };

  // Prefill of n tokens at position 0, as Forward::attention with max_batch = max_ctx = n:
  // items (16-token block, KV head), the block's tokens x the KV head's query heads
  // gathered into one block of nt x group queries (heads = group), so each K/V page
  // is read once per group.
  const int64_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
  auto prefill = [&](AttentionKind kind, AttentionBuffers& buf, std::vector<float>& out) {
    pool.parallel_for(blocks * s.n_head_kv, [&](int64_t begin, int64_t end, int thread) {
      float* qg = buf.thread_gather(thread);
      float* og = qg + buf.rows * D;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t t0 = (i / s.n_head_kv) * kQueryBlock, g = i % s.n_head_kv;
        const int64_t nt = std::min(kQueryBlock, n - t0);
        for (int64_t t = 0; t < nt; ++t) {
          std::memcpy(qg + t * group * D, q.data() + (t0 + t) * Q + g * group * D,
                      size_t(group * D) * sizeof(float));
        }
        kernels::AttentionBlock b = block(qg, D, nt * group, t0, 1, g, og);
        b.heads = group;
        float* scores = buf.score_base();
        if (scores) scores += (size_t(g) * size_t(group * n) + size_t(t0 * group)) * size_t(n);
        kernels::attend(kind, b, buf.thread_scratch(thread), scores, k);
        for (int64_t t = 0; t < nt; ++t) {
          std::memcpy(out.data() + (t0 + t) * Q + g * group * D, og + t * group * D,
                      size_t(group * D) * sizeof(float));
        }
      }
    });
  };
  // One decode step at position n, as Forward::attention with T = 1: one item
  // per KV head with its query heads as the block (materialized, or flash on
  // few keys); flash with enough keys splits each KV head's keys into parts
  // and merges their partial results.
  const int64_t ctx_dec = n + 1;
  const int64_t decode_parts = std::clamp<int64_t>(
      ctx_dec / kMinDecodeKeys, 1,
      std::min(kMaxDecodeParts, (4 * int64_t(pool.size()) + s.n_head_kv - 1) / s.n_head_kv));
  auto decode = [&](AttentionKind kind, AttentionBuffers& buf, std::vector<float>& out) {
    if (kind == AttentionKind::kFlash && decode_parts > 1) {
      const int64_t parts = decode_parts;
      const int64_t chunk = ((ctx_dec + parts - 1) / parts + kPage - 1) / kPage * kPage;
      float* part_out = buf.partial_base();
      float* mx = part_out + H * parts * D;
      float* sum = mx + H * parts;
      pool.parallel_for(s.n_head_kv * parts, [&](int64_t begin, int64_t end, int thread) {
        for (int64_t item = begin; item < end; ++item) {
          const int64_t g = item / parts, c = item % parts;
          kernels::AttentionBlock b =
              block(q_dec.data() + g * group * D, D, group, n, 0, g, part_out + item * group * D);
          b.key_begin = c * chunk;
          b.key_end = (c + 1) * chunk;
          b.partial_max = mx + item * group;
          b.partial_sum = sum + item * group;
          kernels::attend(kind, b, buf.thread_scratch(thread), nullptr, k);
        }
      });
      for (int64_t g = 0; g < s.n_head_kv; ++g) {
        kernels::merge_partials(part_out + g * parts * group * D, mx + g * parts * group,
                                sum + g * parts * group, parts, group, D,
                                out.data() + g * group * D, D);
      }
      return;
    }
    pool.parallel_for(s.n_head_kv, [&](int64_t begin, int64_t end, int thread) {
      for (int64_t g = begin; g < end; ++g) {
        const kernels::AttentionBlock b =
            block(q_dec.data() + g * group * D, D, group, n, 0, g, out.data() + g * group * D);
        float* scores = buf.score_base();
        if (scores) scores += size_t(g * group) * size_t(ctx_dec);
        kernels::attend(kind, b, buf.thread_scratch(thread), scores, k);
      }
    });
  };

  const AttentionKind kinds[2] = {AttentionKind::kFlash, AttentionKind::kMaterialized};
  json point = {{"n", n}};
  // Causal multiply-adds x 2: QK^T and PV over the keys each query sees.
  const double prefill_flop = 4.0 * double(H * D) * double(n) * double(n + 1) / 2.0;
  const double decode_flop = 4.0 * double(H * D) * double(ctx_dec);
  point["prefill_gflop"] = prefill_flop * 1e-9;
  point["kv_bytes_one_layer"] = size_t(n) * KvPool::bytes_per_token(s, kv.types());
  point["kv_bytes_model"] = size_t(n) * KvPool::bytes_per_token(default_shape(30), kv.types());

  // Prefill.
  {
    std::vector<float> out[2] = {std::vector<float>(size_t(n * Q)),
                                 std::vector<float>(size_t(n * Q))};
    // Allocated once, as a Forward for this batch and context does (the first repetition
    // also pays the page faults of the score matrix).
    std::vector<AttentionBuffers> bufs;
    for (AttentionKind kind : kinds) {
      bufs.emplace_back(kind, pool.size(), s, n, n);
    }
    std::vector<double> times[2];
    for (int r = 0; r < o.reps; ++r) {
      for (int j = 0; j < 2; ++j) {
        const int kj = r % 2 ? 1 - j : j;  // alternate which kernel runs first
        const auto t0 = Clock::now();
        prefill(kinds[kj], bufs[size_t(kj)], out[kj]);
        times[kj].push_back(seconds(t0));
      }
    }
    for (int j = 0; j < 2; ++j) {
      const AttentionConfig cfg{kinds[j], kPage};
      json& e = point["prefill"][kernels::attention_kind_name(kinds[j])];
      e["planned_bytes"] = Forward::attention_bytes(s, n, n, pool.size(), cfg);
      e["allocated_bytes"] = bufs[size_t(j)].bytes;
      e["seconds"] = spread(times[j]);
      e["gflops"] = prefill_flop * 1e-9 / spread(times[j])["median"].get<double>();
    }
    point["prefill"]["max_abs_diff"] = max_abs_diff(out[0], out[1]);
    point["prefill"]["max_abs_output"] = max_abs(out[1]);
  }

  // Decode: each repetition times `inner` back-to-back steps, so short ones are measurable.
  {
    std::vector<float> out[2] = {std::vector<float>(size_t(Q)), std::vector<float>(size_t(Q))};
    std::vector<AttentionBuffers> bufs;
    for (AttentionKind kind : kinds) {
      bufs.emplace_back(kind, pool.size(), s, 1, ctx_dec);
    }
    int inner = 1;
    {
      const auto t0 = Clock::now();
      decode(kinds[0], bufs[0], out[0]);
      inner = int(std::clamp(0.02 / std::max(seconds(t0), 1e-7), 1.0, 20000.0));
    }
    std::vector<double> times[2];
    const int reps = std::max(o.reps, 9);
    for (int r = 0; r < reps; ++r) {
      for (int j = 0; j < 2; ++j) {
        const int kj = r % 2 ? 1 - j : j;
        const auto t0 = Clock::now();
        for (int i = 0; i < inner; ++i) decode(kinds[kj], bufs[size_t(kj)], out[kj]);
        times[kj].push_back(seconds(t0) / inner);
      }
    }
    for (int j = 0; j < 2; ++j) {
      const AttentionConfig cfg{kinds[j], kPage};
      json& e = point["decode"][kernels::attention_kind_name(kinds[j])];
      e["planned_bytes"] = Forward::attention_bytes(s, 1, ctx_dec, pool.size(), cfg);
      e["allocated_bytes"] = bufs[size_t(j)].bytes;
      e["seconds"] = spread(times[j]);
      e["gflops"] = decode_flop * 1e-9 / spread(times[j])["median"].get<double>();
    }
    point["decode"]["position"] = n;
    point["decode"]["keys"] = ctx_dec;
    point["decode"]["calls_per_sample"] = inner;
    point["decode"]["flash_key_parts"] = decode_parts;
    point["decode"]["max_abs_diff"] = max_abs_diff(out[0], out[1]);
    point["decode"]["max_abs_output"] = max_abs(out[1]);
  }
  kv.release(seq);
  return point;
}

json run_scaling(const Options& o) {
  ThreadPool pool(o.threads);
  const ModelSpec s = default_shape(1);
  json out = {
      {"mode", "scaling"},
      {"isa", std::string(kernels::isa_name(kernels::active_isa()))},
      {"threads", pool.size()},
      {"reps", o.reps},
      {"kv_type", "f16"},
      {"kv_block_tokens", kPage},
      {"query_block", kQueryBlock},
      {"shape", {{"n_head", s.n_head}, {"n_head_kv", s.n_head_kv}, {"head_dim", s.head_dim}}}};
  for (int64_t n = o.min_n; n <= o.max_n; n *= 2) {
    const auto t0 = Clock::now();
    out["points"].push_back(scaling_point(o, n, pool));
    std::fprintf(stderr, "[kv_attention_bench] scaling n=%lld done (%.1f s)\n", (long long)n,
                 seconds(t0));
  }
  out["peak_rss_bytes"] = peak_rss_bytes();
  return out;
}

// ---------------------------------------------------------------- waste

struct Request {
  int64_t prompt;
  int samples;  // 1, or 2 (forked after the prompt)
  int64_t gen[2];
};

std::vector<Request> make_workload(const Options& o) {
  SplitMix64 rng{o.seed};
  auto log_uniform = [&](double lo, double hi) {
    return int64_t(std::lround(std::exp(std::log(lo) + uniform01(rng) * std::log(hi / lo))));
  };
  std::vector<Request> work;
  for (int i = 0; i < o.requests; ++i) {
    Request r;
    r.prompt = std::min<int64_t>(log_uniform(16, 2048), o.max_ctx - 16);
    r.samples = uniform01(rng) < o.fork_share ? 2 : 1;
    for (int64_t& g : r.gen) g = std::min(log_uniform(16, 512), o.max_ctx - r.prompt);
    work.push_back(r);
  }
  return work;
}

json stats_json(const KvPool::Stats& st) {
  return {{"blocks_allocated", st.blocks_allocated},
          {"blocks_in_use", st.blocks_in_use},
          {"blocks_cached", st.blocks_cached},
          {"live_sequences", st.live_sequences},
          {"positions", st.positions},
          {"prefix_hits", st.prefix_hits},
          {"cow_copies", st.cow_copies},
          {"evictions", st.evictions}};
}

json waste_run(const Options& o, const std::vector<Request>& work, int64_t block_tokens,
               const char* label) {
  const ModelSpec s = default_shape(30);
  const KvTypes types{KvType::kF16, KvType::kF16};
  const double bpt = double(KvPool::bytes_per_token(s, types));
  // Capacity: what contiguous reservation of every slot would hold.
  const int64_t capacity = int64_t(o.slots) * ((o.max_ctx + block_tokens - 1) / block_tokens);
  MemoryLedger ledger;
  json run = {{"label", label}, {"block_tokens", block_tokens}, {"capacity_blocks", capacity}};
  const auto t_start = Clock::now();
  {
    KvPool kv(s, {types, block_tokens, capacity}, ledger);
    const double block_bytes = double(kv.block_bytes());
    run["block_bytes"] = kv.block_bytes();
    struct Live {
      KvPool::SeqId id;
      size_t req;
      int64_t len, target;
    };
    std::vector<Live> live;
    std::vector<int> members(work.size(), 0);  // live sequences of each request
    SplitMix64 tok_rng{o.seed ^ 0x746f6b656e73ull};
    std::vector<int32_t> prompt;
    size_t next = 0;
    int64_t steps = 0, sequences = 0, forks = 0, fork_shared_blocks = 0, positions_mismatch = 0;
    int64_t steady_steps = 0;
    double sum_alloc = 0, sum_used = 0, sum_held = 0, sum_step_waste = 0;
    double peak_alloc = 0, waste_at_peak = 0, peak_used = 0, peak_held = 0;
    double max_waste_steady = 0, max_waste_any = 0;
    int64_t peak_shared_blocks = 0, peak_live = 0;
    while (next < work.size() || !live.empty()) {
      // Admit requests while their samples fit in the free slots.
      while (next < work.size() && int(live.size()) + work[next].samples <= o.slots) {
        const Request& r = work[next];
        const KvPool::SeqId id = kv.create();
        prompt.resize(size_t(r.prompt));
        for (int32_t& t : prompt) t = int32_t(tok_rng.next() % uint64_t(s.n_vocab));
        kv.prepare(id, r.prompt);
        kv.commit(id, prompt.data(), r.prompt);
        live.push_back({id, next, r.prompt, r.prompt + r.gen[0]});
        members[next] = 1;
        ++sequences;
        if (r.samples == 2) {
          live.push_back({kv.fork(id), next, r.prompt, r.prompt + r.gen[1]});
          members[next] = 2;
          ++sequences;
          ++forks;
          fork_shared_blocks += kv.blocks_for(r.prompt);
        }
        ++next;
      }
      // Every live sequence that has tokens left generates one.
      for (Live& l : live) {
        if (l.len >= l.target) continue;
        const int32_t t = int32_t(tok_rng.next() % uint64_t(s.n_vocab));
        kv.prepare(l.id, 1);
        kv.commit(l.id, &t, 1);
        ++l.len;
      }
      // Measure.
      const KvPool::Stats st = kv.stats();
      int64_t used_tokens = 0, held_positions = 0, shared_blocks = 0;
      for (const Live& l : live) {
        held_positions += l.len;
        used_tokens += l.len;
      }
      for (size_t i = 0; i < live.size(); ++i) {  // a forked prompt is cached once
        const Live& l = live[i];
        if (members[l.req] == 2 && (i == 0 || live[i - 1].req != l.req)) {
          used_tokens -= work[l.req].prompt;
          shared_blocks += work[l.req].prompt / block_tokens;  // full blocks; the partial one COWs
        }
      }
      if (held_positions != st.positions) ++positions_mismatch;
      const double alloc = double(st.blocks_in_use) * block_bytes;
      const double held = double(st.blocks_allocated) * block_bytes;
      const double used = double(used_tokens) * bpt;
      const double waste = alloc > 0 ? (alloc - used) / alloc : 0.0;
      sum_alloc += alloc, sum_used += used, sum_held += held, sum_step_waste += waste;
      if (alloc > peak_alloc) peak_alloc = alloc, waste_at_peak = waste;
      peak_used = std::max(peak_used, used);
      peak_held = std::max(peak_held, held);
      peak_shared_blocks = std::max(peak_shared_blocks, shared_blocks);
      peak_live = std::max<int64_t>(peak_live, int64_t(live.size()));
      max_waste_any = std::max(max_waste_any, waste);
      if (int(live.size()) * 2 >= o.slots) {
        max_waste_steady = std::max(max_waste_steady, waste);
        ++steady_steps;
      }
      ++steps;
      // Sequences that generated all their tokens end.
      for (size_t i = 0; i < live.size();) {
        if (live[i].len >= live[i].target) {
          kv.release(live[i].id);
          --members[live[i].req];
          live.erase(live.begin() + std::ptrdiff_t(i));
        } else {
          ++i;
        }
      }
    }
    const KvPool::Stats end = kv.stats();
    run["steps"] = steps;
    run["steady_steps"] = steady_steps;
    run["sequences"] = sequences;
    run["forks"] = forks;
    run["peak_live_sequences"] = peak_live;
    run["waste_time_avg"] = sum_alloc > 0 ? (sum_alloc - sum_used) / sum_alloc : 0.0;
    run["waste_mean_of_steps"] = sum_step_waste / double(steps);
    run["waste_at_peak_alloc"] = waste_at_peak;
    run["waste_max_steady"] = max_waste_steady;  // steps with at least half the slots live
    run["waste_max_any_step"] = max_waste_any;
    run["avg_alloc_bytes"] = sum_alloc / double(steps);
    run["avg_used_bytes"] = sum_used / double(steps);
    run["peak_alloc_bytes"] = peak_alloc;
    run["peak_used_bytes"] = peak_used;
    // Blocks held including the LRU prefix cache (freed full blocks kept for reuse, evicted
    // on demand): bounded by the capacity.
    run["avg_held_incl_cache_bytes"] = sum_held / double(steps);
    run["peak_held_incl_cache_bytes"] = peak_held;
    run["fork_shared_blocks_at_fork"] = fork_shared_blocks;
    run["peak_shared_blocks"] = peak_shared_blocks;
    run["positions_mismatch_steps"] = positions_mismatch;
    run["end"] = stats_json(end);
    run["ledger_kv_peak_bytes"] = ledger.peak(MemCategory::kKv);
    run["ledger_kv_bytes_at_end"] = ledger.used(MemCategory::kKv);
    run["blocks_in_use_at_end"] = end.blocks_in_use;
    run["leak_free"] = end.blocks_in_use == 0 && end.live_sequences == 0 && end.positions == 0;
  }
  run["ledger_kv_bytes_after_pool"] = ledger.used(MemCategory::kKv);
  run["seconds"] = seconds(t_start);
  std::fprintf(stderr,
               "[kv_attention_bench] waste %-10s avg %.2f%%  at peak %.2f%%  blocks_in_use at "
               "end %lld\n",
               label, 100.0 * run["waste_time_avg"].get<double>(),
               100.0 * run["waste_at_peak_alloc"].get<double>(),
               (long long)run["blocks_in_use_at_end"].get<int64_t>());
  return run;
}

json run_waste(const Options& o) {
  const std::vector<Request> work = make_workload(o);
  const ModelSpec s = default_shape(30);
  std::vector<double> prompts, gens;
  int64_t sequences = 0;
  for (const Request& r : work) {
    prompts.push_back(double(r.prompt));
    for (int i = 0; i < r.samples; ++i) gens.push_back(double(r.gen[i]));
    sequences += r.samples;
  }
  auto summary = [](std::vector<double> v) {
    double mean = 0;
    for (double x : v) mean += x;
    mean /= double(v.size());
    json j = spread(v);
    j.erase("samples");
    j["mean"] = mean;
    return j;
  };
  json out = {{"mode", "waste"},
              {"seed", o.seed},
              {"requests", o.requests},
              {"sequences", sequences},
              {"slots", o.slots},
              {"max_ctx", o.max_ctx},
              {"fork_share", o.fork_share},
              {"kv_type", "f16"},
              {"bytes_per_token", KvPool::bytes_per_token(s, {KvType::kF16, KvType::kF16})},
              {"prompt_tokens", summary(prompts)},
              {"generated_tokens", summary(gens)}};
  for (int64_t bt : {8, 16, 32, 64}) {
    out["runs"].push_back(waste_run(o, work, bt, ("paged-" + std::to_string(bt)).c_str()));
  }
  out["runs"].push_back(waste_run(o, work, o.max_ctx, "contiguous"));
  out["peak_rss_bytes"] = peak_rss_bytes();
  return out;
}

// ---------------------------------------------------------------- main

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "error: %s\nusage: memwall_kv_attention_bench --mode scaling|waste [--threads N] "
               "[--reps N] [--min-n N] [--max-n N] [--requests N] [--slots N] [--max-ctx N] "
               "[--fork-share X] [--seed N]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--mode") {
      o.mode = value();
    } else if (a == "--threads") {
      o.threads = std::stoi(value());
    } else if (a == "--reps") {
      o.reps = std::stoi(value());
    } else if (a == "--min-n") {
      o.min_n = std::stoll(value());
    } else if (a == "--max-n") {
      o.max_n = std::stoll(value());
    } else if (a == "--requests") {
      o.requests = std::stoi(value());
    } else if (a == "--slots") {
      o.slots = std::stoi(value());
    } else if (a == "--max-ctx") {
      o.max_ctx = std::stoll(value());
    } else if (a == "--fork-share") {
      o.fork_share = std::stod(value());
    } else if (a == "--seed") {
      o.seed = std::stoull(value());
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  if (o.mode != "scaling" && o.mode != "waste") usage("--mode must be scaling or waste");
  if (o.threads < 1 || o.reps < 1 || o.min_n < 1 || o.max_n < o.min_n || o.requests < 1 ||
      o.slots < 2 || o.max_ctx < 64) {
    usage("an option is out of range");
  }
  return o;
}

}  // namespace
}  // namespace memwall

int main(int argc, char** argv) {
  try {
    const memwall::Options o = memwall::parse(argc, argv);
    const nlohmann::json out =
        o.mode == "scaling" ? memwall::run_scaling(o) : memwall::run_waste(o);
    std::cout << out.dump(2) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
