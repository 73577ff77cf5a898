#include "tokenizer/flat_maps.h"

#include <bit>

namespace memwall {
namespace {

size_t table_size_for(size_t n) {
  return std::bit_ceil(n * 2 + 16);
}

}  // namespace

int64_t TokenIndex::build(const std::vector<std::string>& keys) {
  keys_ = keys.data();
  slots_.assign(table_size_for(keys.size()), Slot{0, -1});
  mask_ = slots_.size() - 1;
  int64_t first_duplicate = -1;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto id = static_cast<int32_t>(i);
    if (insert(keys[i], id) != id && first_duplicate < 0) first_duplicate = id;
  }
  return first_duplicate;
}

int32_t TokenIndex::find(std::string_view head, std::string_view tail, uint64_t h) const {
  if (slots_.empty()) return -1;
  auto tag = static_cast<uint32_t>(h);
  for (uint64_t i = slot_of(h);; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.hash != tag) continue;
    const std::string& k = keys_[s.id];
    if (k.size() == head.size() + tail.size() && k.compare(0, head.size(), head) == 0 &&
        k.compare(head.size(), tail.size(), tail) == 0) {
      return s.id;
    }
  }
}

void TokenIndex::prefetch_key(uint64_t h) const {
  if (slots_.empty()) return;
  auto tag = static_cast<uint32_t>(h);
  for (uint64_t i = slot_of(h);; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id < 0) return;
    if (s.hash == tag) {
      __builtin_prefetch(&keys_[s.id]);
      return;
    }
  }
}

int32_t TokenIndex::insert(std::string_view key, int32_t id) {
  uint64_t h = hash_of(key);
  auto tag = static_cast<uint32_t>(h);
  for (uint64_t i = slot_of(h);; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.id < 0) {
      s = {tag, id};
      return id;
    }
    if (s.hash == tag && keys_[s.id] == key) return s.id;
  }
}

void MergeTable::reserve(size_t n) {
  slots_.assign(table_size_for(n), Slot{kEmpty, {0, 0}});
  mask_ = slots_.size() - 1;
  size_ = 0;
}

void MergeTable::insert(int32_t left, int32_t right, Merge merge) {
  if ((size_ + 1) * 5 > slots_.size() * 3) {
    // Grow (only when reserve() was too small): rehash everything.
    std::vector<Slot> old = std::move(slots_);
    reserve(old.size());
    for (const Slot& s : old) {
      if (s.key != kEmpty) {
        insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key), s.merge);
      }
    }
  }
  uint64_t key = pack(left, right);
  for (uint64_t i = slot_of(key);; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) return;
    if (s.key == kEmpty) {
      s = {key, merge};
      ++size_;
      return;
    }
  }
}

}  // namespace memwall
