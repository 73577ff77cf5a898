// SentencePiece tokenizer.model reader (the protobuf subset the HF import
// needs): the real Llama 2 model, and random corruptions of it that must end
// in a parse or memwall::Error, never a crash.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "format/hf_tokenizer.h"

namespace memwall::hf {
namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const std::string kModel =
    std::string(MEMWALL_SHARED_DATA) + "/llama2-spm-tokenizer/tokenizer.model";

TEST(SentencePieceModel, ReadsLlama2) {
  const std::vector<uint8_t> f = read_file(kModel);
  if (f.empty()) GTEST_SKIP() << kModel << " is missing";
  const std::vector<SentencePiece> p = read_sentencepiece_model(f.data(), f.size(), kModel);
  ASSERT_EQ(p.size(), 32000u);
  EXPECT_EQ(p[0].piece, "<unk>");
  EXPECT_EQ(p[0].type, 2);  // unknown
  EXPECT_EQ(p[1].piece, "<s>");
  EXPECT_EQ(p[1].type, 3);  // control
  EXPECT_EQ(p[3].piece, "<0x00>");
  EXPECT_EQ(p[3].type, 6);  // byte
  EXPECT_EQ(p[300].type, 1);
  EXPECT_EQ(p[300].score, -41.0f);  // as in llama.cpp's ggml-vocab-llama-spm.gguf
}

TEST(SentencePieceModel, RefusesNonModels) {
  const std::string text = "definitely not a protobuf";
  auto parse = [](const std::string& bytes) {
    return read_sentencepiece_model(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                    "t.model");
  };
  EXPECT_THROW(parse(text), Error);
  EXPECT_THROW(parse(""), Error);
  EXPECT_THROW(parse(std::string("\x0a\x05\x0a\x03", 4)), Error);  // cut inside a piece
  EXPECT_THROW(parse(std::string(12, '\xff')), Error);             // endless varint
}

TEST(SentencePieceModel, RandomCorruptionsThrowErrorOrParse) {
  const std::vector<uint8_t> good = read_file(kModel);
  if (good.empty()) GTEST_SKIP() << kModel << " is missing";
  std::mt19937_64 rng(99);
  int errors = 0, parsed = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<uint8_t> f = good;
    for (int e = 0; e < 1 + int(rng() % 4); ++e) {
      switch (rng() % 3) {
        case 0:
          f[rng() % f.size()] ^= uint8_t(1 + rng() % 255);
          break;
        case 1:
          f.resize(1 + rng() % f.size());
          break;
        default:
          f.insert(f.begin() + long(rng() % f.size()), uint8_t(rng()));
      }
    }
    try {
      read_sentencepiece_model(f.data(), f.size(), "fuzz.model");
      ++parsed;
    } catch (const Error&) {
      ++errors;
    } catch (const std::exception& e) {
      FAIL() << "not a memwall::Error: " << e.what();
    }
  }
  EXPECT_GT(errors, 500);
  EXPECT_GT(parsed, 100);  // most flipped bytes land in a piece's text
}

}  // namespace
}  // namespace memwall::hf
