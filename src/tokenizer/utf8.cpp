#include "tokenizer/utf8.h"

namespace memwall::utf8 {

Scan scan(std::string_view bytes) {
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  const uint8_t lead = b[0];
  if (lead < 0x80) return {Scan::kValid, 1};
  size_t need;
  // The allowed range of the second byte excludes overlong forms, surrogates
  // and code points above U+10FFFF (Unicode table 3-7).
  uint8_t lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return {Scan::kInvalid, 1};
  }
  for (size_t k = 1; k < need; ++k) {
    if (k >= n) return {Scan::kIncomplete, k};
    const uint8_t c = b[k];
    const bool ok = (k == 1) ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return {Scan::kInvalid, k};
  }
  return {Scan::kValid, need};
}

size_t char_length(std::string_view bytes) {
  Scan s = scan(bytes);
  return s.kind == Scan::kValid ? s.length : 1;
}

bool is_valid(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    Scan s = scan(bytes.substr(i));
    if (s.kind != Scan::kValid) return false;
    i += s.length;
  }
  return true;
}

std::string sanitize(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    Scan s = scan(bytes.substr(i));
    if (s.kind == Scan::kValid) {
      out.append(bytes.substr(i, s.length));
    } else {
      out.append(kReplacement);
    }
    i += s.length;
  }
  return out;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace memwall::utf8
