// StreamDecoder: characters split across tokens come out whole, output is
// always valid UTF-8, and flush() ends a sequence cleanly.
#include "tokenizer/stream_decoder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "format/gguf_reader.h"
#include "tokenizer/utf8.h"

namespace memwall {
namespace {

const std::string kDir = std::string(MEMWALL_SHARED_DATA) + "/tokenizer-vectors/";

class StreamDecoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    gpt2_file_ = new gguf::File(gguf::File::open(kDir + "ggml-vocab-gpt-2.gguf"));
    gpt2_ = new Tokenizer(Tokenizer::from_gguf(*gpt2_file_));
    spm_file_ = new gguf::File(gguf::File::open(kDir + "ggml-vocab-llama-spm.gguf"));
    spm_ = new Tokenizer(Tokenizer::from_gguf(*spm_file_));
  }
  static void TearDownTestSuite() {
    delete gpt2_;
    delete gpt2_file_;
    delete spm_;
    delete spm_file_;
  }
  // Streams ids one at a time; checks each chunk is valid UTF-8.
  static std::string stream(const Tokenizer& tok, const std::vector<int32_t>& ids,
                            std::vector<std::string>* chunks = nullptr) {
    StreamDecoder dec(tok);
    std::string out;
    for (int32_t id : ids) {
      std::string chunk = dec.push(id);
      EXPECT_TRUE(utf8::is_valid(chunk)) << "chunk for token " << id;
      if (chunks) chunks->push_back(chunk);
      out += chunk;
    }
    out += dec.flush();
    return out;
  }
  static gguf::File* gpt2_file_;
  static Tokenizer* gpt2_;
  static gguf::File* spm_file_;
  static Tokenizer* spm_;
};
gguf::File* StreamDecoderTest::gpt2_file_ = nullptr;
Tokenizer* StreamDecoderTest::gpt2_ = nullptr;
gguf::File* StreamDecoderTest::spm_file_ = nullptr;
Tokenizer* StreamDecoderTest::spm_ = nullptr;

TEST_F(StreamDecoderTest, EmojiAndCjkSplitAcrossByteTokensComeOutWhole) {
  for (const Tokenizer* tok : {gpt2_, spm_}) {
    size_t fragments = 0;  // tokens that hold only part of a character
    for (const std::string text :
         {"🚀 (normal) 😶‍🌫️ 🦙🦙", "我想在apple工作1314151天～", "ក្រុង", "Ⓐ😀x"}) {
      std::vector<int32_t> ids = tok->encode(text, false);
      EXPECT_EQ(stream(*tok, ids), text);
      EXPECT_EQ(tok->decode(ids), text);
      for (int32_t id : ids) fragments += !utf8::is_valid(tok->token_bytes(id));
    }
    // Byte-level BPE splits emoji and CJK; SentencePiece reaches emoji through
    // <0xXX> byte fallback. Either way the decoder had partial characters to hold.
    EXPECT_GT(fragments, 3u) << tok->model_name();
  }
}

TEST_F(StreamDecoderTest, PartialCharacterIsHeldThenCompleted) {
  // gpt-2: "😀" is F0 9F 98 80; bytes stand for themselves as single tokens too.
  std::vector<int32_t> bytes;
  for (unsigned char c : std::string("😀"))
    bytes.push_back(gpt2_->encode(std::string(1, c), false)[0]);
  StreamDecoder dec(*gpt2_);
  EXPECT_EQ(dec.push(bytes[0]), "");
  EXPECT_EQ(dec.push(bytes[1]), "");
  EXPECT_EQ(dec.push(bytes[2]), "");
  EXPECT_EQ(dec.push(bytes[3]), "😀");
  EXPECT_EQ(dec.flush(), "");
}

TEST_F(StreamDecoderTest, FlushReplacesAnUnfinishedCharacter) {
  int32_t f0 = gpt2_->encode("\xF0", false)[0];
  int32_t a = gpt2_->encode("a", false)[0];
  StreamDecoder dec(*gpt2_);
  EXPECT_EQ(dec.push(a), "a");
  EXPECT_EQ(dec.push(f0), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.flush(), "");   // nothing left
  EXPECT_EQ(dec.push(a), "a");  // usable again
}

TEST_F(StreamDecoderTest, BytesThatCanNeverBeACharacterAreReplacedAtOnce) {
  int32_t ff = gpt2_->encode("\xFF", false)[0];
  int32_t f0 = gpt2_->encode("\xF0", false)[0];
  int32_t a = gpt2_->encode("a", false)[0];
  StreamDecoder dec(*gpt2_);
  EXPECT_EQ(dec.push(ff), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.push(f0), "");
  // 'a' cannot continue F0: the held byte becomes U+FFFD and 'a' follows.
  EXPECT_EQ(dec.push(a),
            "\xEF\xBF\xBD"
            "a");
}

TEST_F(StreamDecoderTest, SentencePieceDropsTheDummyPrefixOncePerSequence) {
  std::vector<int32_t> ids = spm_->encode("Hello world", true);  // BOS ▁Hello ▁world
  std::vector<std::string> chunks;
  EXPECT_EQ(stream(*spm_, ids, &chunks), "Hello world");
  EXPECT_EQ(chunks, (std::vector<std::string>{"", "Hello", " world"}));
  StreamDecoder dec(*spm_);
  dec.push(ids[1]);
  dec.flush();
  EXPECT_EQ(dec.push(ids[1]), "Hello");  // a new sequence after flush()
}

TEST_F(StreamDecoderTest, ControlTokensAreSilentUnlessRendered) {
  StreamDecoder quiet(*spm_);
  EXPECT_EQ(quiet.push(2), "");
  StreamDecoder loud(*spm_, /*render_special=*/true);
  EXPECT_EQ(loud.push(2), "</s>");
}

TEST_F(StreamDecoderTest, BadIdIsAnError) {
  StreamDecoder dec(*gpt2_);
  EXPECT_THROW(dec.push(-1), Error);
  EXPECT_THROW(dec.push(static_cast<int32_t>(gpt2_->vocab_size())), Error);
}

}  // namespace
}  // namespace memwall
