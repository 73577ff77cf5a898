// GPT-2's byte <-> unicode map. Byte-level BPE vocabularies store tokens as
// text in which every byte is one printable character: bytes that are already
// printable (and not space) stand for themselves, the other 68 are shifted to
// U+0100.. in order. So " the" is stored as "Ġthe" (space = U+0120).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace memwall::byte_unicode {

// The UTF-8 text of the character that stands for `byte`.
const std::string& char_for_byte(uint8_t byte);

// The byte a code point stands for, if it is one of the 256 map entries.
std::optional<uint8_t> byte_for_code_point(uint32_t code_point);

// Maps raw bytes to vocabulary text ("\xF0\x9F\x98\x80" -> "ðŁĺĢ").
std::string encode(std::string_view bytes);

// Maps vocabulary text back to raw bytes. Characters outside the map (which a
// well-formed byte-level vocabulary never has) are kept as their UTF-8.
std::string decode(std::string_view text);

}  // namespace memwall::byte_unicode
