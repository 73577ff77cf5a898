// SentencePiece-style BPE (tokenizer.ggml.model = "llama"): spaces become
// U+2581 "▁", an optional dummy space goes in front, and starting from single
// characters the adjacent pair whose concatenation is the token with the
// highest score is merged first (leftmost on ties). Characters left without a
// token fall back to <0xXX> byte tokens. This is llama.cpp's SPM tokenizer,
// which matches the sentencepiece library on Llama vocabularies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace memwall {

inline constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581

class SentencePieceBpe {
 public:
  // `unk_id` (-1 if none) stands for a byte that has no <0xXX> token.
  SentencePieceBpe(const Vocab& vocab, bool add_space_prefix, int32_t unk_id);

  // Encodes text that holds no special tokens. `at_start` says the text begins
  // the input or follows a special token: only then does the dummy prefix go in.
  void encode(const Vocab& vocab, std::string_view text, bool at_start,
              std::vector<int32_t>& out) const;

  // The bytes of one token: "▁" -> space for normal tokens, the byte for <0xXX>.
  static std::string token_bytes(const Vocab& vocab, int32_t id);

  bool add_space_prefix() const { return add_space_prefix_; }

 private:
  struct Symbol {
    int32_t start, len, prev, next;  // a byte range of the escaped text; len 0: merged away
  };
  struct Candidate {
    float score;
    int32_t left, right, size;
    bool operator<(const Candidate& o) const {  // max-heap: best score, then leftmost
      return score != o.score ? score < o.score : left > o.left;
    }
  };
  struct Scratch {
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
  };
  // Merges one segment of escaped text and appends its tokens.
  void encode_segment(const Vocab& vocab, std::string_view text, Scratch& scratch,
                      std::vector<int32_t>& out) const;

  bool add_space_prefix_;
  // True when no token has a character other than ▁ right before a ▁ (so no
  // merge can cross the start of a "▁word"): encode() can then merge word by
  // word, which is exact and keeps the heap small instead of one heap over the
  // whole input.
  bool split_at_words_;
  int32_t unk_id_;
  int32_t byte_token_[256];
};

}  // namespace memwall
