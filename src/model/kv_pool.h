// The KV cache as a pool of fixed-size blocks shared by sequences.
//
// A block holds `block_tokens` consecutive positions of one sequence, for
// every layer: [layer][K rows][V rows], each row the kv_dim values of one
// position in the K (V) type. Blocks are reserved from the ledger when a
// sequence first writes into them and returned when no sequence holds them,
// so memory follows the tokens actually cached, not a per-sequence maximum.
//
// Sharing:
//   - fork(): a child sequence holds the parent's blocks (reference counts);
//     the first write into a shared block copies it (copy-on-write).
//   - prefix cache: a full block is keyed by a hash of all tokens up to its
//     end. When its last holder ends, a keyed block is kept, unreferenced, in
//     an LRU cache; a later sequence whose prompt starts with the same tokens
//     takes it back (attach_prefix) instead of recomputing it. Cached blocks
//     are the only ones ever evicted: a block some sequence holds never is.
//
// Contiguous reservation (one block of the whole context per sequence) is the
// special case block_tokens = max context.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/memory_ledger.h"
#include "format/tensor_type.h"
#include "kernels/attention.h"
#include "kernels/weight_format.h"
#include "model/model_spec.h"

namespace memwall {

enum class KvType { kF32, kF16, kQ8_0, kQ4_0 };
std::string_view kv_type_name(KvType t);  // "f32", "f16", "q8_0", "q4_0"
TensorType kv_tensor_type(KvType t);
// "f16" (keys and values) or "q8_0,q4_0" (keys, values); throws Error.
struct KvTypes;
KvTypes parse_kv_types(const std::string& text);

struct KvTypes {
  KvType k = KvType::kF32, v = KvType::kF32;
  std::string name() const;  // "f16", or "q8_0/q4_0" when they differ
  bool operator==(const KvTypes&) const = default;
};

struct KvPoolConfig {
  KvTypes types;
  int64_t block_tokens = 16;
  int64_t max_blocks = 0;  // capacity: allocation beyond it evicts cached blocks, then fails
};

class KvPool {
 public:
  using SeqId = int32_t;

  KvPool(const ModelSpec& spec, const KvPoolConfig& config, MemoryLedger& ledger);
  ~KvPool();
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  // Bytes of one position's K and V over every layer, and of one block.
  static size_t bytes_per_token(const ModelSpec& spec, KvTypes types);
  static size_t block_bytes(const ModelSpec& spec, KvTypes types, int64_t block_tokens);
  // Blocks a sequence of n positions holds.
  int64_t blocks_for(int64_t n) const { return (n + block_tokens_ - 1) / block_tokens_; }
  // Throws Error unless the model's heads fit these types.
  static void check_types(const ModelSpec& spec, KvTypes types);

  SeqId create();
  SeqId fork(SeqId parent);  // shares every block of parent
  void release(SeqId seq);   // the sequence ends; its blocks go back (or to the cache)
  // For an empty sequence: takes the cached full blocks whose tokens match a
  // prefix of tokens[0, n), at most max_tokens of them; returns the positions
  // now filled (a multiple of block_tokens).
  int64_t attach_prefix(SeqId seq, const int32_t* tokens, int64_t n, int64_t max_tokens);

  // Before writing positions [length, length + T): allocates their blocks
  // and copies a shared last block (copy-on-write). Throws Error when the
  // pool is full even after evicting every cached block.
  void prepare(SeqId seq, int64_t T);
  // Writes one position's K and V rows (kv_dim f32 values each), converted.
  // pos is in [length, length + T) of the last prepare().
  void store(SeqId seq, int64_t layer, int64_t pos, const float* k, const float* v);
  // Marks tokens[0, T) as written at [length, length + T) and keys the
  // blocks that became full.
  void commit(SeqId seq, const int32_t* tokens, int64_t T);
  // Keeps the first n positions.
  void truncate(SeqId seq, int64_t n);

  int64_t length(SeqId seq) const;
  const std::vector<int32_t>& tokens(SeqId seq) const;
  // Where one KV head of one layer lives, for attention over this sequence.
  kernels::PagedKv view(SeqId seq, int64_t layer, int64_t kv_head) const;

  KvTypes types() const { return types_; }
  int64_t block_tokens() const { return block_tokens_; }
  int64_t max_blocks() const { return max_blocks_; }
  size_t block_bytes() const { return block_bytes_; }

  struct Stats {
    int64_t blocks_allocated = 0;  // held in memory: in use + cached
    int64_t blocks_in_use = 0;     // held by at least one sequence
    int64_t blocks_cached = 0;     // unreferenced, kept for prefix reuse
    int64_t live_sequences = 0;
    int64_t positions = 0;  // tokens cached over live sequences (shared ones once per holder)
    int64_t prefix_hits = 0, cow_copies = 0, evictions = 0;
  };
  Stats stats() const;

 private:
  struct Block {
    LedgerBuffer data;
    int32_t refs = 0;
    bool keyed = false;  // in by_key_ (full, immutable while keyed)
    uint64_t key = 0;
    std::vector<int32_t> tokens;  // the block's tokens, to confirm a key match
    uint64_t parent_key = 0;
    std::list<int32_t>::iterator lru;  // valid when cached (refs == 0 && keyed)
  };
  struct Sequence {
    bool live = false;
    std::vector<int32_t> blocks;
    std::vector<const uint8_t*> pages;  // blocks' data, for PagedKv
    std::vector<int32_t> tokens;        // committed tokens
    std::vector<uint64_t> keys;         // chain key after each full block
  };

  Sequence& seq(SeqId id);
  const Sequence& seq(SeqId id) const;
  int32_t allocate();
  void unref(int32_t b);
  void unkey(int32_t b);
  void free_block(int32_t b);
  uint8_t* row(const Sequence& s, int64_t layer, int64_t pos, bool value) const;

  const ModelSpec spec_;  // a copy: pools may outlive the spec they were made from
  KvTypes types_;
  int64_t block_tokens_, max_blocks_;
  size_t k_row_bytes_, v_row_bytes_, layer_bytes_, block_bytes_;
  MemoryLedger& ledger_;
  const kernels::WeightCodec* k_codec_ = nullptr;  // null: f32, copied as is
  const kernels::WeightCodec* v_codec_ = nullptr;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_ids_;  // entries of blocks_ with no data
  std::vector<Sequence> seqs_;
  std::unordered_map<uint64_t, int32_t> by_key_;
  std::list<int32_t> lru_;  // cached blocks, least recently used first
  int64_t allocated_ = 0;
  int64_t prefix_hits_ = 0, cow_copies_ = 0, evictions_ = 0;
};

}  // namespace memwall
