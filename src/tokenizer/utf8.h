// UTF-8 helpers for the tokenizers: how long a well-formed character is, and
// how to turn arbitrary bytes into valid UTF-8 for display.
//
// Token pieces are raw bytes: a byte-level BPE token may hold half of an emoji.
// These helpers say where a complete character ends so the streaming decoder can
// hold back a partial one, and replace bytes that can never form a character.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace memwall::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// What starts at bytes[0]: a complete well-formed character of `length` bytes,
// the start of one that the given bytes end too early to finish (`incomplete`),
// or an ill-formed sequence whose maximal subpart is `length` bytes long (to be
// replaced by one U+FFFD, as the Unicode standard recommends).
struct Scan {
  enum Kind { kValid, kIncomplete, kInvalid } kind;
  size_t length;
};
Scan scan(std::string_view bytes);

// Length of a well-formed character at bytes[0], or 1 for a byte that does not
// start one. Never 0 for non-empty input; used to step through text by characters.
size_t char_length(std::string_view bytes);

bool is_valid(std::string_view bytes);

// Replaces each ill-formed (or truncated) subpart with U+FFFD.
std::string sanitize(std::string_view bytes);

// Appends the UTF-8 encoding of a code point (< 0x110000).
void append(std::string& out, uint32_t code_point);

}  // namespace memwall::utf8
