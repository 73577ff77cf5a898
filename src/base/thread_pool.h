// One persistent pool of worker threads. parallel_for splits [0, n) into one
// contiguous range per thread; the calling thread takes a share too, so a
// pool of T threads starts T-1 workers.
//
// Decoding one token of a small model runs hundreds of parallel_for calls, so
// the hand-off must cost about a microsecond, not a futex round trip: workers
// spin on a generation counter for a while before they sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace memwall {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over disjoint ranges covering [0, n).
  // `grain` is the smallest range worth giving a thread. fn must not throw.
  // Not reentrant: call it from one thread at a time.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                    int64_t grain = 1);

  // Physical cores of this machine (falls back to logical CPUs).
  static int default_threads();

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  // The job, written before generation_ is bumped (release) and read after it
  // is seen (acquire).
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_parts_ = 0;
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> remaining_{0};  // workers yet to finish this generation
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace memwall
