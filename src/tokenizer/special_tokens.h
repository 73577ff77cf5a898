// Finds special tokens (control, user-defined, unknown) written literally in
// text, so "<|im_start|>user" becomes the token <|im_start|> plus the text
// "user" instead of being spelled out with ordinary tokens.
//
// Matching is leftmost-longest, as HF tokenizers' added vocabulary does: at
// each position the longest special token that starts there wins.
// llama.cpp instead tries longer tokens first over the whole text; the two
// differ only when special tokens overlap each other, which real vocabularies avoid.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace memwall {

struct Fragment {
  std::string_view text;  // the raw text, or the special token's text
  int32_t token = -1;     // >= 0: this fragment is that special token
};

class SpecialTokenSplitter {
 public:
  explicit SpecialTokenSplitter(const Vocab& vocab);

  // Appends the fragments of `text` to `out`. With parse_special false only
  // user-defined tokens are matched (control and unknown tokens stay text),
  // as llama.cpp and HF do: user-defined tokens are part of the vocabulary's
  // surface, control tokens are markup a user must not be able to type.
  void split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

 private:
  struct Candidate {
    std::string_view text;
    int32_t id;
    bool user_defined;
  };
  // Candidates by first byte, longest first.
  std::array<std::vector<Candidate>, 256> by_first_byte_;
  bool any_ = false;
};

}  // namespace memwall
