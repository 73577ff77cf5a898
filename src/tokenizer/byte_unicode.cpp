#include "tokenizer/byte_unicode.h"

#include "tokenizer/utf8.h"

namespace memwall::byte_unicode {
namespace {

struct Tables {
  std::array<uint32_t, 256> code_point{};
  std::array<std::string, 256> text;
  Tables() {
    // The printable ranges keep their own code point; the rest, in byte
    // order, take U+0100, U+0101, ... (bytes_to_unicode() in GPT-2's encoder.py).
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      code_point[b] = printable ? b : next++;
      utf8::append(text[b], code_point[b]);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

uint32_t decode_code_point(std::string_view s, size_t len) {
  const auto* b = reinterpret_cast<const uint8_t*>(s.data());
  switch (len) {
    case 1:
      return b[0];
    case 2:
      return ((b[0] & 0x1Fu) << 6) | (b[1] & 0x3Fu);
    case 3:
      return ((b[0] & 0x0Fu) << 12) | ((b[1] & 0x3Fu) << 6) | (b[2] & 0x3Fu);
    default:
      return ((b[0] & 0x07u) << 18) | ((b[1] & 0x3Fu) << 12) | ((b[2] & 0x3Fu) << 6) |
             (b[3] & 0x3Fu);
  }
}

}  // namespace

const std::string& char_for_byte(uint8_t byte) {
  return tables().text[byte];
}

std::optional<uint8_t> byte_for_code_point(uint32_t cp) {
  // Printable bytes map to themselves; the shifted ones occupy U+0100..U+0143.
  static const std::array<int16_t, 324> inverse = [] {
    std::array<int16_t, 324> inv;
    inv.fill(-1);
    for (uint32_t b = 0; b < 256; ++b) inv[tables().code_point[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  if (cp >= inverse.size() || inverse[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(inverse[cp]);
}

std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += tables().text[c];
  return out;
}

std::string decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {  // printable ASCII stands for itself (and is most of any vocabulary)
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = utf8::char_length(text.substr(i));
    bool valid = utf8::scan(text.substr(i)).kind == utf8::Scan::kValid;
    std::optional<uint8_t> byte;
    if (valid) byte = byte_for_code_point(decode_code_point(text.substr(i), len));
    if (byte) {
      out += static_cast<char>(*byte);
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

}  // namespace memwall::byte_unicode
