// llama.cpp's tokenizer test vectors (test-tokenizer-0): 46 strings per
// vocabulary with the ids HF tokenizers produced for them (no BOS). Exact match
// on every string, decode of the expected ids, and encode/decode round trips.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "format/gguf_reader.h"
#include "tokenizer/tokenizer.h"

namespace memwall {
namespace {

const std::string kDir = std::string(MEMWALL_SHARED_DATA) + "/tokenizer-vectors/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> load_cases(const std::string& vocab) {
  std::string inp = read_file(kDir + vocab + ".gguf.inp");
  std::string out = read_file(kDir + vocab + ".gguf.out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0;;) {
    size_t next = inp.find(sep, pos);
    if (next == std::string::npos) break;  // the file ends with a separator
    cases.push_back({inp.substr(pos, next - pos), {}});
    pos = next + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (Case& c : cases) {
    EXPECT_TRUE(std::getline(lines, line)) << vocab << ": fewer .out lines than inputs";
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
  }
  return cases;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

class TokenizerVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(TokenizerVectors, EncodeMatchesEveryString) {
  const std::string vocab = GetParam();
  gguf::File file = gguf::File::open(kDir + vocab + ".gguf");
  Tokenizer tok = Tokenizer::from_gguf(file);
  std::vector<Case> cases = load_cases(vocab);
  ASSERT_EQ(cases.size(), 46u);
  for (const Case& c : cases) {
    EXPECT_EQ(tok.encode(c.text, /*add_special=*/false), c.ids)
        << vocab << ": text '" << c.text << "'\n  got      " << show(tok.encode(c.text, false))
        << "\n  expected " << show(c.ids);
  }
}

TEST_P(TokenizerVectors, DecodeOfExpectedIdsAndRoundTrip) {
  const std::string vocab = GetParam();
  gguf::File file = gguf::File::open(kDir + vocab + ".gguf");
  Tokenizer tok = Tokenizer::from_gguf(file);
  for (const Case& c : load_cases(vocab)) {
    EXPECT_EQ(tok.decode(c.ids), c.text) << vocab;
    // Both models are lossless on these strings (byte-level by construction,
    // SentencePiece through byte fallback).
    EXPECT_EQ(tok.decode(tok.encode(c.text, true)), c.text) << vocab;
  }
}

INSTANTIATE_TEST_SUITE_P(Gguf, TokenizerVectors,
                         ::testing::Values("ggml-vocab-llama-spm", "ggml-vocab-gpt-2",
                                           "ggml-vocab-starcoder"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(TokenizerVectors, SpecialTokenRulesPerVocabulary) {
  gguf::File spm_file = gguf::File::open(kDir + "ggml-vocab-llama-spm.gguf");
  Tokenizer spm = Tokenizer::from_gguf(spm_file);
  EXPECT_EQ(spm.kind(), Tokenizer::Kind::kSentencePiece);
  EXPECT_TRUE(spm.add_bos());
  EXPECT_EQ(spm.bos_id(), 1);
  EXPECT_EQ(spm.eos_id(), 2);
  EXPECT_EQ(spm.encode("Hello", true), (std::vector<int32_t>{1, 15043}));
  EXPECT_TRUE(spm.is_end_of_generation(2));
  EXPECT_EQ(spm.decode({1, 15043, 2}), "Hello");
  EXPECT_EQ(spm.decode({1, 15043, 2}, /*render_special=*/true), "<s> Hello</s>");
  // <s> typed in the text is BOS when parsed; the text after it gets the dummy prefix.
  EXPECT_EQ(spm.encode("<s>Hello", false), (std::vector<int32_t>{1, 15043}));

  gguf::File gpt2_file = gguf::File::open(kDir + "ggml-vocab-gpt-2.gguf");
  Tokenizer gpt2 = Tokenizer::from_gguf(gpt2_file);
  EXPECT_FALSE(gpt2.add_bos());
  EXPECT_EQ(gpt2.encode("Hello", true), (std::vector<int32_t>{15496}));
  EXPECT_TRUE(gpt2.is_end_of_generation(50256));
}

}  // namespace
}  // namespace memwall
