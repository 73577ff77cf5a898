// The token table shared by both tokenizer models: text, type and score per
// id, text -> id lookup, and the special-token ids, read from GGUF metadata
// with every count and id checked before use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/flat_maps.h"

namespace memwall {

namespace gguf {
class File;
}

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class TokenType : uint8_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

class Vocab {
 public:
  // Reads tokenizer.ggml.tokens / token_type / scores. Types default to normal
  // and scores to 0 when absent. Throws Error on a missing or empty token list,
  // arrays of the wrong type or length, an unknown type value, or a duplicate token.
  static Vocab from_gguf(const gguf::File& file);
  static Vocab from_tokens(std::vector<std::string> tokens, std::vector<TokenType> types,
                           std::vector<float> scores);

  // Move-only: copying would leave the index pointing at the source's strings.
  Vocab(Vocab&&) = default;
  Vocab& operator=(Vocab&&) = default;
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  size_t size() const { return tokens_.size(); }
  bool contains(int64_t id) const { return id >= 0 && static_cast<uint64_t>(id) < size(); }
  const std::string& text(int32_t id) const { return tokens_[id]; }
  TokenType type(int32_t id) const { return types_[id]; }
  float score(int32_t id) const { return scores_[id]; }
  // -1 when `text` is not a token.
  int32_t find(std::string_view text) const { return ids_.find(text); }
  const TokenIndex& index() const { return ids_; }

  // Control, user-defined and unknown tokens: the ones matched in raw text
  // before pre-tokenization (llama.cpp's special-token cache).
  const std::vector<int32_t>& special_ids() const { return special_ids_; }

 private:
  Vocab() = default;
  void build_index();

  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  TokenIndex ids_;  // over tokens_, which is never resized after build_index()
  std::vector<int32_t> special_ids_;
};

}  // namespace memwall
