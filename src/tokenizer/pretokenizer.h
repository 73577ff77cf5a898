// Pre-tokenizer of byte-level BPE: splits text into words before merging, with
// the regexes llama.cpp uses for each `tokenizer.ggml.pre` name.
//
// The regexes are applied in sequence: each one splits every piece left by the
// previous one, and both its matches and the text between matches become
// pieces (HF's "Isolated" split behaviour). A piece is never empty.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace memwall {

class Pcre2Regex;

class PreTokenizer {
 public:
  // Throws Error for a name this engine does not know, listing the known ones.
  static PreTokenizer for_name(std::string_view pre);
  // Custom regex sequence (tests, future presets). Throws Error if one does not compile.
  static PreTokenizer from_regexes(const std::vector<std::string>& patterns,
                                   bool ignore_merges = false);

  // Appends the pieces of `text` to `out` (views into `text`).
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  // Llama-3-style vocabularies look up a whole word before merging (HF's
  // BPE ignore_merges): a word that is a token is that token.
  bool ignore_merges() const { return ignore_merges_; }

  // Names accepted by for_name(), for error messages and --help.
  static std::string known_names();

 private:
  std::vector<std::shared_ptr<const Pcre2Regex>> regexes_;
  bool ignore_merges_ = false;
};

}  // namespace memwall
