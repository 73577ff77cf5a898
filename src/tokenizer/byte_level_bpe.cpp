#include "tokenizer/byte_level_bpe.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "base/error.h"
#include "tokenizer/byte_unicode.h"

namespace memwall {

ByteLevelBpe::ByteLevelBpe(const Vocab& vocab, const std::vector<std::string>& merges,
                           PreTokenizer pre)
    : pre_(std::move(pre)) {
  for (int b = 0; b < 256; ++b) {
    byte_token_[b] = vocab.find(byte_unicode::char_for_byte(static_cast<uint8_t>(b)));
  }
  merges_.reserve(merges.size());
  // In batches, as a pipeline: split and hash every merge of the batch and
  // prefetch the index slots; then prefetch the key strings those slots name;
  // then look up and prefetch the merge-table slots; then insert. Loading is
  // bound by cache misses on tables of several MiB, and this overlaps them.
  constexpr size_t kBatch = 32;
  struct Pending {
    std::string_view left, right;
    uint64_t h_left, h_right, h_joined;
    int32_t l, r, result;
  };
  Pending batch[kBatch];
  for (size_t base = 0; base < merges.size(); base += kBatch) {
    const size_t n = std::min(kBatch, merges.size() - base);
    for (size_t k = 0; k < n; ++k) {
      const std::string& m = merges[base + k];
      // The separator is the first space after the first character: llama.cpp
      // splits the same way, and byte-level token text never holds a space.
      size_t sep = m.find(' ', 1);
      if (sep == std::string::npos || sep + 1 >= m.size()) {
        fail("merge ", base + k, " '", m, "' is not two tokens separated by a space");
      }
      Pending& p = batch[k];
      p.left = std::string_view(m.data(), sep);
      p.right = std::string_view(m.data() + sep + 1, m.size() - sep - 1);
      p.h_left = TokenIndex::hash(p.left);
      p.h_right = TokenIndex::hash(p.right);
      p.h_joined = TokenIndex::concat_hash(p.left, p.right);
      vocab.index().prefetch(p.h_left);
      vocab.index().prefetch(p.h_right);
      vocab.index().prefetch(p.h_joined);
    }
    for (size_t k = 0; k < n; ++k) {
      vocab.index().prefetch_key(batch[k].h_left);
      vocab.index().prefetch_key(batch[k].h_right);
      vocab.index().prefetch_key(batch[k].h_joined);
    }
    for (size_t k = 0; k < n; ++k) {
      Pending& p = batch[k];
      const std::string& m = merges[base + k];
      p.l = vocab.index().find(p.left, {}, p.h_left);
      p.r = vocab.index().find(p.right, {}, p.h_right);
      if (p.l < 0)
        fail("merge ", base + k, " '", m, "' names '", p.left, "', which is not a token");
      if (p.r < 0)
        fail("merge ", base + k, " '", m, "' names '", p.right, "', which is not a token");
      p.result = vocab.index().find(p.left, p.right, p.h_joined);
      if (p.result < 0) {
        fail("merge ", base + k, " '", m, "' makes '", p.left, p.right, "', which is not a token");
      }
      merges_.prefetch(p.l, p.r);
    }
    for (size_t k = 0; k < n; ++k) {
      // On a repeated pair the first (best) rank stays, as in llama.cpp.
      merges_.insert(batch[k].l, batch[k].r,
                     Merge{static_cast<int32_t>(base + k), batch[k].result});
    }
  }
}

std::string ByteLevelBpe::token_bytes(std::string_view token_text) {
  return byte_unicode::decode(token_text);
}

void ByteLevelBpe::encode(const Vocab& vocab, std::string_view text,
                          std::vector<int32_t>& out) const {
  std::vector<std::string_view> words;
  pre_.split(text, words);
  Scratch scratch;
  if (words.size() < kCacheFromWords) {
    for (std::string_view word : words) encode_word(vocab, word, scratch, out);
    return;
  }
  // Long texts repeat words; remember where each word's ids were written and
  // copy them. The cache lives for this call only, so encode() stays thread-safe.
  struct Span {
    uint32_t start, count;
  };
  std::unordered_map<std::string_view, Span> seen;
  seen.reserve(words.size() / 4);
  for (std::string_view word : words) {
    if (word.size() > kMaxCachedWord) {
      encode_word(vocab, word, scratch, out);
      continue;
    }
    auto [it, fresh] = seen.try_emplace(word, Span{static_cast<uint32_t>(out.size()), 0});
    if (fresh) {
      encode_word(vocab, word, scratch, out);
      it->second.count = static_cast<uint32_t>(out.size() - it->second.start);
    } else {
      for (uint32_t k = 0; k < it->second.count; ++k) out.push_back(out[it->second.start + k]);
    }
  }
}

void ByteLevelBpe::encode_word(const Vocab& vocab, std::string_view word, Scratch& scratch,
                               std::vector<int32_t>& out) const {
  if (pre_.ignore_merges()) {
    int32_t whole = vocab.find(byte_unicode::encode(word));
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  std::vector<Symbol>& symbols = scratch.symbols;
  symbols.clear();
  for (unsigned char c : word) {
    if (byte_token_[c] < 0) continue;
    int32_t i = static_cast<int32_t>(symbols.size());
    symbols.push_back({byte_token_[c], i - 1, i + 1});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  if (symbols.size() == 1) {
    out.push_back(symbols[0].id);
    return;
  }

  std::vector<Candidate>& heap = scratch.heap;
  heap.clear();
  const std::greater<Candidate> later;
  auto consider = [&](int32_t pos) {
    if (pos < 0 || symbols[pos].next < 0) return;
    if (const Merge* m = merges_.find(symbols[pos].id, symbols[symbols[pos].next].id)) {
      heap.push_back({m->rank, pos, m->result});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    // Skip entries made stale by an earlier merge: the left symbol was absorbed
    // (id < 0), it has no right neighbour any more, or the pair there now merges
    // into something else (the check HF's BPE makes).
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const Merge* now = merges_.find(left.id, right.id);
    if (!now || now->result != top.result) continue;
    left.id = top.result;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    consider(left.prev);
    consider(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace memwall
