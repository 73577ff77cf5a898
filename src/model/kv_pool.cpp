#include "model/kv_pool.h"

#include <cstring>

#include "base/error.h"
#include "base/splitmix64.h"
#include "kernels/weight_format.h"

namespace memwall {
namespace {

size_t row_bytes(KvType t, int64_t elements) {
  const TensorTypeInfo& info = tensor_type_info(kv_tensor_type(t));
  return size_t(elements / info.block_elements) * info.block_bytes;
}

KvType parse_one(std::string_view s) {
  if (s == "f32") return KvType::kF32;
  if (s == "f16") return KvType::kF16;
  if (s == "q8_0") return KvType::kQ8_0;
  if (s == "q4_0") return KvType::kQ4_0;
  fail("unknown KV cache type '", s, "' (expected f32, f16, q8_0 or q4_0)");
}

}  // namespace

std::string_view kv_type_name(KvType t) {
  switch (t) {
    case KvType::kF32:
      return "f32";
    case KvType::kF16:
      return "f16";
    case KvType::kQ8_0:
      return "q8_0";
    case KvType::kQ4_0:
      return "q4_0";
  }
  return "?";
}

TensorType kv_tensor_type(KvType t) {
  switch (t) {
    case KvType::kF16:
      return TensorType::F16;
    case KvType::kQ8_0:
      return TensorType::Q8_0;
    case KvType::kQ4_0:
      return TensorType::Q4_0;
    case KvType::kF32:
      break;
  }
  return TensorType::F32;
}

std::string KvTypes::name() const {
  if (k == v) return std::string(kv_type_name(k));
  return std::string(kv_type_name(k)) + "/" + std::string(kv_type_name(v));
}

KvTypes parse_kv_types(const std::string& text) {
  const size_t comma = text.find(',');
  if (comma == std::string::npos) {
    const KvType t = parse_one(text);
    return {t, t};
  }
  return {parse_one(std::string_view(text).substr(0, comma)),
          parse_one(std::string_view(text).substr(comma + 1))};
}

size_t KvPool::bytes_per_token(const ModelSpec& spec, KvTypes types) {
  return size_t(spec.n_layer) *
         (row_bytes(types.k, spec.kv_dim()) + row_bytes(types.v, spec.kv_dim()));
}

size_t KvPool::block_bytes(const ModelSpec& spec, KvTypes types, int64_t block_tokens) {
  return bytes_per_token(spec, types) * size_t(block_tokens);
}

void KvPool::check_types(const ModelSpec& spec, KvTypes types) {
  for (KvType t : {types.k, types.v}) {
    if (!kernels::kv_type_supported(kv_tensor_type(t), spec.head_dim)) {
      fail("KV cache type ", kv_type_name(t), " needs a head size that is a multiple of 32; this ",
           "model's is ", spec.head_dim, " (use f16 or f32)");
    }
  }
}

KvPool::KvPool(const ModelSpec& spec, const KvPoolConfig& config, MemoryLedger& ledger)
    : spec_(spec),
      types_(config.types),
      block_tokens_(config.block_tokens),
      max_blocks_(config.max_blocks),
      k_row_bytes_(row_bytes(config.types.k, spec.kv_dim())),
      v_row_bytes_(row_bytes(config.types.v, spec.kv_dim())),
      layer_bytes_(size_t(config.block_tokens) * (k_row_bytes_ + v_row_bytes_)),
      block_bytes_(layer_bytes_ * size_t(spec.n_layer)),
      ledger_(ledger) {
  if (block_tokens_ <= 0) fail("KV block size must be positive, got ", block_tokens_);
  if (max_blocks_ <= 0) fail("KV pool capacity must be positive, got ", max_blocks_, " blocks");
  check_types(spec, types_);
  // f32 rows are copied; the others go through their codec.
  if (types_.k != KvType::kF32) k_codec_ = kernels::find_codec(kv_tensor_type(types_.k));
  if (types_.v != KvType::kF32) v_codec_ = kernels::find_codec(kv_tensor_type(types_.v));
}

KvPool::~KvPool() = default;

KvPool::Sequence& KvPool::seq(SeqId id) {
  if (id < 0 || size_t(id) >= seqs_.size() || !seqs_[size_t(id)].live) {
    fail("no live KV sequence ", id);
  }
  return seqs_[size_t(id)];
}

const KvPool::Sequence& KvPool::seq(SeqId id) const {
  return const_cast<KvPool*>(this)->seq(id);
}

KvPool::SeqId KvPool::create() {
  for (size_t i = 0; i < seqs_.size(); ++i) {
    if (!seqs_[i].live) {
      seqs_[i] = Sequence{};
      seqs_[i].live = true;
      return SeqId(i);
    }
  }
  seqs_.emplace_back().live = true;
  return SeqId(seqs_.size() - 1);
}

KvPool::SeqId KvPool::fork(SeqId parent) {
  seq(parent);  // validates before create() may move seqs_
  const SeqId child = create();
  Sequence& p = seqs_[size_t(parent)];
  Sequence& c = seqs_[size_t(child)];
  c.blocks = p.blocks;
  c.pages = p.pages;
  c.tokens = p.tokens;
  c.keys = p.keys;
  for (int32_t b : c.blocks) ++blocks_[size_t(b)].refs;
  return child;
}

void KvPool::release(SeqId id) {
  Sequence& s = seq(id);
  for (int32_t b : s.blocks) unref(b);
  s = Sequence{};
}

int32_t KvPool::allocate() {
  for (;;) {
    if (allocated_ >= max_blocks_) {
      if (lru_.empty()) {
        fail("the KV cache is full: all ", max_blocks_, " blocks of ", block_tokens_,
             " tokens are held by live sequences (raise --mem, lower --ctx, or use a smaller KV "
             "type)");
      }
      free_block(lru_.front());  // evict the least recently used cached block
      ++evictions_;
      continue;
    }
    int32_t id;
    if (!free_ids_.empty()) {
      id = free_ids_.back();
      free_ids_.pop_back();
    } else {
      id = int32_t(blocks_.size());
      blocks_.emplace_back();
    }
    try {
      blocks_[size_t(id)].data = LedgerBuffer(ledger_, MemCategory::kKv, block_bytes_);
    } catch (const Error&) {
      free_ids_.push_back(id);
      if (lru_.empty()) throw;
      free_block(lru_.front());
      ++evictions_;
      continue;
    }
    Block& b = blocks_[size_t(id)];
    b.refs = 1;
    b.keyed = false;
    b.tokens.clear();
    ++allocated_;
    return id;
  }
}

void KvPool::unkey(int32_t id) {
  Block& b = blocks_[size_t(id)];
  if (!b.keyed) return;
  by_key_.erase(b.key);
  b.keyed = false;
  b.tokens.clear();
}

void KvPool::free_block(int32_t id) {
  Block& b = blocks_[size_t(id)];
  if (b.keyed && b.refs == 0) lru_.erase(b.lru);
  unkey(id);
  b.data = LedgerBuffer();
  b.refs = 0;
  --allocated_;
  free_ids_.push_back(id);
}

void KvPool::unref(int32_t id) {
  Block& b = blocks_[size_t(id)];
  if (--b.refs > 0) return;
  if (b.keyed) {
    b.lru = lru_.insert(lru_.end(), id);  // cached for prefix reuse
  } else {
    free_block(id);
  }
}

namespace {

// A chain: each full block's key covers every token before its end, so it
// is the previous block's key (kChainSeed for the first) hashed with the
// block's tokens.
constexpr uint64_t kChainSeed = 0x6b76706f6f6cull;  // "kvpool"

uint64_t chain(uint64_t key, const int32_t* tokens, int64_t n) {
  for (int64_t i = 0; i < n; ++i) key = SplitMix64{key ^ uint64_t(uint32_t(tokens[i]))}.next();
  return key;
}

}  // namespace

int64_t KvPool::attach_prefix(SeqId id, const int32_t* tokens, int64_t n, int64_t max_tokens) {
  Sequence& s = seq(id);
  if (!s.blocks.empty() || !s.tokens.empty()) fail("attach_prefix needs an empty sequence");
  const int64_t limit = std::min(n, max_tokens);
  uint64_t key = kChainSeed, parent = 0;
  int64_t filled = 0;
  while (filled + block_tokens_ <= limit) {
    key = chain(key, tokens + filled, block_tokens_);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) break;
    Block& b = blocks_[size_t(it->second)];
    if (b.parent_key != parent || !std::equal(b.tokens.begin(), b.tokens.end(), tokens + filled)) {
      break;  // a hash collision: not the same prefix
    }
    if (b.refs == 0) lru_.erase(b.lru);
    ++b.refs;
    s.blocks.push_back(it->second);
    s.pages.push_back(b.data.data());
    s.tokens.insert(s.tokens.end(), tokens + filled, tokens + filled + block_tokens_);
    s.keys.push_back(key);
    filled += block_tokens_;
    parent = key;
    ++prefix_hits_;
  }
  return filled;
}

