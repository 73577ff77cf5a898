#include "base/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MEMWALL_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define MEMWALL_CPU_RELAX() asm volatile("yield")
#else
#define MEMWALL_CPU_RELAX() \
  do {                      \
  } while (0)
#endif

namespace memwall {
namespace {

// A waiting thread polls with pause for kSpinIterations, then yields its
// core between polls (so an oversubscribed machine still makes progress),
// and a worker sleeps after kYieldIterations more: together long enough to
// bridge the serial gaps between a forward pass's parallel ops.
constexpr int kSpinIterations = 1 << 10;
constexpr int kYieldIterations = 1 << 12;

void relax(int iteration) {
  if (iteration < kSpinIterations) {
    MEMWALL_CPU_RELAX();
  } else {
    std::this_thread::yield();
  }
}

std::pair<int64_t, int64_t> share(int64_t n, int parts, int index) {
  int64_t base = n / parts, extra = n % parts;
  int64_t begin = index * base + std::min<int64_t>(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                              int64_t grain) {
  if (n <= 0) return;
  const int64_t chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  const int parts = int(std::min<int64_t>(n_threads_, chunks));
  if (parts <= 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_parts_ = parts;
  // Every worker acknowledges every generation, so none can still be reading
  // this job's fields when the next one is written.
  remaining_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  auto [b, e] = share(n, parts, 0);
  fn(b, e, 0);
  for (int i = 0; remaining_.load(std::memory_order_acquire) != 0; ++i) relax(i);
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; g == seen && i < kSpinIterations + kYieldIterations; ++i) {
      relax(i);
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      g = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = g;
    if (index < job_parts_) {
      auto [b, e] = share(job_n_, job_parts_, index);
      (*job_)(b, e, index);
    }
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

int ThreadPool::default_threads() {
  // Count distinct (physical id, core id) pairs so SMT siblings count once.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(cpuinfo, line)) {
    auto value = [&] { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) physical = value();
    if (line.rfind("core id", 0) == 0) cores.emplace(physical, value());
  }
  int logical = int(std::thread::hardware_concurrency());
  if (cores.empty()) return std::max(1, logical);
  return std::max(1, std::min<int>(int(cores.size()), logical > 0 ? logical : int(cores.size())));
}

}  // namespace memwall
