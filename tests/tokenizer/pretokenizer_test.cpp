// Pre-tokenizer splits for each regex family, with attention to runs of white
// space, where GPT-2's `\s+(?!\S)` leaves the last space for the next word.
#include "tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"

namespace memwall {
namespace {

std::vector<std::string> split(const std::string& pre, const std::string& text) {
  std::vector<std::string_view> views;
  PreTokenizer::for_name(pre).split(text, views);
  return {views.begin(), views.end()};
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2WordsAndContractions) {
  EXPECT_EQ(split("gpt-2", "Hello world!"), (Pieces{"Hello", " world", "!"}));
  EXPECT_EQ(split("gpt-2", "I'm he'll"), (Pieces{"I", "'m", " he", "'ll"}));
  EXPECT_EQ(split("gpt-2", "abc123 456"), (Pieces{"abc", "123", " 456"}));
  EXPECT_EQ(split("gpt-2", ""), Pieces{});
}

TEST(PreTokenizer, Gpt2WhitespaceRuns) {
  // A run before a word gives its last space to the word.
  EXPECT_EQ(split("gpt-2", "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split("gpt-2", "a   \n b"), (Pieces{"a", "   \n", " b"}));
  // Trailing white space stays one piece.
  EXPECT_EQ(split("gpt-2", "x  \t\n"), (Pieces{"x", "  \t\n"}));
  // A lone non-space white-space character before a word is its own piece.
  EXPECT_EQ(split("gpt-2", "\t\na"), (Pieces{"\t", "\n", "a"}));
  EXPECT_EQ(split("gpt-2", "\u3000a"), (Pieces{"\u3000", "a"}));
  EXPECT_EQ(split("gpt-2", "   "), (Pieces{"   "}));
}

TEST(PreTokenizer, StarcoderFamilySplitsDigitsFirst) {
  for (const char* pre : {"starcoder", "smollm", "refact", "command-r", "codeshell"}) {
    EXPECT_EQ(split(pre, "abc123 45"), (Pieces{"abc", "1", "2", "3", " ", "4", "5"})) << pre;
    // The digit split happens first, so the space before a digit is alone.
    EXPECT_EQ(split(pre, "x  7"), (Pieces{"x", "  ", "7"})) << pre;
  }
}

TEST(PreTokenizer, Llama3GroupsDigitsAndNewlines) {
  EXPECT_EQ(split("llama-bpe", "1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(split("llama-bpe", "Hello\n\nworld"), (Pieces{"Hello", "\n\n", "world"}));
  EXPECT_EQ(split("llama-bpe", "I'M ok"), (Pieces{"I", "'M", " ok"}));
  EXPECT_TRUE(PreTokenizer::for_name("llama-bpe").ignore_merges());
  EXPECT_FALSE(PreTokenizer::for_name("gpt-2").ignore_merges());
}

TEST(PreTokenizer, IllFormedUtf8SurvivesAsGapPieces) {
  std::string text =
      "ab\xFF\xFE"
      "cd \xC3";
  std::vector<std::string_view> views;
  PreTokenizer::for_name("gpt-2").split(text, views);
  std::string joined;
  for (auto v : views) joined += v;
  EXPECT_EQ(joined, text);  // nothing lost, nothing reordered
}

TEST(PreTokenizer, VeryLongRunsDoNotFail) {
  std::string text(200000, ' ');
  text += "x" + std::string(100000, '\n');
  std::vector<std::string_view> views;
  PreTokenizer::for_name("smollm").split(text, views);
  size_t total = 0;
  for (auto v : views) total += v.size();
  EXPECT_EQ(total, text.size());
}

TEST(PreTokenizer, UnknownNameIsAClearError) {
  try {
    PreTokenizer::for_name("no-such-pre");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'no-such-pre'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("smollm"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace memwall
