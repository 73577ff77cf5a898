// Byte-level BPE (tokenizer.ggml.model = "gpt2"): text is split into words by
// the pre-tokenizer, each word's bytes start as one token each (GPT-2's byte
// map), and adjacent pairs are merged lowest merge rank first, leftmost first
// on ties — the order of HF tokenizers' BPE and llama.cpp alike.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/flat_maps.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

namespace memwall {

class ByteLevelBpe {
 public:
  // `merges` are "left right" strings in rank order (tokenizer.ggml.merges).
  // Throws Error if a merge is malformed or names text that is not a token.
  ByteLevelBpe(const Vocab& vocab, const std::vector<std::string>& merges, PreTokenizer pre);

  // Encodes text that holds no special tokens, appending ids to `out`.
  void encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) const;

  // The bytes a normal token stands for (its text through the inverse byte map).
  static std::string token_bytes(std::string_view token_text);

  size_t merge_count() const { return merges_.size(); }

 private:
  using Merge = MergeTable::Merge;
  // Per-call word cache: only worth building for long inputs, and only for
  // words short enough to repeat.
  static constexpr size_t kCacheFromWords = 256;
  static constexpr size_t kMaxCachedWord = 64;
  struct Symbol {
    int32_t id, prev, next;  // id -1: merged into its left neighbour
  };
  struct Candidate {
    int32_t rank, pos, result;
    bool operator>(const Candidate& o) const {  // for a min-heap: lowest rank, then leftmost
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  struct Scratch {
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
  };
  void encode_word(const Vocab& vocab, std::string_view word, Scratch& scratch,
                   std::vector<int32_t>& out) const;

  PreTokenizer pre_;
  MergeTable merges_;
  // Token of each byte's one-character text; -1 when the vocabulary lacks it
  // (the byte is then dropped, as both HF without an unk token and llama.cpp do).
  int32_t byte_token_[256];
};

}  // namespace memwall
