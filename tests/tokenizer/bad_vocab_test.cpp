// Malformed vocabulary metadata gives memwall::Error with a message naming the
// problem — never a crash — and bad ids at use are errors too.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "tiny_gguf.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace memwall {
namespace {

using testing::byte_level_writer;
using testing::parse_tiny;
using testing::sentencepiece_writer;

// Expects from_gguf to throw Error whose message contains `needle`.
void expect_load_error(const gguf::Writer& w, const std::string& needle) {
  auto g = parse_tiny(w);
  try {
    Tokenizer::from_gguf(g->file);
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

gguf::Writer good_bpe() {
  return byte_level_writer({"ab"}, {"a b"});
}

TEST(BadVocab, MissingOrUnsupportedModel) {
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::string("llama"));
  expect_load_error(w, "tokenizer.ggml.model");
  gguf::Writer bert = good_bpe();
  bert.set("tokenizer.ggml.model", gguf::Value::string("bert"));
  expect_load_error(bert, "'bert' is not supported");
}

TEST(BadVocab, MissingEmptyOrMistypedTokens) {
  gguf::Writer w;
  w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  expect_load_error(w, "tokenizer.ggml.tokens");
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array({}));
  expect_load_error(w, "empty");
  w.set("tokenizer.ggml.tokens", gguf::Value::i32_array({1, 2, 3}));
  expect_load_error(w, "array of strings");
  gguf::Writer dup = byte_level_writer({"ab", "ab"}, {});
  expect_load_error(dup, "duplicates token 256");
}

TEST(BadVocab, TypesAndScoresMustMatchTheTokens) {
  gguf::Writer w = good_bpe();
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array({1, 1}));
  expect_load_error(w, "token_type has 2 entries for 257 tokens");
  w.set("tokenizer.ggml.token_type", gguf::Value::string_array({"a"}));
  expect_load_error(w, "tokenizer.ggml.token_type");
  std::vector<int32_t> types(257, 1);
  types[5] = 9;
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  expect_load_error(w, "token 5 has type 9");
  gguf::Writer s = sentencepiece_writer({"a"}, {0});
  s.set("tokenizer.ggml.scores", gguf::Value::f32_array({0, 1}));
  expect_load_error(s, "scores has 2 entries");
}

TEST(BadVocab, MergesMustNameTokens) {
  gguf::Writer w = good_bpe();
  w.set("tokenizer.ggml.merges", gguf::Value::string_array({"a b", "q zz"}));
  expect_load_error(w, "merge 1 'q zz' names 'zz', which is not a token");
  w.set("tokenizer.ggml.merges", gguf::Value::string_array({"ab"}));
  expect_load_error(w, "not two tokens separated by a space");
  w.set("tokenizer.ggml.merges", gguf::Value::string_array({"a c"}));
  expect_load_error(w, "makes 'ac', which is not a token");
  w.set("tokenizer.ggml.merges", gguf::Value::i32_array({1}));
  expect_load_error(w, "tokenizer.ggml.merges");
  gguf::Writer none = good_bpe();
  none = byte_level_writer({"ab"}, {});
  gguf::Writer no_merges;
  no_merges.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  no_merges.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b"}));
  expect_load_error(no_merges, "without merges");
}

TEST(BadVocab, UnknownPreTokenizerIsNamed) {
  expect_load_error(byte_level_writer({}, {}, "martian-bpe"), "'martian-bpe'");
}

TEST(BadVocab, SpecialTokenIdsMustBeInRange) {
  gguf::Writer w = good_bpe();
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(257));
  expect_load_error(w, "tokenizer.ggml.bos_token_id = 257 is outside the vocabulary of 257");
  w = good_bpe();
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::i32(-1));
  expect_load_error(w, "eos_token_id = -1");
  w = good_bpe();
  w.set("tokenizer.ggml.eot_token_id", gguf::Value::u32(100000));
  expect_load_error(w, "eot_token_id");
  w = good_bpe();
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::string("1"));
  expect_load_error(w, "bos_token_id");
  w = good_bpe();
  w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true));
  expect_load_error(w, "no bos_token_id");
  w = good_bpe();
  w.set("tokenizer.ggml.add_bos_token", gguf::Value::u32(1));
  expect_load_error(w, "add_bos_token");
}

TEST(BadVocab, BadIdsAtUseAreErrors) {
  auto g = parse_tiny(good_bpe());
  Tokenizer tok = Tokenizer::from_gguf(g->file);
  EXPECT_THROW(tok.token_bytes(-1), Error);
  EXPECT_THROW(tok.token_bytes(257), Error);
  EXPECT_THROW(tok.token_text(257), Error);
  EXPECT_THROW(tok.decode({1, 2, 99999}), Error);
}

TEST(BadVocab, RandomMetadataLoadsOrThrowsButNeverCrashes) {
  std::mt19937 rng(7);
  auto random_text = [&](int max_len) {
    std::string s;
    int n = std::uniform_int_distribution<int>(0, max_len)(rng);
    for (int i = 0; i < n; ++i) s += static_cast<char>(rng() % 256);
    return s;
  };
  int loaded = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::vector<std::string> tokens;
    int n = std::uniform_int_distribution<int>(0, 40)(rng);
    for (int i = 0; i < n; ++i) tokens.push_back(random_text(4));
    std::vector<std::string> merges;
    for (int i = 0; i < 20; ++i) {
      if (!tokens.empty() && rng() % 2) {
        merges.push_back(tokens[rng() % tokens.size()] + " " + tokens[rng() % tokens.size()]);
      } else {
        merges.push_back(random_text(6));
      }
    }
    std::vector<int32_t> types;
    for (int i = 0; i < n; ++i) types.push_back(static_cast<int32_t>(rng() % 8));
    gguf::Writer w;
    w.set("tokenizer.ggml.model", gguf::Value::string(iter % 2 ? "gpt2" : "llama"));
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
    if (rng() % 2) w.set("tokenizer.ggml.merges", gguf::Value::string_array(merges));
    if (rng() % 2) w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
    if (rng() % 2) w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(rng() % 50));
    auto g = parse_tiny(w);
    try {
      Tokenizer tok = Tokenizer::from_gguf(g->file);
      ++loaded;
      std::string text = random_text(64);
      std::vector<int32_t> ids = tok.encode(text, true);
      tok.decode(ids);
      StreamDecoder dec(tok);
      for (int32_t id : ids) dec.push(id);
      dec.flush();
    } catch (const Error&) {
      // A clear error is the expected outcome for most of these.
    }
  }
  EXPECT_GT(loaded, 0);
}

}  // namespace
}  // namespace memwall
