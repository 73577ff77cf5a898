// A Hugging Face model directory's tokenizer as GGUF tokenizer.* metadata,
// written as llama.cpp's convert_hf_to_gguf.py writes it for the llama
// architecture (LlamaModel.set_vocab):
//
//   tokenizer.model present (SentencePiece)   -> model "llama", pieces, scores, types
//   tokenizer.json BPE with byte_fallback      -> model "llama", scores -1000 (its LlamaHfVocab)
//   tokenizer.json byte-level BPE (GPT-2 style) -> model "gpt2", merges, pre-tokenizer name
//
// then the special tokens, BOS/EOS flags and chat template from
// tokenizer_config.json / config.json (gguf-py's SpecialVocab). Anything the
// converter would guess at and memwall cannot run fails with a message.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "format/gguf_value.h"

namespace memwall::hf {

// Ordered GGUF key/values; set() replaces an existing key in place.
class Metadata {
 public:
  void set(const std::string& key, gguf::Value value);
  const gguf::Value* find(const std::string& key) const;
  const std::vector<std::pair<std::string, gguf::Value>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, gguf::Value>> items_;
};

// A JSON file, parsed; throws Error naming the file when it is not JSON.
nlohmann::json read_json(const std::string& path);

// Reads the tokenizer files in `dir` and adds tokenizer.* keys to `out`.
// `config` is the parsed config.json (vocab_size, *_token_id). Notes on
// what was skipped go to `notes`.
void add_tokenizer_metadata(const std::string& dir, const nlohmann::json& config, Metadata& out,
                            std::vector<std::string>& notes);

// The pieces of a SentencePiece tokenizer.model (protobuf ModelProto).
struct SentencePiece {
  std::string piece;
  float score = 0;
  int type =
      1;  // sentencepiece's enum: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
};
std::vector<SentencePiece> read_sentencepiece_model(const uint8_t* data, size_t size,
                                                    const std::string& path);

}  // namespace memwall::hf
