// MachineProfile: JSON round trip and rejection of malformed documents, the
// kernel key format, the cache directory's environment variables, and the
// cache's life cycle (written, reused, re-measured when corrupt or stale).
// Measurements run with MeasureOptions::quick(): the tests check what is done
// with the numbers, not the numbers.
#include "plan/machine_profile.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "kernels/weight_format.h"

namespace memwall::plan {
namespace {

namespace fs = std::filesystem;

// Sets (or clears) an environment variable for one scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) saved_ = old, had_ = true;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_.c_str(), saved_.c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_, saved_;
  bool had_ = false;
};

// A fresh directory under the system's temporary directory, removed at the end.
class TempDir {
 public:
  TempDir() {
    path_ = (fs::temp_directory_path() /
             ("memwall-profile-test-" + std::to_string(getpid()) + "-" + std::to_string(++n_)))
                .string();
    fs::remove_all(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  static inline int n_ = 0;
  std::string path_;
};

MachineProfile sample_profile() {
  MachineProfile p;
  p.cpu_model = "Test CPU \"quoted\" model";
  p.isa = "avx2";
  p.kernel_paths = "0123456789abcdef";
  p.threads = 3;
  p.measured_at = 1700000000;
  p.read_gbps = 21.5;
  p.disk_read_gbps = 1.25;
  p.cached_read_gbps = 9.75;
  p.mapped_read_gbps = 20.25;
  p.pack_gbps = 4.5;
  p.disk_note = "a note";
  p.kernels["q4_0/fast/packed"] = {18.25, 120.5};
  p.kernels["f32/exact/rows"] = {12.0, 30.0};
  return p;
}

TEST(MachineProfile, JsonRoundTrip) {
  const MachineProfile p = sample_profile();
  // Through text, as the cache stores it.
  const MachineProfile q = MachineProfile::from_json(nlohmann::json::parse(p.to_json().dump()));
  EXPECT_EQ(q.version, MachineProfile::kVersion);
  EXPECT_EQ(q.cpu_model, p.cpu_model);
  EXPECT_EQ(q.isa, p.isa);
  EXPECT_EQ(q.kernel_paths, p.kernel_paths);
  EXPECT_EQ(q.threads, p.threads);
  EXPECT_EQ(q.measured_at, p.measured_at);
  EXPECT_EQ(q.read_gbps, p.read_gbps);
  EXPECT_EQ(q.disk_read_gbps, p.disk_read_gbps);
  EXPECT_EQ(q.cached_read_gbps, p.cached_read_gbps);
  EXPECT_EQ(q.mapped_read_gbps, p.mapped_read_gbps);
  EXPECT_EQ(q.pack_gbps, p.pack_gbps);
  EXPECT_EQ(q.disk_note, p.disk_note);
  ASSERT_EQ(q.kernels.size(), p.kernels.size());
  for (const auto& [key, r] : p.kernels) {
    ASSERT_TRUE(q.kernels.count(key)) << key;
    EXPECT_EQ(q.kernels.at(key).decode_gbps, r.decode_gbps) << key;
    EXPECT_EQ(q.kernels.at(key).prefill_gops, r.prefill_gops) << key;
  }
  EXPECT_EQ(q.to_json(), p.to_json());
}

TEST(MachineProfile, FromJsonRejectsMalformedDocuments) {
  const nlohmann::json good = sample_profile().to_json();
  ASSERT_NO_THROW(MachineProfile::from_json(good));

  std::vector<nlohmann::json> bad = {nlohmann::json::array(), nlohmann::json(42),
                                     nlohmann::json("profile"), nlohmann::json(nullptr)};
  // Every required field missing in turn (disk_note is optional).
  for (const auto& [key, value] : good.items()) {
    if (key == "disk_note") continue;
    nlohmann::json j = good;
    j.erase(key);
    bad.push_back(j);
  }
  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json j = good;
    j[key] = std::move(value);
    bad.push_back(j);
  };
  with("version", "1");
  with("version", 1.5);
  with("cpu_model", 7);
  with("isa", nullptr);
  with("kernel_paths", 5);
  with("threads", 0);
  with("threads", "2");
  with("measured_at", 1.7e9);
  with("read_gbps", "fast");
  with("read_gbps", -1.0);
  with("disk_read_gbps", nlohmann::json::array());
  with("mapped_read_gbps", -2.0);
  with("disk_note", false);
  with("kernels", nlohmann::json::array());
  with("kernels", nlohmann::json{{"q4_0/fast/packed", 3.0}});
  with("kernels", nlohmann::json{{"q4_0/fast/packed", {{"decode_gbps", 3.0}}}});
  with("kernels",
       nlohmann::json{{"q4_0/fast/packed", {{"decode_gbps", "x"}, {"prefill_gops", 1.0}}}});

  for (const nlohmann::json& j : bad) {
    EXPECT_THROW(MachineProfile::from_json(j), Error) << j.dump();
  }
}

TEST(MachineProfile, KernelKeyAndFallbackRate) {
  EXPECT_EQ(kernel_key("q4_0", "fast", true), "q4_0/fast/packed");
  EXPECT_EQ(kernel_key("f32", "exact", false), "f32/exact/rows");

  const MachineProfile p = sample_profile();
  EXPECT_EQ(p.rate("q4_0/fast/packed").decode_gbps, 18.25);
  EXPECT_EQ(p.rate("q4_0/fast/packed").prefill_gops, 120.5);
  // Unmeasured paths get a slow guess, never zero (the planner divides by it).
  const KernelRate guess = p.rate("q8_0/int8/packed");
  EXPECT_GT(guess.decode_gbps, 0);
  EXPECT_LT(guess.decode_gbps, p.read_gbps);
  EXPECT_GT(guess.prefill_gops, 0);
  EXPECT_GT(MachineProfile{}.rate("q4_0/exact/rows").decode_gbps, 0);
}

TEST(MachineProfile, CacheDirFollowsTheEnvironment) {
  {
    ScopedEnv cache("MEMWALL_CACHE_DIR", "/some/where");
    ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(cache_dir(), "/some/where");
    EXPECT_EQ(profile_path(), "/some/where/profile.json");
  }
  {
    ScopedEnv cache("MEMWALL_CACHE_DIR", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(cache_dir(), "/xdg/memwall");
  }
  {
    ScopedEnv cache("MEMWALL_CACHE_DIR", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
    ScopedEnv home("HOME", "/home/someone");
    EXPECT_EQ(cache_dir(), "/home/someone/.cache/memwall");
  }
}

// One measurement reused, a corrupt cache and a stale one measured again.
TEST(MachineProfile, LoadOrMeasureCachesAndRemeasures) {
  TempDir dir;
  ScopedEnv cache("MEMWALL_CACHE_DIR", dir.path().c_str());
  ThreadPool pool(2);
  const MeasureOptions quick = MeasureOptions::quick();
  std::vector<std::string> lines;
  const ProfileProgress progress = [&](const std::string& line) { lines.push_back(line); };
  const std::string path = dir.path() + "/profile.json";

  const MachineProfile first = load_or_measure_profile(pool, false, progress, quick);
  ASSERT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_FALSE(lines.empty());
  EXPECT_EQ(first.threads, 2);
  EXPECT_GT(first.read_gbps, 0);
  EXPECT_GT(first.cached_read_gbps, 0);
  // Mapped reads are measured as a share of read_gbps (never above it).
  EXPECT_GT(first.mapped_read_gbps, 0);
  EXPECT_LE(first.mapped_read_gbps, first.read_gbps);
  EXPECT_GT(first.pack_gbps, 0);
  // Every format the engine computes with has a measured row path at every
  // precision: none is planned on MachineProfile::rate's guess (q5_0 and
  // q5_1 once were, 20x off).
  for (TensorType type : kernels::codec_types()) {
    const std::string format(tensor_type_name(type));
    for (const char* precision : {"exact", "fast", "int8"}) {
      const std::string key = kernel_key(format, precision, false);
      ASSERT_TRUE(first.kernels.count(key)) << key;
      EXPECT_GT(first.kernels.at(key).decode_gbps, 0) << key;
      EXPECT_GT(first.kernels.at(key).prefill_gops, 0) << key;
    }
  }
  // The disk probe file is gone.
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename(), "profile.json");
  }

  // Cached: no measuring, no progress, the same profile.
  lines.clear();
  const MachineProfile second = load_or_measure_profile(pool, false, progress);
  EXPECT_TRUE(lines.empty());
  EXPECT_EQ(second.measured_at, first.measured_at);
  EXPECT_EQ(second.to_json(), first.to_json());

  // Another thread count is another profile.
  {
    ThreadPool one(1);
    lines.clear();
    EXPECT_EQ(load_or_measure_profile(one, false, progress, quick).threads, 1);
    EXPECT_FALSE(lines.empty());
  }

  // Corrupt: measured again with a note, not an error.
  std::ofstream(path, std::ios::trunc) << "{\"version\": 1, \"cpu_model\": ";
  lines.clear();
  const MachineProfile third = load_or_measure_profile(pool, false, progress, quick);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("measuring again"), std::string::npos) << lines.front();
  EXPECT_NO_THROW(MachineProfile::from_json(nlohmann::json::parse(std::ifstream(path))));

