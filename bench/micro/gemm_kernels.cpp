// GEMM micro-kernels (kernels/gemm.h) on Llama-3.2-1B-sized matrices, one
// benchmark per (format, kernel ISA, shape, T):
//   - shapes 2048 x 8192 (FFN down: rows x cols) and 8192 x 2048 (FFN gate/up);
//   - T = 1 (decode, memory-bound): counter weight_GBps = bytes of W read per second;
//     on one thread and on two (rows split across a memwall ThreadPool, as decode does);
//   - T = 64 and 256 (prefill tiles, compute-bound): counter GFLOPs = 2*R*n*T per second.
// Each kernel is called on the whole matrix in one tile call (the driver's
// row/token blocking is not what is measured here). Weights rotate through
// copies totalling >= 256 MiB so every call streams W from DRAM as decode does
// (one 1B matrix in q4_0 is 9 MiB and would otherwise sit in the 32 MiB L3).
// Every supported ISA is forced in turn (kernels::force_isa); a target with no
// kernel of its own for a format falls back to a lower one, which is listed once.
#include <benchmark/benchmark.h>

#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "format/tensor_type.h"
#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/packed_weights.h"
#include "kernels/weight_format.h"
#include "micro_common.h"

namespace memwall::bench {
namespace {

using kernels::ActivationKind;
using kernels::BlockQ8x;
using kernels::GemmKernel;
using kernels::Isa;

constexpr size_t kRotateBytes = size_t(256) << 20;

struct Shape {
  int64_t rows, cols;
};

// Rotating copies of one random R x n matrix in one format, plus its input.
struct Workload {
  TensorType type;
  Shape shape;
  kernels::WeightLayout layout;
  size_t row_bytes = 0, matrix_bytes = 0;
  size_t stride = 0;  // row_bytes, or a packed group's bytes
  int copies = 0;
  Buffer weights;
  std::vector<float> x;  // [256 x cols]
  std::vector<BlockQ8x> xq;
  std::vector<kernels::BlockQ16x> xq16;
  std::vector<uint8_t> xrows;  // per-token int8 records (w8a8)
  const uint8_t* matrix(int i) const { return weights.get() + size_t(i) * matrix_bytes; }
};

// Only the workload of the benchmark running now is kept (they run in
// registration order, grouped by format and shape), so memory stays bounded.
Workload* workload(TensorType type, Shape shape, kernels::WeightLayout layout) {
  static std::unique_ptr<Workload> current;
  if (current && current->type == type && current->shape.rows == shape.rows &&
      current->shape.cols == shape.cols && current->layout == layout) {
    return current.get();
  }
  current.reset();
  const kernels::WeightCodec* codec = kernels::find_codec(type);
  if (!codec) return nullptr;
  auto w = std::make_unique<Workload>();
  w->type = type;
  w->shape = shape;
  w->layout = layout;
  w->row_bytes = row_bytes(type, uint64_t(shape.cols));
  w->matrix_bytes = w->row_bytes * size_t(shape.rows);
  w->stride = w->row_bytes;
  const bool packed = layout == kernels::WeightLayout::kPacked16;
  const kernels::PackedShape ps =
      kernels::packed_shape(packed ? type : TensorType::Q8_0, shape.rows, shape.cols);
  if (packed) w->matrix_bytes = ps.total_bytes();
  w->copies = int(std::max<size_t>(2, (kRotateBytes + w->matrix_bytes - 1) / w->matrix_bytes));
  w->weights = alloc_buffer(w->matrix_bytes * size_t(w->copies));
  if (!w->weights) return nullptr;
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> row(size_t(shape.cols));
  std::vector<uint8_t> rows(w->row_bytes * size_t(shape.rows));
  for (int64_t r = 0; r < shape.rows; ++r) {
    for (float& v : row) v = normal(rng);
    codec->quantize_row(row.data(), rows.data() + size_t(r) * w->row_bytes, shape.cols);
  }
  if (packed) {
    kernels::pack_groups(type, rows.data(), w->row_bytes, shape.rows, shape.cols, 0, ps.groups,
                         w->weights.get());
    w->stride = ps.group_bytes;
  } else {
    std::memcpy(w->weights.get(), rows.data(), rows.size());
  }
  for (int i = 1; i < w->copies; ++i) {
    std::memcpy(w->weights.get() + size_t(i) * w->matrix_bytes, w->weights.get(), w->matrix_bytes);
  }
  std::normal_distribution<float> act(0.0f, 1.0f);
  constexpr int64_t kMaxT = 256;
  w->x.resize(size_t(kMaxT * shape.cols));
  for (float& v : w->x) v = act(rng);
  const int64_t blocks = shape.cols / 32;
  w->xq.resize(size_t(kMaxT * blocks));
  w->xq16.resize(size_t(kMaxT * blocks));
  const size_t row_stride = kernels::q8_row_stride(shape.cols);
  w->xrows.resize(size_t(kMaxT) * row_stride);
  for (int64_t t = 0; t < kMaxT; ++t) {
    kernels::quantize_activations_q8_row(w->x.data() + t * shape.cols,
                                         w->xrows.data() + size_t(t) * row_stride, shape.cols);
    kernels::quantize_activations_q8(w->x.data() + t * shape.cols, w->xq.data() + t * blocks,
                                     shape.cols);
    kernels::quantize_activations_q16(w->x.data() + t * shape.cols, w->xq16.data() + t * blocks,
                                      shape.cols);
  }
  current = std::move(w);
  return current.get();
}

ThreadPool& pool_of(int threads) {
  static std::unique_ptr<ThreadPool> pools[3];
  if (!pools[threads]) pools[threads] = std::make_unique<ThreadPool>(threads);
  return *pools[threads];
}

struct Case {
  kernels::WeightLayout layout;
  ActivationKind act;  // for quantized formats: kQ8, or kQ16 (packed only)
  TensorType type;
  Isa isa;  // the target forced while the kernel runs
  Shape shape;
  int64_t T;
  int threads;
};

void BM_Gemm(benchmark::State& state, Case c) {
  kernels::force_isa(c.isa);
  const GemmKernel* k = kernels::find_gemm_kernel(c.type, c.isa, c.layout, c.act);
  Workload* w = k ? workload(c.type, c.shape, c.layout) : nullptr;
  if (!k || !w) {
    state.SkipWithError(k ? "cannot allocate the weights" : "no kernel for this format");
    kernels::reset_isa();
    return;
  }
  const int64_t R = c.shape.rows, n = c.shape.cols, T = c.T;
  const bool q8 = k->activation == ActivationKind::kQ8;
  const bool q16 = k->activation == ActivationKind::kQ16;
  const bool q8_row = k->activation == ActivationKind::kQ8Row;
  const auto* x = q8       ? reinterpret_cast<const uint8_t*>(w->xq.data())
                  : q16    ? reinterpret_cast<const uint8_t*>(w->xq16.data())
                  : q8_row ? w->xrows.data()
                           : reinterpret_cast<const uint8_t*>(w->x.data());
  const size_t x_stride = q8       ? size_t(n / 32) * sizeof(BlockQ8x)
                          : q16    ? size_t(n / 32) * sizeof(kernels::BlockQ16x)
                          : q8_row ? kernels::q8_row_stride(n)
                                   : size_t(n) * sizeof(float);
  std::vector<float> y(size_t(T * R));
  ThreadPool* pool = c.threads > 1 ? &pool_of(c.threads) : nullptr;
  int copy = 0;
  const uint8_t* wm = nullptr;
  // Two threads: each takes a contiguous half of the rows (in 16-row units).
  const bool packed = c.layout == kernels::WeightLayout::kPacked16;
  const std::function<void(int64_t, int64_t, int)> split = [&](int64_t b, int64_t e, int) {
    const int64_t r0 = b * 16, r1 = std::min(R, e * 16);
    const size_t offset = packed ? size_t(b) * w->stride : size_t(r0) * w->row_bytes;
    k->tile(wm + offset, w->stride, r1 - r0, x, x_stride, T, n, y.data() + r0, R);
  };
  for (auto _ : state) {
    wm = w->matrix(copy);
    if (++copy == w->copies) copy = 0;
    if (pool) {
      pool->parallel_for((R + 15) / 16, split, 1);
    } else {
      k->tile(wm, w->stride, R, x, x_stride, T, n, y.data(), R);
    }
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(y.data());
  const double iters = double(state.iterations());
  state.counters["weight_GBps"] =
      benchmark::Counter(double(w->matrix_bytes) * iters / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOPs"] = benchmark::Counter(
      2.0 * double(R) * double(n) * double(T) * iters / 1e9, benchmark::Counter::kIsRate);
  state.counters["T"] = double(T);
  state.counters["threads"] = c.threads;
  state.SetLabel(std::string(tensor_type_name(c.type)) + " " +
                 std::string(kernels::isa_name(k->isa)) + (packed ? " packed16" : "") +
                 (q8       ? " q8-activations"
                  : q16    ? " q16-activations"
                  : q8_row ? " q8-per-token-activations"
                           : " f32-activations"));
  kernels::reset_isa();
}

}  // namespace

void register_gemm_benchmarks() {
  const TensorType types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16,
                              TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1,
                              TensorType::W8A8, TensorType::Q5_0, TensorType::Q5_1};
  const Isa isas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni};
  const Shape shapes[] = {{2048, 8192}, {8192, 2048}};
  using kernels::WeightLayout;
  struct Variant {
    WeightLayout layout;
    ActivationKind act;
    const char* suffix;
  };
  // w8a8 rows meet only per-token int8 activations (kQ8Row); the others
  // skip that variant and w8a8 skips theirs.
  const Variant variants[] = {{WeightLayout::kRows, ActivationKind::kQ8, ""},
                              {WeightLayout::kRows, ActivationKind::kQ8Row, ""},
                              {WeightLayout::kRows, ActivationKind::kQ16, "-q16"},
                              {WeightLayout::kPacked16, ActivationKind::kQ8, "-packed16"},
                              {WeightLayout::kPacked16, ActivationKind::kQ16, "-packed16-q16"}};
  for (const Variant& v : variants) {
    for (TensorType type : types) {
      if (v.layout == WeightLayout::kPacked16 && !kernels::packable(type)) continue;
      const bool w8a8 = type == TensorType::W8A8;
      if (w8a8 != (v.act == ActivationKind::kQ8Row)) continue;
      for (Shape shape : shapes) {
        // Distinct kernels for this format, the lowest forced target naming each.
        std::vector<std::pair<Isa, const GemmKernel*>> kernels_seen;
        for (Isa isa : isas) {
          if (!kernels::isa_supported(isa)) continue;
          const GemmKernel* k = kernels::find_gemm_kernel(type, isa, v.layout, v.act);
          if (!k) continue;
          bool dup = false;
          for (auto& [i, seen] : kernels_seen) dup |= seen == k;
          if (!dup) kernels_seen.emplace_back(isa, k);
        }
        for (auto& [isa, k] : kernels_seen) {
          for (int64_t T : {int64_t(1), int64_t(64), int64_t(256)}) {
            for (int threads : {1, 2}) {
              if (threads == 2 && T != 1) continue;  // prefill tiles: single-threaded
              const std::string name = "gemm/" + std::string(tensor_type_name(type)) + v.suffix +
                                       "/" + std::string(kernels::isa_name(k->isa)) + "/" +
                                       std::to_string(shape.rows) + "x" +
                                       std::to_string(shape.cols) + "/T:" + std::to_string(T) +
                                       "/threads:" + std::to_string(threads);
              auto* b = benchmark::RegisterBenchmark(
                  name.c_str(), BM_Gemm, Case{v.layout, v.act, type, isa, shape, T, threads});
              b->UseRealTime()->Unit(benchmark::kMillisecond);
              // Slow (scalar) prefill tiles take seconds per call: a few calls suffice.
              b->MinTime(T == 1 ? 0.5 : 0.2);
            }
          }
        }
      }
    }
  }
}

}  // namespace memwall::bench