void KvPool::prepare(SeqId id, int64_t T) {
  Sequence& s = seq(id);
  const int64_t len = int64_t(s.tokens.size());
  if (len % block_tokens_ != 0) {  // the last block is partly written and will be written into
    const size_t last = size_t(len / block_tokens_);
    const int32_t old = s.blocks[last];
    if (blocks_[size_t(old)].refs > 1) {
      const int32_t copy = allocate();
      std::memcpy(blocks_[size_t(copy)].data.data(), blocks_[size_t(old)].data.data(),
                  block_bytes_);
      unref(old);
      s.blocks[last] = copy;
      s.pages[last] = blocks_[size_t(copy)].data.data();
      ++cow_copies_;
    } else {
      unkey(old);  // its contents are about to change
    }
  }
  while (int64_t(s.blocks.size()) < blocks_for(len + T)) {
    const int32_t b = allocate();
    Sequence& again = seq(id);  // allocate() does not move seqs_, but stay safe
    again.blocks.push_back(b);
    again.pages.push_back(blocks_[size_t(b)].data.data());
  }
}

uint8_t* KvPool::row(const Sequence& s, int64_t layer, int64_t pos, bool value) const {
  const int64_t b = pos / block_tokens_, i = pos % block_tokens_;
  uint8_t* base = const_cast<uint8_t*>(s.pages[size_t(b)]) + size_t(layer) * layer_bytes_;
  if (!value) return base + size_t(i) * k_row_bytes_;
  return base + size_t(block_tokens_) * k_row_bytes_ + size_t(i) * v_row_bytes_;
}

