// llama2.c checkpoints and tokenizers, converted to a GGUF "llama" model.
//
// Checkpoint formats (karpathy/llama2.c export.py), all little-endian float32:
//   legacy (v0): 7 x int32 header {dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//                vocab_size, seq_len}; vocab_size < 0 means an unshared classifier
//                follows. Then tok_emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
//                rms_final, freq_cis_real, freq_cis_imag, [wcls].
//   version 1:   uint32 magic 0x616b3432 ("ak42"), int32 version 1, the same 7 int32,
//                uint8 shared_classifier, zero padding to 256 bytes. Then rms_att,
//                rms_ffn, rms_final, tok_emb, wq, wk, wv, wo, w1, w2, w3, [wcls].
//   Each per-layer array is all layers back to back; a matrix is (out, in) row-major.
//   Version 2 (int8) is recognized and refused with a hint.
// Tokenizer: int32 max_token_length, then per token {float32 score, int32 length,
// bytes}. The count is not stored; it must equal the model's vocab_size.
//
// Everything is validated against the file sizes before a byte is copied; any
// problem throws memwall::Error with a one-line message naming the file.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "format/gguf_writer.h"

namespace memwall::llama2c {

constexpr uint32_t kMagicV1 = 0x616b3432;  // "ak42" read as a little-endian uint32
constexpr size_t kLegacyHeaderBytes = 28;
constexpr size_t kV1HeaderBytes = 256;

struct Config {
  int version = 0;         // 0 = legacy, 1 = "ak42" version 1
  int32_t dim = 0;         // C
  int32_t hidden_dim = 0;  // F
  int32_t n_layers = 0;    // L
  int32_t n_heads = 0;     // H
  int32_t n_kv_heads = 0;  // Hkv
  int32_t vocab_size = 0;  // V, always positive here
  int32_t seq_len = 0;
  bool shared_classifier = true;  // the classifier is the token embedding

  int32_t head_size() const { return dim / n_heads; }          // D
  int32_t kv_dim() const { return n_kv_heads * head_size(); }  // Hkv * D
  uint64_t parameters() const;                                 // weights the GGUF will hold
  std::string to_string() const;                               // "dim 64, hidden_dim 172, ..."
};

// Reads the header, validates every field and checks that the file size is
// exactly what the header implies. `name` is used in messages.
Config parse_config(std::span<const uint8_t> file, const std::string& name);

struct Tokenizer {
  int32_t max_token_length = 0;
  std::vector<std::string> pieces;  // as stored: "▁" already replaced by " "
  std::vector<float> scores;
};

// Parses every token record to the end of the file and checks that there are
// exactly `vocab_size` of them.
Tokenizer parse_tokenizer(std::span<const uint8_t> file, int32_t vocab_size,
                          const std::string& name);

// GGUF token types (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6
};

struct GgufVocab {
  std::vector<std::string> tokens;  // SentencePiece-style text: " " mapped back to "▁"
  std::vector<float> scores;
  std::vector<int32_t> types;
};

// id 0 UNKNOWN, 1 "<s>" CONTROL, 2 "</s>" CONTROL, "<0xXX>" BYTE, else NORMAL.
// Throws if two tokens end up with the same text (`name` is used in the message).
GgufVocab to_gguf_vocab(const Tokenizer& tok, const std::string& name);

struct ConvertOptions {
  std::string name;  // general.name; empty = the checkpoint file's stem
};

// Builds the whole GGUF (metadata, vocab, f32 tensors) from the two files' bytes.
gguf::Writer to_gguf(std::span<const uint8_t> model, const std::string& model_name,
                     std::span<const uint8_t> tokenizer, const std::string& tokenizer_name,
                     const ConvertOptions& options);

// Maps both files, converts, and writes `out_path` atomically (via "<out>.tmp").
// Returns the checkpoint's config for the caller's summary.
Config convert(const std::string& model_path, const std::string& tokenizer_path,
               const std::string& out_path, const ConvertOptions& options);

}  // namespace memwall::llama2c
