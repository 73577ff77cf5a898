// SentencePiece-style BPE on a tiny vocabulary: score order, dummy prefix,
// byte fallback, and decoding.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tiny_gguf.h"
#include "tokenizer/tokenizer.h"

namespace memwall {
namespace {

using Ids = std::vector<int32_t>;
using testing::parse_tiny;
using testing::sentencepiece_writer;

// ids: 259 ▁, 260 h, 261 e, 262 l, 263 o, 264 ▁h, 265 ll, 266 ▁he, 267 llo, 268 ▁hello
const std::vector<std::string> kPieces = {"▁",  "h",  "e",   "l",   "o",
                                          "▁h", "ll", "▁he", "llo", "▁hello"};

Tokenizer make(std::vector<float> scores, bool add_space_prefix = true) {
  gguf::Writer w = sentencepiece_writer(kPieces, scores);
  w.set("tokenizer.ggml.add_space_prefix", gguf::Value::boolean(add_space_prefix));
  auto g = parse_tiny(w);
  return Tokenizer::from_gguf(g->file);
}

TEST(SentencePieceBpe, HighestScoreMergesFirst) {
  Tokenizer tok = make({0, 0, 0, 0, 0, -1, -2, -3, -4, -5});
  EXPECT_EQ(tok.encode("hello", false), (Ids{268}));
  // ids 259 a, 260 b, 261 c, 262 ab, 263 bc: which of "ab"/"bc" forms depends
  // only on their scores, since "abc" is not a token.
  auto abc = [](float ab, float bc) {
    gguf::Writer w = sentencepiece_writer({"a", "b", "c", "ab", "bc"}, {0, 0, 0, ab, bc});
    w.set("tokenizer.ggml.add_space_prefix", gguf::Value::boolean(false));
    auto g = parse_tiny(w);
    return Tokenizer::from_gguf(g->file).encode("abc", false);
  };
  EXPECT_EQ(abc(-1, -2), (Ids{262, 261}));
  EXPECT_EQ(abc(-2, -1), (Ids{259, 263}));
  EXPECT_EQ(abc(-1, -1), (Ids{262, 261}));  // a tie goes to the leftmost pair
}

TEST(SentencePieceBpe, DummyPrefixAndSpaces) {
  Tokenizer tok = make({0, 0, 0, 0, 0, -1, -2, -3, -4, -5});
  EXPECT_EQ(tok.encode("hello hello", false), (Ids{268, 268}));
  EXPECT_EQ(tok.encode("hello", true), (Ids{1, 268}));
  EXPECT_EQ(tok.encode("", true), (Ids{1}));
  EXPECT_EQ(tok.encode("", false), Ids{});
  EXPECT_EQ(tok.decode({1, 268, 268}), "hello hello");
  Tokenizer no_prefix = make({0, 0, 0, 0, 0, -1, -2, -3, -4, -5}, false);
  EXPECT_EQ(no_prefix.encode("hello", false), (Ids{260, 261, 267}));
  EXPECT_EQ(no_prefix.decode({268}), " hello");
}

TEST(SentencePieceBpe, ByteFallbackForUnknownCharacters) {
  Tokenizer tok = make({0, 0, 0, 0, 0, -1, -2, -3, -4, -5});
  // "é" = C3 A9 has no piece: two byte tokens (3 + byte).
  EXPECT_EQ(tok.encode("é", false), (Ids{259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(tok.decode(tok.encode("é", false)), "é");
  EXPECT_EQ(tok.token_bytes(3 + 0xC3), "\xC3");
}

TEST(SentencePieceBpe, TextAfterASpecialTokenGetsTheDummyPrefix) {
  Tokenizer tok = make({0, 0, 0, 0, 0, -1, -2, -3, -4, -5});
  EXPECT_EQ(tok.encode("hello</s>hello", false), (Ids{268, 2, 268}));
}

}  // namespace
}  // namespace memwall

namespace memwall {
namespace {

TEST(SentencePieceBpe, TokensSpanningASpaceStillMerge) {
  // "a▁b" crosses the start of the word "▁b", so encoding must not cut the
  // text word by word for this vocabulary. ids: 259 a, 260 b, 261 ▁, 262 a▁, 263 a▁b
  gguf::Writer w = sentencepiece_writer({"a", "b", "▁", "a▁", "a▁b"}, {0, 0, 0, -1, -2});
  w.set("tokenizer.ggml.add_space_prefix", gguf::Value::boolean(false));
  auto g = parse_tiny(w);
  Tokenizer tok = Tokenizer::from_gguf(g->file);
  EXPECT_EQ(tok.encode("a b", false), (Ids{263}));
  EXPECT_EQ(tok.encode("b a b", false), (Ids{260, 261, 263}));
}

}  // namespace
}  // namespace memwall