  // Measured by a build whose kernels differ (one added since).
  MachineProfile other = third;
  other.kernel_paths = "0000000000000000";
  std::ofstream(path, std::ios::trunc) << other.to_json().dump();
  lines.clear();
  const MachineProfile remeasured = load_or_measure_profile(pool, false, progress, quick);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("other matmul kernels"), std::string::npos) << lines.front();
  EXPECT_EQ(remeasured.kernel_paths, third.kernel_paths);

  // Stale: 40 days old.
  MachineProfile old = third;
  old.measured_at = int64_t(std::time(nullptr)) - int64_t(40) * 86400;
  std::ofstream(path, std::ios::trunc) << old.to_json().dump();
  lines.clear();
  const MachineProfile fourth = load_or_measure_profile(pool, false, progress, quick);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("40 days old"), std::string::npos) << lines.front();
  EXPECT_GE(fourth.measured_at, int64_t(std::time(nullptr)) - 60);
}

TEST(MachineProfile, UnwritableCacheStillReturnsAProfile) {
  TempDir dir;
  fs::create_directories(dir.path());
  // A file where the cache directory should be: it cannot be created.
  const std::string blocker = dir.path() + "/not-a-dir";
  std::ofstream(blocker) << "x";
  ScopedEnv cache("MEMWALL_CACHE_DIR", (blocker + "/cache").c_str());
  ThreadPool pool(1);
  std::vector<std::string> lines;
  const MachineProfile p = load_or_measure_profile(
      pool, false, [&](const std::string& line) { lines.push_back(line); },
      MeasureOptions::quick());
  EXPECT_GT(p.read_gbps, 0);
  bool noted = false;
  for (const std::string& line : lines)
    noted = noted || line.find("not saved") != std::string::npos;
  EXPECT_TRUE(noted);
}

}  // namespace
}  // namespace memwall::plan
