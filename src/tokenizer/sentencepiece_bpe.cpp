#include "tokenizer/sentencepiece_bpe.h"

#include <algorithm>
#include <cstdio>

#include "tokenizer/utf8.h"

namespace memwall {
namespace {

// "<0x41>" -> 0x41; -1 if the text is not a byte token's.
int parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  int value = 0;
  for (char c : t.substr(3, 2)) {
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                     : -1;
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value;
}

}  // namespace

SentencePieceBpe::SentencePieceBpe(const Vocab& vocab, bool add_space_prefix, int32_t unk_id)
    : add_space_prefix_(add_space_prefix), split_at_words_(true), unk_id_(unk_id) {
  for (size_t id = 0; id < vocab.size() && split_at_words_; ++id) {
    std::string_view t = vocab.text(static_cast<int32_t>(id));
    for (size_t pos = t.find(kSpaceMark, 1); pos != std::string_view::npos;
         pos = t.find(kSpaceMark, pos + 1)) {
      bool after_mark = pos >= kSpaceMark.size() &&
                        t.compare(pos - kSpaceMark.size(), kSpaceMark.size(), kSpaceMark) == 0;
      if (!after_mark) {
        split_at_words_ = false;
        break;
      }
    }
  }
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_token_[b] = vocab.find(name);
  }
}

std::string SentencePieceBpe::token_bytes(const Vocab& vocab, int32_t id) {
  const std::string& t = vocab.text(id);
  if (vocab.type(id) == TokenType::kByte) {
    int b = parse_byte_token(t);
    if (b >= 0) return std::string(1, static_cast<char>(b));
  }
  std::string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out += ' ';
      i += kSpaceMark.size();
    } else {
      out += t[i++];
    }
  }
  return out;
}

void SentencePieceBpe::encode(const Vocab& vocab, std::string_view raw, bool at_start,
                              std::vector<int32_t>& out) const {
  std::string text;
  text.reserve(raw.size() + 8);
  if (add_space_prefix_ && at_start) text.append(kSpaceMark);
  for (char c : raw) {
    if (c == ' ') {
      text.append(kSpaceMark);
    } else {
      text += c;
    }
  }
  Scratch scratch;
  std::string_view all = text;
  if (!split_at_words_) {
    encode_segment(vocab, all, scratch, out);
    return;
  }
  // Cut before each ▁ that follows something other than ▁.
  size_t begin = 0;
  for (size_t pos = all.find(kSpaceMark, 1); pos != std::string_view::npos;
       pos = all.find(kSpaceMark, pos + 1)) {
    if (pos >= begin + kSpaceMark.size() &&
        all.compare(pos - kSpaceMark.size(), kSpaceMark.size(), kSpaceMark) == 0) {
      continue;  // inside a run of ▁
    }
    if (pos > begin) encode_segment(vocab, all.substr(begin, pos - begin), scratch, out);
    begin = pos;
  }
  encode_segment(vocab, all.substr(begin), scratch, out);
}

void SentencePieceBpe::encode_segment(const Vocab& vocab, std::string_view text, Scratch& scratch,
                                      std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::vector<Symbol>& symbols = scratch.symbols;
  symbols.clear();
  for (size_t pos = 0; pos < text.size();) {
    auto len = static_cast<int32_t>(utf8::char_length(text.substr(pos)));
    auto i = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<int32_t>(pos), len, i - 1, i + 1});
    pos += len;
  }
  symbols.back().next = -1;

  std::vector<Candidate>& heap = scratch.heap;
  heap.clear();
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    int32_t size = symbols[left].len + symbols[right].len;
    int32_t id = vocab.find(text.substr(symbols[left].start, size));
    if (id < 0) return;
    heap.push_back({vocab.score(id), left, right, size});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) consider(i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    // Stale if either side was merged away or grew since this pair was queued.
    if (left.len == 0 || right.len == 0 || left.len + right.len != top.size) continue;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    consider(left.prev, top.left);
    consider(top.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    std::string_view piece = text.substr(symbols[i].start, symbols[i].len);
    int32_t id = vocab.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (unsigned char c : piece) {
      int32_t b = byte_token_[c];
      if (b < 0) b = unk_id_;
      if (b >= 0) out.push_back(b);
    }
  }
}

}  // namespace memwall