void KvPool::store(SeqId id, int64_t layer, int64_t pos, const float* k, const float* v) {
  const Sequence& s = seq(id);
  const int64_t n = spec_.kv_dim();
  auto put = [&](const kernels::WeightCodec* codec, const float* src, uint8_t* dst) {
    if (codec) {
      codec->quantize_row(src, dst, n);
    } else {
      std::memcpy(dst, src, size_t(n) * sizeof(float));
    }
  };
  put(k_codec_, k, row(s, layer, pos, false));
  put(v_codec_, v, row(s, layer, pos, true));
}

void KvPool::commit(SeqId id, const int32_t* tokens, int64_t T) {
  Sequence& s = seq(id);
  const int64_t old_len = int64_t(s.tokens.size());
  if (blocks_for(old_len + T) > int64_t(s.blocks.size())) fail("KV commit without prepare");
  s.tokens.insert(s.tokens.end(), tokens, tokens + T);
  for (int64_t i = int64_t(s.keys.size()); (i + 1) * block_tokens_ <= old_len + T; ++i) {
    const uint64_t parent = i > 0 ? s.keys[size_t(i - 1)] : 0;
    const uint64_t key =
        chain(i > 0 ? parent : kChainSeed, s.tokens.data() + i * block_tokens_, block_tokens_);
    s.keys.push_back(key);
    Block& b = blocks_[size_t(s.blocks[size_t(i)])];
    if (b.keyed || b.refs != 1) continue;
    if (by_key_.count(key)) continue;  // another block already holds these tokens
    b.keyed = true;
    b.key = key;
    b.parent_key = parent;
    b.tokens.assign(s.tokens.begin() + i * block_tokens_,
                    s.tokens.begin() + (i + 1) * block_tokens_);
    by_key_[key] = s.blocks[size_t(i)];
  }
}

void KvPool::truncate(SeqId id, int64_t n) {
  Sequence& s = seq(id);
  if (n < 0 || n > int64_t(s.tokens.size())) {
    fail("cannot truncate a KV sequence of ", s.tokens.size(), " positions to ", n);
  }
  s.tokens.resize(size_t(n));
  s.keys.resize(std::min(s.keys.size(), size_t(n / block_tokens_)));
  while (int64_t(s.blocks.size()) > blocks_for(n)) {
    unref(s.blocks.back());
    s.blocks.pop_back();
    s.pages.pop_back();
  }
}

int64_t KvPool::length(SeqId id) const {
  return int64_t(seq(id).tokens.size());
}

const std::vector<int32_t>& KvPool::tokens(SeqId id) const {
  return seq(id).tokens;
}

kernels::PagedKv KvPool::view(SeqId id, int64_t layer, int64_t kv_head) const {
  const Sequence& s = seq(id);
  const int64_t col = kv_head * spec_.head_dim;
  kernels::PagedKv v;
  v.pages = s.pages.data();
  v.page_tokens = block_tokens_;
  v.k_offset = size_t(layer) * layer_bytes_ + row_bytes(types_.k, col);
  v.v_offset = size_t(layer) * layer_bytes_ + size_t(block_tokens_) * k_row_bytes_ +
               row_bytes(types_.v, col);
  v.k_row_bytes = k_row_bytes_;
  v.v_row_bytes = v_row_bytes_;
  v.k_type = kv_tensor_type(types_.k);
  v.v_type = kv_tensor_type(types_.v);
  return v;
}

KvPool::Stats KvPool::stats() const {
  Stats st;
  st.blocks_allocated = allocated_;
  st.blocks_cached = int64_t(lru_.size());
  st.blocks_in_use = allocated_ - st.blocks_cached;
  for (const Sequence& s : seqs_) {
    if (!s.live) continue;
    ++st.live_sequences;
    st.positions += int64_t(s.tokens.size());
  }
  st.prefix_hits = prefix_hits_;
  st.cow_copies = cow_copies_;
  st.evictions = evictions_;
  return st;
}

}  // namespace memwall
