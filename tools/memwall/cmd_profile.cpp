// memwall profile: this machine's measured speeds, which the planner predicts
// from — DRAM, disk and page-cache read bandwidth, repacking, and every matmul
// path's decode and prefill rate. Shows the cached profile, measuring it first
// when there is none for this machine and thread count (or with --force).
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>

#include "base/error.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "plan/machine_profile.h"

namespace memwall::tools {
namespace {

struct ProfileOptions {
  bool force = false;
  bool json = false;
  int threads = 0;
};

std::string describe_age(int64_t seconds) {
  if (seconds < 60) return "just now";
  if (seconds < 3600) return std::to_string(seconds / 60) + " min ago";
  if (seconds < 86400) return std::to_string(seconds / 3600) + " h ago";
  return std::to_string(seconds / 86400) + " days ago";
}

void print_table(const plan::MachineProfile& p) {
  std::printf("cpu:              %s (%s, %d threads)\n", p.cpu_model.c_str(), p.isa.c_str(),
              p.threads);
  std::printf("DRAM read:        %7.2f GB/s\n", p.read_gbps);
  std::printf("disk read:        %7.2f GB/s\n", p.disk_read_gbps);
  if (!p.disk_note.empty()) std::printf("                  (%s)\n", p.disk_note.c_str());
  std::printf("page-cache read:  %7.2f GB/s\n", p.cached_read_gbps);
  std::printf("mapped read:      %7.2f GB/s (page-cache pages through mmap, as mapped weights)\n",
              p.mapped_read_gbps);
  std::printf("repacking:        %7.2f GB/s (one thread)\n", p.pack_gbps);
  std::printf(
      "matmul paths (decode: T = 1, weights from DRAM; prefill: T = 64, weights cached):\n");
  std::printf("  %-20s %12s %14s\n", "path", "decode GB/s", "prefill GOP/s");
  for (const auto& [key, r] : p.kernels) {
    std::printf("  %-20s %12.2f %14.1f\n", key.c_str(), r.decode_gbps, r.prefill_gops);
  }
  std::string path;
  try {
    path = plan::profile_path();
  } catch (const Error& e) {
    std::printf("cache:            none (%s)\n", e.what());
    return;
  }
  std::error_code ec;
  const bool saved = std::filesystem::exists(path, ec);
  std::printf("cache:            %s%s, measured %s\n", path.c_str(), saved ? "" : " (not saved)",
              describe_age(int64_t(std::time(nullptr)) - p.measured_at).c_str());
}

int run_profile(const ProfileOptions& opt) {
  if (opt.threads < 0) fail("-t must be >= 0 (0: physical cores)");
  ThreadPool pool(opt.threads > 0 ? opt.threads : ThreadPool::default_threads());
  const plan::MachineProfile p = plan::load_or_measure_profile(
      pool, opt.force, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  if (opt.json) {
    std::printf("%s\n", p.to_json().dump(2).c_str());
  } else {
    print_table(p);
  }
  return 0;
}

const CommandRegistration kProfile{
    "profile", "Measure (or show the cached) bandwidths and matmul speeds the planner uses", 80,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<ProfileOptions>();
      sub.add_flag("--force", opt->force, "Measure again even when a fresh profile is cached");
      sub.add_flag("--json", opt->json, "Print the profile as one JSON object instead of a table");
      sub.add_option("-t,--threads", opt->threads, "Threads (0: physical cores)")
          ->capture_default_str();
      return [opt] { return run_profile(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
