// `memwall info` on corrupt files: non-zero exit, one line "error: ..." on
// stderr, nothing on stdout. Uses the binary at $MEMWALL_BIN or
// <repo>/build/memwall, and skips when neither exists.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "format/gguf_writer.h"
#include "gguf_test_util.h"

extern char** environ;

namespace memwall::gguf {
namespace {

namespace fs = std::filesystem;
using test::Bytes;

std::string memwall_bin() {
  if (const char* env = std::getenv("MEMWALL_BIN"); env && *env) return env;
  return test::source_path("build/memwall");
}

struct ProcessResult {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class GgufCli : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = memwall_bin();
    if (access(bin_.c_str(), X_OK) != 0) GTEST_SKIP() << "no memwall binary at " << bin_;
    dir_ = fs::temp_directory_path() / ("memwall_cli_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
    return p.string();
  }

  ProcessResult run(std::vector<std::string> args) {
    ProcessResult r;
    fs::path out = dir_ / "stdout", err = dir_ / "stderr";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    args.insert(args.begin(), bin_);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    int rc = posix_spawn(&pid, bin_.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return r;
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  // One corrupt file: exit 1, no stdout, a single "error: " line naming the problem.
  void expect_refused(const std::string& name, const std::vector<uint8_t>& bytes,
                      const std::string& expected) {
    SCOPED_TRACE(name);
    std::string path = write(name, bytes);
    for (std::vector<std::string> extra :
         {std::vector<std::string>{}, std::vector<std::string>{"--json", "--tensors"}}) {
      std::vector<std::string> args = {"info", path};
      args.insert(args.end(), extra.begin(), extra.end());
      ProcessResult r = run(args);
      EXPECT_EQ(r.exit_code, 1) << r.err;
      EXPECT_EQ(r.out, "");
      EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
      ASSERT_FALSE(r.err.empty());
      EXPECT_EQ(r.err.back(), '\n');
      EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
      EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
    }
  }

  std::string bin_;
  fs::path dir_;
};

TEST_F(GgufCli, InfoRefusesCorruptFiles) {
  expect_refused("magic.gguf", Bytes::header(3, 0, 0, 0x4c4d4747).b, "not a GGUF file");
  expect_refused("empty.gguf", {}, "truncated at offset 0");
  expect_refused("v1.gguf", Bytes::header(1, 0, 0).b, "GGUF version 1 is not supported");
  expect_refused("count.gguf", Bytes::header(3, 1ull << 60, 0).b, "tensor count");
  Bytes dims = Bytes::header(3, 1, 0).tensor("w", {0}, 0, 0).pad_to(32);
  expect_refused("dims.gguf", dims.b, "dimension 0 is 0");
  // A key with a newline and an escape sequence must not break the one line.
  Bytes key = Bytes::header(3, 0, 1).str("bad\nkey\x1b[2J").u32(77);
  expect_refused("key.gguf", key.b, "invalid value type id 77");

  Writer w;
  w.set("general.architecture", Value::string("llama"));
  w.add_tensor("w", TensorType::F32, {8}, std::vector<uint8_t>(32));
  std::vector<uint8_t> good = w.to_bytes();
  good.pop_back();
  expect_refused("truncated.gguf", good, "lies outside");
  ProcessResult r = run({"info", (dir_ / "missing.gguf").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("error: cannot open", 0), 0u) << r.err;
}

TEST_F(GgufCli, InfoReadsAValidFile) {
  Writer w;
  w.set("general.architecture", Value::string("llama"));
  w.add_tensor("w", TensorType::F32, {8}, std::vector<uint8_t>(32));
  ProcessResult r = run({"info", write("good.gguf", w.to_bytes())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("llama"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace memwall::gguf
