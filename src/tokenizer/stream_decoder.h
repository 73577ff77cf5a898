// Turns tokens into printable text one at a time, as they are generated.
//
// A byte-level token may end in the middle of a multi-byte character (an emoji
// is often three or four byte tokens), so push() emits only complete UTF-8
// characters and holds back a trailing partial one until the next token
// completes it. Bytes that can never form a character are replaced by U+FFFD
// as soon as that is certain; flush() replaces a partial character left at
// the end. The concatenated output is always valid UTF-8 and, for well-formed
// text, equals Tokenizer::decode() of the same ids.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace memwall {

class StreamDecoder {
 public:
  // The tokenizer must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false);

  // Text completed by this token (possibly empty). Throws Error for a bad id.
  std::string push(int32_t id);
  // Whatever is held back, with an unfinished character replaced by U+FFFD;
  // the decoder then starts a new sequence.
  std::string flush();

 private:
  std::string take_complete();

  const Tokenizer* tokenizer_;
  bool render_special_;
  bool at_start_ = true;  // the SentencePiece dummy prefix is still to be dropped
  std::string pending_;   // bytes not yet emitted: at most one partial character
};

}  // namespace memwall
