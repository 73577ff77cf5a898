#include "tokenizer/vocab.h"

#include <string>

#include "base/error.h"
#include "format/gguf_reader.h"

namespace memwall {

Vocab Vocab::from_gguf(const gguf::File& file) {
  const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
  if (!tokens) {
    fail(file.path(), ": no vocabulary (metadata key 'tokenizer.ggml.tokens' is missing)");
  }
  if (tokens->type != gguf::ValueType::ARRAY || tokens->element_type != gguf::ValueType::STRING) {
    fail(file.path(), ": metadata key 'tokenizer.ggml.tokens' must be an array of strings, not ",
         tokens->to_string(2));
  }
  const size_t n = tokens->strings.size();

  std::vector<TokenType> types(n, TokenType::kNormal);
  if (file.find("tokenizer.ggml.token_type")) {
    std::vector<int64_t> raw = file.get_ints("tokenizer.ggml.token_type");
    if (raw.size() != n) {
      fail(file.path(), ": tokenizer.ggml.token_type has ", raw.size(), " entries for ", n,
           " tokens");
    }
    for (size_t i = 0; i < n; ++i) {
      if (raw[i] < 0 || raw[i] > 6) {
        fail(file.path(), ": token ", i, " has type ", raw[i],
             ", which is not a llama.cpp token type (0..6)");
      }
      types[i] = static_cast<TokenType>(raw[i]);
    }
  }
  std::vector<float> scores;
  if (file.find("tokenizer.ggml.scores")) {
    scores = file.get_floats("tokenizer.ggml.scores");
    if (scores.size() != n) {
      fail(file.path(), ": tokenizer.ggml.scores has ", scores.size(), " entries for ", n,
           " tokens");
    }
  }
  try {
    return from_tokens(tokens->strings, std::move(types), std::move(scores));
  } catch (const Error& e) {
    fail(file.path(), ": ", e.what());
  }
}

Vocab Vocab::from_tokens(std::vector<std::string> tokens, std::vector<TokenType> types,
                         std::vector<float> scores) {
  if (tokens.empty()) fail("the vocabulary is empty (tokenizer.ggml.tokens has no entries)");
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) fail("the vocabulary has too many tokens");
  if (types.empty()) types.assign(tokens.size(), TokenType::kNormal);
  if (scores.empty()) scores.assign(tokens.size(), 0.0f);
  if (types.size() != tokens.size() || scores.size() != tokens.size()) {
    fail("token types/scores do not match the ", tokens.size(), " tokens");
  }
  Vocab v;
  v.tokens_ = std::move(tokens);
  v.types_ = std::move(types);
  v.scores_ = std::move(scores);
  v.build_index();
  return v;
}

void Vocab::build_index() {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    // llama.cpp renames empty tokens the same way, so ids and texts agree with it.
    if (tokens_[i].empty()) tokens_[i] = "[EMPTY_" + std::to_string(i) + "]";
  }
  if (int64_t dup = ids_.build(tokens_); dup >= 0) {
    fail("token ", dup, " '", tokens_[dup], "' duplicates token ", ids_.find(tokens_[dup]));
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    TokenType ty = types_[i];
    if (ty == TokenType::kControl || ty == TokenType::kUserDefined || ty == TokenType::kUnknown) {
      special_ids_.push_back(static_cast<int32_t>(i));
    }
  }
}

}  // namespace memwall
