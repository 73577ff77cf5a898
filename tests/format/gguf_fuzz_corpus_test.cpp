// Runs the fuzz oracle (tests/fuzz/gguf_fuzz_body.h) inside the unit tests:
// over the committed seed corpus, and over a few thousand deterministic
// mutations of it, so a plain `ctest` catches regressions the fuzzer found
// without needing clang or libFuzzer.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "../fuzz/gguf_fuzz_body.h"
#include "gguf_test_util.h"

namespace memwall::gguf {
namespace {

namespace fs = std::filesystem;

std::vector<std::vector<uint8_t>> load_corpus(std::vector<std::string>* names = nullptr) {
  std::vector<std::vector<uint8_t>> out;
  fs::path dir = test::source_path("tests/fuzz/corpus/gguf");
  if (!fs::is_directory(dir)) return out;
  std::vector<fs::path> paths;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());  // deterministic mutation order
  for (const fs::path& p : paths) {
    std::ifstream in(p, std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (names) names->push_back(p.filename().string());
  }
  return out;
}

TEST(GgufFuzzCorpus, SeedsSatisfyTheOracle) {
  std::vector<std::string> names;
  auto corpus = load_corpus(&names);
  ASSERT_GE(corpus.size(), 10u) << "seed corpus missing: run tests/fuzz/make_corpus.py";
  size_t parsed = 0, bytes = 0;
  for (size_t k = 0; k < corpus.size(); ++k) {
    EXPECT_EQ(fuzz::exercise(corpus[k].data(), corpus[k].size()), "") << names[k];
    bytes += corpus[k].size();
    try {
      File::parse(corpus[k].data(), corpus[k].size());
      ++parsed;
    } catch (const Error&) {
    }
  }
  // Mostly valid files, so the fuzzer starts deep inside the format.
  EXPECT_GE(parsed * 2, corpus.size());
  EXPECT_LT(bytes, 200u * 1024);
}

// Byte-level mutations in the spirit of libFuzzer's, biased towards the
// values that hit bounds checks: 0, 1, all-ones and sign bits.
void mutate(std::vector<uint8_t>& b, std::mt19937_64& rng) {
  static const uint64_t kInteresting[] = {
      0,          1,          2,          3,          4,          5,         8,
      13,         31,         32,         64,         255,        256,       0x7fffffff,
      0x80000000, 0xffffffff, 1ull << 32, 1ull << 62, 1ull << 63, UINT64_MAX};
  int n_mut = 1 + static_cast<int>(rng() % 4);
  for (int m = 0; m < n_mut; ++m) {
    size_t at = b.empty() ? 0 : rng() % b.size();
    switch (rng() % 6) {
      case 0:
        if (!b.empty()) b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:
        if (!b.empty()) b[at] = static_cast<uint8_t>(rng());
        break;
      case 2: {
        uint64_t v = kInteresting[rng() % std::size(kInteresting)];
        size_t width = (rng() % 2) ? 8 : 4;
        if (at + width <= b.size()) std::memcpy(b.data() + at, &v, width);
        break;
      }
      case 3:
        b.resize(at);
        break;  // truncate
      case 4:   // delete a few bytes
        b.erase(b.begin() + static_cast<long>(at),
                b.begin() + static_cast<long>(std::min(b.size(), at + 1 + rng() % 8)));
        break;
      default:  // duplicate a chunk
        if (!b.empty()) {
          size_t len = std::min<size_t>(b.size() - at, 1 + rng() % 32);
          std::vector<uint8_t> chunk(b.begin() + static_cast<long>(at),
                                     b.begin() + static_cast<long>(at + len));
          b.insert(b.begin() + static_cast<long>(rng() % (b.size() + 1)), chunk.begin(),
                   chunk.end());
        }
        break;
    }
  }
}

TEST(GgufFuzzCorpus, MutatedSeedsSatisfyTheOracle) {
  auto corpus = load_corpus();
  if (corpus.empty()) GTEST_SKIP() << "seed corpus missing";
  std::mt19937_64 rng(20261122);
  size_t runs = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const auto& seed = corpus[rng() % corpus.size()];
    if (seed.size() > 16384) continue;  // keep the test quick
    std::vector<uint8_t> b = seed;
    mutate(b, rng);
    std::string r = fuzz::exercise(b.data(), b.size());
    ++runs;
    ASSERT_EQ(r, "") << "iteration " << iter;
  }
  EXPECT_GT(runs, 1000u);
}

// Inputs the libFuzzer target found; each once crashed or broke a property.
TEST(GgufFuzzCorpus, FuzzerFindings) {
  fs::path dir = test::source_path("tests/fuzz/regressions");
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no regressions directory";
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<uint8_t> b{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    EXPECT_EQ(fuzz::exercise(b.data(), b.size()), "") << e.path().filename();
  }
}

}  // namespace
}  // namespace memwall::gguf
