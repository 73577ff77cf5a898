// Tokenizer built from a GGUF file's own metadata: byte-level BPE
// (tokenizer.ggml.model "gpt2") or SentencePiece-style BPE ("llama"), the
// model's special tokens, its BOS/EOS rule and its end-of-generation set.
//
// encode() finds special tokens written in the text first (when
// parse_special), then encodes the text between them with the model. decode()
// and token_bytes() return raw bytes, which may be ill-formed UTF-8 when a
// sequence ends inside a character; StreamDecoder is the printable path.
// A Tokenizer is immutable and cheap to copy; its methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace memwall {

namespace gguf {
class File;
}

class Tokenizer {
 public:
  enum class Kind { kByteLevelBpe, kSentencePiece };

  // Throws Error naming the file and key on an absent or malformed vocabulary,
  // an unsupported model or pre-tokenizer, or special-token ids out of range.
  static Tokenizer from_gguf(const gguf::File& file);

  // add_special: add BOS/EOS as the model's flags say (tokenizer.ggml.add_bos_token,
  // add_eos_token). parse_special: match control tokens written in the text
  // (user-defined tokens are always matched).
  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special = true) const;

  // Raw bytes of one token. Control, unknown and unused tokens are empty unless
  // render_special, then their text. Throws Error for an id outside the vocabulary.
  std::string token_bytes(int32_t id, bool render_special = false) const;
  // The bytes of a whole sequence. For SentencePiece vocabularies with a dummy
  // prefix, the space it put before the first word is dropped.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

  int32_t bos_id() const;  // -1 if the model has none
  int32_t eos_id() const;  // -1 if the model has none
  int32_t unk_id() const;  // -1 if the model has none
  bool add_bos() const;
  bool add_eos() const;
  // EOS, tokenizer.ggml.eot_token_id / eom_token_id, and control tokens such as
  // <|im_end|>, <|eot_id|>, <|endoftext|>.
  bool is_end_of_generation(int32_t id) const;
  const std::vector<int32_t>& end_of_generation_ids() const;

  size_t vocab_size() const;
  std::string_view token_text(
      int32_t id) const;                   // as stored ("Ġthe", "▁the"); throws if out of range
  TokenType token_type(int32_t id) const;  // throws if out of range
  // The token whose stored text is exactly `text`, or -1.
  int32_t find_token(std::string_view text) const;

  Kind kind() const;
  const std::string& model_name() const;     // "gpt2" or "llama"
  const std::string& pre_tokenizer() const;  // tokenizer.ggml.pre ("" for SentencePiece)
  bool add_space_prefix() const;             // SentencePiece dummy prefix

  struct State;

 private:
  explicit Tokenizer(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  void check_id(int32_t id) const;
  std::shared_ptr<const State> state_;
};

}  // namespace memwall
