// STREAM-like read-bandwidth probe: sums a large array with wide SIMD loads,
// several independent accumulators and several address streams per thread
// (hardware prefetchers track each stream), 1 and 2 threads, with AVX2 and
// AVX-512. Reports GB/s (1e9 bytes/s) as the counter "read_GBps".
//   - 1 GiB: far larger than any cache: the DRAM read bandwidth decode is bound by.
//   - 64 MiB: about the size of a small model's weights, partly cache-resident
//     (this machine's L3 is 32 MiB; 64-128 MiB sets read faster than DRAM here).
// bench/micro is compiled with the baseline flags, so the SIMD loops are
// target-attributed functions, called only when __builtin_cpu_supports says so.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "micro_common.h"

namespace memwall::bench {

Buffer alloc_buffer(size_t bytes) {
  constexpr size_t kAlign = size_t(2) << 20;
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) return Buffer(nullptr);
  madvise(p, rounded, MADV_HUGEPAGE);  // a hint; ignored where THP is off
  return Buffer(static_cast<uint8_t*>(p));
}

const char* cpu_model_name() {
  static const std::string name = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    }
    return std::string("unknown");
  }();
  return name.c_str();
}

namespace {

constexpr int kStreams = 4;  // address streams per thread
// Bytes each stream advances per loop iteration: two 64-byte lines.
constexpr size_t kStep = 128;

// Sums [p, p + bytes) as 64-bit integers; bytes is a multiple of kStreams * kStep.
__attribute__((target("avx512f"))) uint64_t sum_avx512(const uint8_t* p, size_t bytes) {
  const size_t per = bytes / kStreams;
  const uint8_t* s0 = p;
  const uint8_t* s1 = p + per;
  const uint8_t* s2 = p + 2 * per;
  const uint8_t* s3 = p + 3 * per;
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
          a7 = a0;
  for (size_t i = 0; i < per; i += kStep) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(s0 + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(s0 + i + 64));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(s1 + i));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(s1 + i + 64));
    a4 = _mm512_add_epi64(a4, _mm512_load_si512(s2 + i));
    a5 = _mm512_add_epi64(a5, _mm512_load_si512(s2 + i + 64));
    a6 = _mm512_add_epi64(a6, _mm512_load_si512(s3 + i));
    a7 = _mm512_add_epi64(a7, _mm512_load_si512(s3 + i + 64));
  }
  a0 = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
  a4 = _mm512_add_epi64(_mm512_add_epi64(a4, a5), _mm512_add_epi64(a6, a7));
  alignas(64) uint64_t lanes[8];  // (GCC 12 warns falsely inside _mm512_reduce_add_epi64)
  _mm512_store_si512(lanes, _mm512_add_epi64(a0, a4));
  uint64_t sum = 0;
  for (uint64_t v : lanes) sum += v;
  return sum;
}

__attribute__((target("avx2"))) uint64_t sum_avx2(const uint8_t* p, size_t bytes) {
  const size_t per = bytes / kStreams;
  const uint8_t* s0 = p;
  const uint8_t* s1 = p + per;
  const uint8_t* s2 = p + 2 * per;
  const uint8_t* s3 = p + 3 * per;
  __m256i a[16];
  for (auto& v : a) v = _mm256_setzero_si256();
#define LD(q) _mm256_load_si256(reinterpret_cast<const __m256i*>(q))
  for (size_t i = 0; i < per; i += kStep) {
    for (int k = 0; k < 4; ++k) {
      a[k] = _mm256_add_epi64(a[k], LD(s0 + i + 32 * k));
      a[4 + k] = _mm256_add_epi64(a[4 + k], LD(s1 + i + 32 * k));
      a[8 + k] = _mm256_add_epi64(a[8 + k], LD(s2 + i + 32 * k));
      a[12 + k] = _mm256_add_epi64(a[12 + k], LD(s3 + i + 32 * k));
    }
  }
#undef LD
  for (int k = 1; k < 16; ++k) a[0] = _mm256_add_epi64(a[0], a[k]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), a[0]);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

using SumFn = uint64_t (*)(const uint8_t*, size_t);

struct Variant {
  const char* isa;
  const char* cpu_feature;
  SumFn fn;
};

const Variant kVariants[] = {
    {"avx512", "avx512f", sum_avx512},
    {"avx2", "avx2", sum_avx2},
};

bool cpu_has(const char* feature) {
  __builtin_cpu_init();
  if (std::strcmp(feature, "avx512f") == 0) return __builtin_cpu_supports("avx512f");
  if (std::strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2");
  return false;
}

// One written array per size, shared by all variants (written so every page is
// backed by real memory, not the shared zero page).
const uint8_t* array_of(size_t bytes) {
  static std::map<size_t, Buffer> arrays;
  auto it = arrays.find(bytes);
  if (it != arrays.end()) return it->second.get();
  Buffer b = alloc_buffer(bytes);
  if (!b) return nullptr;
  std::memset(b.get(), 1, bytes);
  return arrays.emplace(bytes, std::move(b)).first->second.get();
}

ThreadPool& pool_of(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

void BM_ReadBandwidth(benchmark::State& state, Variant v, size_t bytes, int threads) {
  if (!cpu_has(v.cpu_feature)) {
    state.SkipWithError("this CPU lacks the instruction set");
    return;
  }
  const uint8_t* data = array_of(bytes);
  if (!data) {
    state.SkipWithError("cannot allocate the array");
    return;
  }
  ThreadPool& pool = pool_of(threads);
  // Work units of kStreams * kStep * 1024 bytes (512 KiB): every thread's range
  // is a multiple of what the loop needs.
  const size_t unit = size_t(kStreams) * kStep * 1024;
  const int64_t units = int64_t(bytes / unit);
  std::vector<uint64_t> sink(size_t(threads) * 8, 0);  // a cache line per thread
  const std::function<void(int64_t, int64_t, int)> body = [&](int64_t b, int64_t e, int t) {
    sink[size_t(t) * 8] += v.fn(data + size_t(b) * unit, size_t(e - b) * unit);
  };
  for (auto _ : state) {
    pool.parallel_for(units, body, 1);
  }
  benchmark::DoNotOptimize(sink.data());
  const double gb = double(units) * double(unit) / 1e9;
  state.counters["read_GBps"] =
      benchmark::Counter(gb * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["array_MiB"] = double(bytes >> 20);
  state.counters["threads"] = threads;
  state.SetLabel(v.isa);
}

}  // namespace

void register_bandwidth_benchmarks() {
  for (size_t mib : {size_t(1024), size_t(64)}) {
    for (const Variant& v : kVariants) {
      for (int threads : {1, 2}) {
        std::string name = std::string("read_bw/") + v.isa + "/" + std::to_string(mib) +
                           "MiB/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), BM_ReadBandwidth, v, mib << 20, threads)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond)
            ->MinTime(1.0);
      }
    }
  }
}

}  // namespace memwall::bench
