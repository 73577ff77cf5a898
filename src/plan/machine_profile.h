// MachineProfile: what this machine measures at, for the planner's cost
// model: DRAM read bandwidth, disk and page-cache read throughput (by pread
// and through a memory map), repacking throughput, and each matmul path's
// decode and prefill speed for every weight format. Measured once
// (`memwall profile`, or the first command that plans), cached as JSON under
// the user's cache directory, and re-measured when stale, when the machine
// differs (CPU model, ISA, threads) or when asked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "base/thread_pool.h"

namespace memwall::plan {

// One matmul path, measured through kernels::matmul on all threads.
struct KernelRate {
  double decode_gbps = 0;   // T = 1: bytes of weights read per second, weights cold (DRAM)
  double prefill_gops = 0;  // T = 64: 2 * rows * cols * T per second (1e9), weights hot
};

struct MachineProfile {
  // 2: kernels of the k-quant and ternary formats measured too.
  // 3: and of nf4, nf4_dq, q2_g64, q3_g64.
  // 4: and of w8a8.
  // 5: of every format with a codec (q5_0, q5_1 were missing), and mapped_read_gbps.
  static constexpr int kVersion = 5;
  int version = kVersion;
  std::string cpu_model;  // /proc/cpuinfo "model name"
  std::string isa;        // kernels::isa_name(active_isa())
  // Which kernel every measured path dispatched to (a hash): a cached profile
  // of a build with other kernels is measured again.
  std::string kernel_paths;
  int threads = 0;              // the pool's size when measured
  int64_t measured_at = 0;      // unix seconds
  double read_gbps = 0;         // DRAM read bandwidth, all threads
  double disk_read_gbps = 0;    // sequential pread of a file not in the page cache
  double cached_read_gbps = 0;  // pread of a file in the page cache (a copy)
  // Reading a file in the page cache through a memory map, all threads: what
  // mapped weights stream at, against read_gbps for resident ones (anonymous
  // huge pages). 0: not measured.
  double mapped_read_gbps = 0;
  double pack_gbps = 0;  // repacking for the packed kernels, one thread
  // Why disk_read_gbps may be wrong: the page cache kept the test file (then
  // it may be the cache's speed), or the file could not be written (then it
  // is 0). Empty when the measurement is sound.
  std::string disk_note;
  // Key: kernel_key(format, precision, packed), e.g. "q4_0/fast/packed", "f32/exact/rows".
  std::map<std::string, KernelRate> kernels;

  nlohmann::json to_json() const;
  static MachineProfile from_json(const nlohmann::json& j);  // throws Error on a bad document
  // The rate of a path, or a conservative fallback when it was not measured.
  KernelRate rate(const std::string& key) const;
};

std::string kernel_key(const std::string& format, const std::string& precision, bool packed);

// Progress lines ("measuring read bandwidth...") for long measurements.
using ProfileProgress = std::function<void(const std::string&)>;

// Measures everything (a few seconds). scratch_dir holds the disk-read test file.
MachineProfile measure_profile(ThreadPool& pool, const std::string& scratch_dir,
                               const ProfileProgress& progress);

// How much each measurement reads and how long it runs. The defaults give
// numbers worth planning with in about 5 s; quick() gives rough ones in under
// a second (caches distort them), for tests of everything around the numbers.
struct MeasureOptions {
  size_t read_bytes = size_t(512) << 20;   // DRAM bandwidth buffer
  size_t disk_bytes = size_t(256) << 20;   // disk test file
  size_t decode_bytes = size_t(96) << 20;  // decode cycles through copies this large (> L3)
  double seconds_per_kernel = 0.06;        // per decode or prefill measurement
  // Passes over every path, each taking a share of seconds_per_kernel; each
  // path keeps its best. A burst of other work (a compile of a few seconds)
  // then slows one pass of a path, not all its runs: with one pass, every run
  // of a path fell within 60 ms, and on a shared 2-core machine a profile came
  // out with nf4 decode at 1.4 GB/s where it runs at 24.
  int kernel_passes = 3;
  static MeasureOptions quick();
};
MachineProfile measure_profile(ThreadPool& pool, const std::string& scratch_dir,
                               const ProfileProgress& progress, const MeasureOptions& options);

// $MEMWALL_CACHE_DIR, else $XDG_CACHE_HOME/memwall, else $HOME/.cache/memwall.
std::string cache_dir();
std::string profile_path();  // cache_dir() + "/profile.json"

// The cached profile when it is for this machine and this pool size, of this
// version, and younger than 30 days; else measures and saves one. force:
// always measure.
MachineProfile load_or_measure_profile(ThreadPool& pool, bool force,
                                       const ProfileProgress& progress);
MachineProfile load_or_measure_profile(ThreadPool& pool, bool force,
                                       const ProfileProgress& progress,
                                       const MeasureOptions& options);

}  // namespace memwall::plan
