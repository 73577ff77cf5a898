// Open-addressing hash tables for the tokenizer's two hot lookups: token text
// -> id and (left id, right id) -> merge. std::unordered_map allocates a node
// per entry and misses the cache on every probe; these keep entries in one
// array (load factor <= 1/2, linear probing), which makes loading a 128k
// vocabulary and encoding several times faster.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace memwall {

// Maps strings to ids. The strings are owned by the caller's vector, which
// must keep its elements (moving the vector is fine; resizing it is not).
class TokenIndex {
 public:
  void build(const std::vector<std::string>& keys);  // duplicates: the first id is kept
  // Returns the id of `key`, or -1.
  int32_t find(std::string_view key) const;
  // Inserts; returns the id already stored for `key` if present (and stores nothing).
  int32_t insert(std::string_view key, int32_t id);

 private:
  struct Slot {
    uint32_t hash;
    int32_t id;  // -1: empty
  };
  static uint64_t hash_of(std::string_view s);

  std::vector<Slot> slots_;
  const std::string* keys_ = nullptr;  // the vector's buffer survives moves of the vector
  uint64_t mask_ = 0;
};

// Maps a pair of token ids to a merge (rank and resulting token).
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  void reserve(size_t n);
  // Keeps the existing entry if the pair is already present (first rank wins).
  void insert(int32_t left, int32_t right, Merge merge);
  const Merge* find(int32_t left, int32_t right) const {
    uint64_t key = pack(left, right);
    for (uint64_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static uint64_t pack(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  uint64_t slot_of(uint64_t key) const {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;  // Fibonacci hashing: mix the high bits down
    return (h ^ (h >> 32)) & mask_;
  }

  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace memwall
