// Builds small vocabulary-only GGUF files in memory for tokenizer tests.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "format/gguf_reader.h"
#include "format/gguf_writer.h"
#include "tokenizer/byte_unicode.h"

namespace memwall::testing {

// Owns the bytes a parsed gguf::File points into.
struct TinyGguf {
  std::vector<uint8_t> bytes;
  gguf::File file;
};

inline std::unique_ptr<TinyGguf> parse_tiny(const gguf::Writer& w) {
  auto owner = std::make_unique<TinyGguf>();
  owner->bytes = w.to_bytes();
  owner->file = gguf::File::parse(owner->bytes.data(), owner->bytes.size(), "tiny.gguf");
  return owner;
}

// A byte-level BPE vocabulary: the 256 byte characters (ids 0..255), then
// `extra` tokens (ids 256..), with `merges` ("a b") and pre-tokenizer `pre`.
inline gguf::Writer byte_level_writer(const std::vector<std::string>& extra,
                                      const std::vector<std::string>& merges,
                                      const std::string& pre = "gpt-2") {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_unicode::char_for_byte(static_cast<uint8_t>(b)));
  }
  tokens.insert(tokens.end(), extra.begin(), extra.end());
  gguf::Writer w;
  w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  w.set("tokenizer.ggml.pre", gguf::Value::string(pre));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
  w.set("tokenizer.ggml.merges", gguf::Value::string_array(merges));
  return w;
}

// A SentencePiece vocabulary: <unk>, <s>, </s>, the 256 <0xXX> byte tokens
// (ids 3..258), then `pieces` with `scores` (ids 259..).
inline gguf::Writer sentencepiece_writer(const std::vector<std::string>& pieces,
                                         const std::vector<float>& scores) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> all_scores = {0, 0, 0};
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name);
    types.push_back(6);
    all_scores.push_back(0);
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    tokens.push_back(pieces[i]);
    types.push_back(1);
    all_scores.push_back(scores[i]);
  }
  gguf::Writer w;
  w.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  w.set("tokenizer.ggml.scores", gguf::Value::f32_array(all_scores));
  return w;
}

}  // namespace memwall::testing
