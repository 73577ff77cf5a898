// Open-addressing hash tables for the tokenizer's two hot lookups: token text
// -> id and (left id, right id) -> merge. std::unordered_map allocates a node
// per entry and misses the cache on every probe; these keep entries in one
// array (load factor <= 0.6, linear probing), which makes loading a 128k
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
  // Indexes keys[i] -> i. Returns -1, or the index of the first key that
  // repeats an earlier one (the earlier id is kept).
  int64_t build(const std::vector<std::string>& keys);
  // Returns the id of `key`, or -1.
  int32_t find(std::string_view key) const { return find(key, {}, hash_of(key)); }

  // Batched lookups (loading merges): hash first, prefetch the slot, and
  // look up later, so the cache misses of a batch overlap instead of queueing.
  // concat_hash(a, b) hashes the text a+b without building it.
  static uint64_t hash(std::string_view key) { return hash_of(key); }
  static uint64_t concat_hash(std::string_view a, std::string_view b) {
    return finish(fnv(fnv(kFnvBasis, a), b));
  }
  void prefetch(uint64_t hash) const { __builtin_prefetch(&slots_[slot_of(hash)]); }
  // Second stage, once the slot is cached: prefetch the key string the lookup
  // will compare against.
  void prefetch_key(uint64_t hash) const;
  // The id of the text head+tail (tail may be empty), given its hash.
  int32_t find(std::string_view head, std::string_view tail, uint64_t hash) const;
  // Inserts; returns the id already stored for `key` if present (and stores nothing).
  int32_t insert(std::string_view key, int32_t id);

 private:
  struct Slot {
    uint32_t hash;
    int32_t id;  // -1: empty
  };
  // FNV-1a: token texts are short, so a simple byte loop beats block hashes,
  // and it can continue over a second piece.
  static constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;
  static uint64_t fnv(uint64_t h, std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
  }
  static uint64_t finish(uint64_t h) { return h ^ (h >> 29); }
  static uint64_t hash_of(std::string_view s) { return finish(fnv(kFnvBasis, s)); }
  uint64_t slot_of(uint64_t hash) const { return (hash >> 32) & mask_; }

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
  void prefetch(int32_t left, int32_t right) const {
    __builtin_prefetch(&slots_[slot_of(pack(left, right))]);
  }
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
