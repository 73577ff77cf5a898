#include "tokenizer/stream_decoder.h"

#include <string_view>

#include "tokenizer/utf8.h"

namespace memwall {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(&tokenizer), render_special_(render_special) {}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tokenizer_->token_bytes(id, render_special_);
  if (piece.empty()) return {};
  if (at_start_ && tokenizer_->add_space_prefix() && piece[0] == ' ') piece.erase(0, 1);
  at_start_ = false;
  pending_ += piece;
  return take_complete();
}

std::string StreamDecoder::take_complete() {
  std::string out;
  std::string_view bytes = pending_;
  size_t i = 0;
  while (i < bytes.size()) {
    utf8::Scan s = utf8::scan(bytes.substr(i));
    if (s.kind == utf8::Scan::kIncomplete) break;  // may be finished by the next token
    if (s.kind == utf8::Scan::kValid) {
      out.append(bytes.substr(i, s.length));
    } else {
      out.append(utf8::kReplacement);
    }
    i += s.length;
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = take_complete();
  if (!pending_.empty()) out.append(utf8::kReplacement);
  pending_.clear();
  at_start_ = true;
  return out;
}

}  // namespace memwall
