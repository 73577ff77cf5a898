// Byte-level BPE on tiny hand-made vocabularies: merge order, special tokens,
// and bytes that are not text.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tiny_gguf.h"
#include "tokenizer/tokenizer.h"

namespace memwall {
namespace {

using Ids = std::vector<int32_t>;
using testing::byte_level_writer;
using testing::parse_tiny;

// Byte b has id b; "ab" is 256, "bc" 257, "abc" 258, "Ġa" 259.
Tokenizer abc_tokenizer(const std::vector<std::string>& merges) {
  auto g = parse_tiny(byte_level_writer({"ab", "bc", "abc", "Ġa"}, merges));
  return Tokenizer::from_gguf(g->file);
}

TEST(ByteLevelBpe, LowestRankMergesFirst) {
  EXPECT_EQ(abc_tokenizer({"a b", "ab c"}).encode("abc", false), (Ids{258}));
  // With "b c" ranked first, "ab" can no longer form and "abc" is unreachable.
  EXPECT_EQ(abc_tokenizer({"b c", "a b", "ab c"}).encode("abc", false), (Ids{'a', 257}));
}

TEST(ByteLevelBpe, EqualPairsMergeLeftmostFirst) {
  auto g = parse_tiny(byte_level_writer({"aa", "aaa"}, {"a a", "aa a"}));
  Tokenizer tok = Tokenizer::from_gguf(g->file);
  // "aaa": the left pair merges first, then "aa"+"a".
  EXPECT_EQ(tok.encode("aaa", false), (Ids{257}));
  EXPECT_EQ(tok.encode("aaaa", false), (Ids{256, 256}));
}

TEST(ByteLevelBpe, SpaceIsPartOfTheNextWord) {
  Tokenizer tok = abc_tokenizer({"Ġ a", "a b"});
  EXPECT_EQ(tok.encode(" a", false), (Ids{259}));
  EXPECT_EQ(tok.decode({259}), " a");
}

TEST(ByteLevelBpe, AnyBytesRoundTrip) {
  Tokenizer tok = abc_tokenizer({"a b"});
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes += static_cast<char>(b);
  bytes += "\xFF\xFE ab \xC3";  // ill-formed UTF-8 too
  EXPECT_EQ(tok.decode(tok.encode(bytes, false)), bytes);
}

TEST(ByteLevelBpe, ControlTokensParsedOnlyWhenAsked) {
  gguf::Writer w = byte_level_writer({"<|im_start|>", "<tool>"}, {});
  std::vector<int32_t> types(258, 1);
  types[256] = 3;  // control
  types[257] = 4;  // user-defined
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  auto g = parse_tiny(w);
  Tokenizer tok = Tokenizer::from_gguf(g->file);
  EXPECT_EQ(tok.encode("<|im_start|>x", false), (Ids{256, 'x'}));
  Ids spelled = tok.encode("<|im_start|>x", false, /*parse_special=*/false);
  EXPECT_EQ(spelled.size(), 13u);
  // User-defined tokens are matched either way.
  EXPECT_EQ(tok.encode("a<tool>", false, false), (Ids{'a', 257}));
  // Control tokens decode to nothing unless rendered.
  EXPECT_EQ(tok.decode({256, 'x'}), "x");
  EXPECT_EQ(tok.decode({256, 'x'}, true), "<|im_start|>x");
  EXPECT_EQ(tok.decode({257}), "<tool>");
}

TEST(ByteLevelBpe, LongestSpecialTokenWinsAtAPosition) {
  gguf::Writer w = byte_level_writer({"<a>", "<a><b>"}, {});
  std::vector<int32_t> types(258, 1);
  types[256] = types[257] = 3;
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  auto g = parse_tiny(w);
  Tokenizer tok = Tokenizer::from_gguf(g->file);
  EXPECT_EQ(tok.encode("<a><b><a>", false), (Ids{257, 256}));
}

TEST(ByteLevelBpe, IgnoreMergesTakesWholeWordTokens) {
  // "abc" is a token but no merge reaches it; llama-bpe looks words up whole.
  auto g = parse_tiny(byte_level_writer({"ab", "bc", "abc", "Ġa"}, {"b c"}, "llama-bpe"));
  EXPECT_EQ(Tokenizer::from_gguf(g->file).encode("abc", false), (Ids{258}));
  auto g2 = parse_tiny(byte_level_writer({"ab", "bc", "abc", "Ġa"}, {"b c"}, "gpt-2"));
  EXPECT_EQ(Tokenizer::from_gguf(g2->file).encode("abc", false), (Ids{'a', 257}));
}

TEST(ByteLevelBpe, LongInputRoundTrips) {
  // Long inputs take the per-call word cache; the full-file comparison with HF
  // (tests/tokenizer/test_hf_parity.py) checks its ids, this checks the bytes.
  Tokenizer tok = abc_tokenizer({"a b", "ab c", "Ġ a"});
  std::string text;
  for (int i = 0; i < 2000; ++i) text += i % 3 ? "abc " : "ab\t\xF0\x9F";
  Ids ids = tok.encode(text, false);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.encode("abc", false), (Ids{258}));
}

TEST(ByteLevelBpe, BosAndEosFollowTheModelFlags) {
  gguf::Writer w = byte_level_writer({"<s>", "</s>"}, {});
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(256));
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(257));
  w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true));
  w.set("tokenizer.ggml.add_eos_token", gguf::Value::boolean(true));
  auto g = parse_tiny(w);
  Tokenizer tok = Tokenizer::from_gguf(g->file);
  EXPECT_EQ(tok.encode("a", true), (Ids{256, 'a', 257}));
  EXPECT_EQ(tok.encode("a", false), (Ids{'a'}));
  EXPECT_EQ(tok.encode("", true), (Ids{256, 257}));
  EXPECT_TRUE(tok.is_end_of_generation(257));
  EXPECT_FALSE(tok.is_end_of_generation(256));
}

TEST(ByteLevelBpe, EndOfGenerationIncludesControlTurnEnds) {
  gguf::Writer w = byte_level_writer({"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<x>"}, {});
  std::vector<int32_t> types(260, 1);
  types[256] = types[257] = types[259] = 3;  // <|eot_id|> stays normal: not an end
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(256));
  w.set("tokenizer.ggml.eom_token_id", gguf::Value::u32(259));
  auto g = parse_tiny(w);
  Tokenizer tok = Tokenizer::from_gguf(g->file);
  EXPECT_TRUE(tok.is_end_of_generation(256));
  EXPECT_TRUE(tok.is_end_of_generation(257));
  EXPECT_FALSE(tok.is_end_of_generation(258));
  EXPECT_TRUE(tok.is_end_of_generation(259));
  EXPECT_FALSE(tok.is_end_of_generation('a'));
}

}  // namespace
}  // namespace memwall
