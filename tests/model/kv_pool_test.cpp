// The paged KV pool: block accounting returns to zero, fork shares blocks and
// copies on write, the prefix cache hands back exactly the blocks of a prompt
// it has seen, eviction takes only unreferenced cached blocks; and through the
// forward pass: paged equals contiguous, flash equals materialized, and
// forked or prefix-reusing sequences produce exactly the tokens of unshared
// runs.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/forward.h"
#include "model/kv_pool.h"
#include "model/synthetic.h"
#include "runtime/session.h"
#include "runtime/weight_store.h"

namespace memwall {
namespace {

ModelSpec tiny_spec() {
  ModelSpec s;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 32;
  s.n_embd = 128;
  return s;
}

std::vector<int32_t> iota_tokens(int64_t n, int32_t first) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

// Writes positions [length, length + n) with values derived from `tag` and commits them.
void append(KvPool& pool, KvPool::SeqId seq, const std::vector<int32_t>& tokens, float tag) {
  const ModelSpec s = tiny_spec();
  const int64_t n = int64_t(tokens.size()), at = pool.length(seq);
  pool.prepare(seq, n);
  std::vector<float> k(size_t(s.kv_dim())), v(size_t(s.kv_dim()));
  for (int64_t p = at; p < at + n; ++p) {
    for (int64_t l = 0; l < s.n_layer; ++l) {
      std::fill(k.begin(), k.end(), tag + float(p) + 0.25f * float(l));
      std::fill(v.begin(), v.end(), -tag - float(p));
      pool.store(seq, l, p, k.data(), v.data());
    }
  }
  pool.commit(seq, tokens.data(), n);
}

float key_at(const KvPool& pool, KvPool::SeqId seq, int64_t layer, int64_t pos) {
  const kernels::PagedKv v = pool.view(seq, layer, 1);
  const uint8_t* row =
      v.pages[pos / v.page_tokens] + v.k_offset + size_t(pos % v.page_tokens) * v.k_row_bytes;
  float x;
  std::memcpy(&x, row, sizeof x);
  return x;
}

TEST(KvPool, AccountingReturnsToZero) {
  MemoryLedger ledger;
  const ModelSpec s = tiny_spec();
  KvPool pool(s, {{}, 16, 64}, ledger);
  std::vector<KvPool::SeqId> seqs;
  for (int i = 0; i < 5; ++i) {
    seqs.push_back(pool.create());
    append(pool, seqs.back(), iota_tokens(10 + 13 * i, 100 * i), float(i));
  }
  KvPool::Stats st = pool.stats();
  EXPECT_EQ(st.live_sequences, 5);
  EXPECT_EQ(st.blocks_in_use, 1 + 2 + 3 + 4 + 4);  // ceil((10 + 13 i) / 16)
  EXPECT_EQ(ledger.used(MemCategory::kKv),
            size_t(st.blocks_allocated) * AlignedBuffer::footprint(pool.block_bytes()));
  for (KvPool::SeqId id : seqs) pool.release(id);
  st = pool.stats();
  EXPECT_EQ(st.blocks_in_use, 0);
  EXPECT_EQ(st.live_sequences, 0);
  // What is left is the prefix cache: full blocks only, unreferenced.
  EXPECT_EQ(st.blocks_allocated, st.blocks_cached);
  EXPECT_EQ(st.blocks_cached, 0 + 1 + 2 + 3 + 3);
  EXPECT_THROW(pool.release(seqs[0]), Error);
}

TEST(KvPool, ForkSharesBlocksAndCopiesOnWrite) {
  MemoryLedger ledger;
  KvPool pool(tiny_spec(), {{}, 16, 64}, ledger);
  const KvPool::SeqId a = pool.create();
  append(pool, a, iota_tokens(20, 1), 1000.0f);  // one full block, one partial
  const KvPool::SeqId b = pool.fork(a);
  EXPECT_EQ(pool.stats().blocks_allocated, 2);
  append(pool, b, {7}, 5000.0f);  // writes into the shared partial block: copied first
  EXPECT_EQ(pool.stats().cow_copies, 1);
  EXPECT_EQ(pool.stats().blocks_allocated, 3);
  append(pool, a, {8}, 9000.0f);  // a holds its block alone again: no copy
  EXPECT_EQ(pool.stats().cow_copies, 1);
  EXPECT_EQ(key_at(pool, a, 0, 19), 1019.0f);
  EXPECT_EQ(key_at(pool, b, 0, 19), 1019.0f);
  EXPECT_EQ(key_at(pool, a, 1, 20), 9020.25f);
  EXPECT_EQ(key_at(pool, b, 1, 20), 5020.25f);
  EXPECT_EQ(pool.view(a, 0, 0).pages[0], pool.view(b, 0, 0).pages[0]);  // full block still shared
  pool.release(a);
  pool.release(b);
  EXPECT_EQ(pool.stats().blocks_in_use, 0);
}

TEST(KvPool, PrefixCacheReturnsMatchingFullBlocks) {
  MemoryLedger ledger;
  KvPool pool(tiny_spec(), {{}, 16, 64}, ledger);
  const std::vector<int32_t> prompt = iota_tokens(40, 3);
  const KvPool::SeqId a = pool.create();
  append(pool, a, prompt, 0.0f);
  pool.release(a);
  EXPECT_EQ(pool.stats().blocks_cached, 2);

  const KvPool::SeqId b = pool.create();
  EXPECT_EQ(pool.attach_prefix(b, prompt.data(), 40, 39), 32);
  EXPECT_EQ(pool.stats().prefix_hits, 2);
  EXPECT_EQ(pool.length(b), 32);
  EXPECT_EQ(key_at(pool, b, 1, 31), 31.25f);  // a's values, not recomputed
  EXPECT_EQ(pool.stats().blocks_cached, 0);

  std::vector<int32_t> other = prompt;
  other[20] = 999;  // the second block differs: only the first matches
  const KvPool::SeqId c = pool.create();
  EXPECT_EQ(pool.attach_prefix(c, other.data(), 40, 40), 16);
  // At most max_tokens: a prompt of exactly one block keeps its last token to run.
  const KvPool::SeqId d = pool.create();
  EXPECT_EQ(pool.attach_prefix(d, prompt.data(), 16, 15), 0);
  other[0] = 998;
  const KvPool::SeqId e = pool.create();
  EXPECT_EQ(pool.attach_prefix(e, other.data(), 40, 40), 0);
  // Writing after a shared cached prefix never changes the cached block.
  append(pool, c, {1, 2, 3}, 500.0f);
  EXPECT_EQ(key_at(pool, b, 0, 15), 15.0f);
  for (KvPool::SeqId id : {b, c, d, e}) pool.release(id);
  EXPECT_EQ(pool.stats().blocks_in_use, 0);
}

TEST(KvPool, EvictionTakesOnlyCachedBlocks) {
  MemoryLedger ledger;
  KvPool pool(tiny_spec(), {{}, 16, 4}, ledger);
  const KvPool::SeqId live = pool.create();
  append(pool, live, iota_tokens(32, 1), 100.0f);  // 2 blocks, held
  const KvPool::SeqId gone = pool.create();
  append(pool, gone, iota_tokens(32, 500), 200.0f);  // 2 more, then cached
  pool.release(gone);
  EXPECT_EQ(pool.stats().blocks_cached, 2);
  const KvPool::SeqId next = pool.create();
  append(pool, next, iota_tokens(20, 900), 300.0f);  // needs 2: evicts both cached
  EXPECT_EQ(pool.stats().evictions, 2);
  EXPECT_THROW(append(pool, next, iota_tokens(20, 950), 400.0f), Error);  // full: no victim
  for (int64_t p = 0; p < 32; ++p) ASSERT_EQ(key_at(pool, live, 0, p), 100.0f + float(p));
  pool.release(live);
  pool.release(next);
  EXPECT_EQ(pool.stats().blocks_in_use, 0);
}

TEST(KvPool, RejectsBadTypesAndArguments) {
  MemoryLedger ledger;
  ModelSpec odd = tiny_spec();
  odd.head_dim = 24;
  EXPECT_THROW(KvPool(odd, {{KvType::kQ8_0, KvType::kQ8_0}, 16, 4}, ledger), Error);
  EXPECT_NO_THROW(KvPool(odd, {{KvType::kF16, KvType::kF16}, 16, 4}, ledger));
  EXPECT_THROW(KvPool(tiny_spec(), {{}, 0, 4}, ledger), Error);
  EXPECT_THROW(parse_kv_types("q5_0"), Error);
  EXPECT_EQ(parse_kv_types("q8_0,q4_0").v, KvType::kQ4_0);
  KvPool pool(tiny_spec(), {{}, 16, 4}, ledger);
  const KvPool::SeqId a = pool.create();
  append(pool, a, iota_tokens(5, 1), 0.0f);
  EXPECT_THROW(pool.truncate(a, 6), Error);
  EXPECT_THROW(pool.attach_prefix(a, nullptr, 0, 0), Error);  // not empty
  EXPECT_THROW(pool.length(a + 1), Error);
}

// Through the forward pass, on a synthetic model whose head size (32) lets
// every KV type run.
class PooledForward : public ::testing::Test {
 protected:
  void SetUp() override {
    SyntheticShape shape;
    shape.n_embd = 128, shape.n_ff = 256, shape.n_head = 4, shape.n_head_kv = 2;
    shape.n_layer = 2, shape.n_vocab = 512, shape.n_ctx = 1024;
    path_ = (std::filesystem::temp_directory_path() /
             ("memwall_kv_pool_test_" + std::to_string(::getpid()) + ".gguf"))
                .string();
    write_synthetic_model(path_, shape, TensorType::Q8_0, 23);
    model_ = std::make_unique<Model>(Model::load(path_));
    store_ = std::make_unique<WeightStore>(
        *model_, StoreConfig{Residency::kResident, 0, 0, kernels::Precision::kFast}, ledger_,
        pool_);
  }
  void TearDown() override { std::filesystem::remove(path_); }

  SessionConfig config(int64_t block, kernels::AttentionKind kind, KvTypes kv = {}) const {
    return {1024, 64, kv, {kind, block}};
  }
  // Feeds the prompt, then n greedy tokens; returns them and every step's logits.
  std::vector<int32_t> greedy(Session& s, const std::vector<int32_t>& prompt, int n,
                              std::vector<float>* logits = nullptr) {
    s.feed(prompt);
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      const float* l = s.logits();
      if (logits) logits->insert(logits->end(), l, l + s.n_vocab());
      out.push_back(int32_t(std::max_element(l, l + s.n_vocab()) - l));
      s.feed({out.back()});
    }
    return out;
  }

  std::string path_;
  ThreadPool pool_{2};
  MemoryLedger ledger_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<WeightStore> store_;
  const std::vector<int32_t> prompt_ = {
      5,   77, 256, 1,   300, 42, 42, 8,  120, 3,  17, 99, 410, 6,  6,  60, 2,  11, 7,  9,
      301, 44, 18,  400, 21,  33, 70, 71, 72,  73, 74, 75, 76,  80, 81, 82, 83, 84, 85, 86};
};

float max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float scale = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(a[i]));
    diff = std::max(diff, std::fabs(a[i] - b[i]));
  }
  return diff / scale;
}

// Paged (16- and 5-token blocks) equals contiguous (one block of the whole
// context), and flash equals materialized, for every KV type: the same
// numbers summed in other groupings. Rounding differences of ~1e-7 can flip
// a 16-bit activation rounding downstream, which moves logits by up to ~2e-4
// of their scale (measured); a wrong block or tile is off by ~1e-1. So the
// bound is 1e-3 of the logits' scale, and the greedy tokens are identical.
TEST_F(PooledForward, PagedEqualsContiguousAndFlashEqualsMaterialized) {
  using kernels::AttentionKind;
  // Long enough for several flash tiles (64 keys) at every block size, and
  // for flash decode to split its keys (>= 512) and merge the parts.
  std::vector<int32_t> prompt;
  for (int i = 0; i < 600; ++i) prompt.push_back(int32_t((i * 37 + 11) % 512));
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0, KvType::kQ4_0}) {
    std::vector<float> ref_logits;
    Session contiguous(*model_, *store_, pool_, ledger_,
                       config(1024, AttentionKind::kMaterialized, {t, t}));
    const std::vector<int32_t> ref = greedy(contiguous, prompt, 12, &ref_logits);
    for (int64_t block : {16, 5}) {
      for (AttentionKind kind : {AttentionKind::kFlash, AttentionKind::kMaterialized}) {
        std::vector<float> logits;
        Session paged(*model_, *store_, pool_, ledger_, config(block, kind, {t, t}));
        EXPECT_EQ(greedy(paged, prompt, 12, &logits), ref)
            << kv_type_name(t) << " block " << block << " " << attention_kind_name(kind);
        EXPECT_LT(max_rel_diff(logits, ref_logits), 1e-3f)
            << kv_type_name(t) << " block " << block << " " << attention_kind_name(kind);
      }
    }
  }
}

// n > 1 samples from one prompt: a forked sequence continues exactly as an
// unshared run of the same tokens, and so does its parent.
TEST_F(PooledForward, ForkedSequencesMatchUnsharedRuns) {
  KvPool shared(model_->spec, {{KvType::kF16, KvType::kF16}, 16, 64}, ledger_);
  Forward fwd(*model_, *store_, pool_, ledger_, 64, 256);
  const int64_t V = model_->spec.n_vocab;
  std::vector<float> logits(static_cast<size_t>(V));
  auto argmax = [&] {
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  };
  const KvPool::SeqId a = shared.create();
  fwd.run(prompt_.data(), int64_t(prompt_.size()), shared, a, logits.data(), false);
  const KvPool::SeqId b = shared.fork(a);
  // a continues greedily; b is forced onto other tokens, then greedy.
  std::vector<int32_t> a_tokens = {argmax()}, b_tokens = {7, 8, 9};
  for (int i = 0; i < 10; ++i) {
    fwd.run(&a_tokens.back(), 1, shared, a, logits.data(), false);
    a_tokens.push_back(argmax());
  }
  for (size_t i = 0; i < 13; ++i) {
    fwd.run(&b_tokens[i], 1, shared, b, logits.data(), false);
    if (i + 1 >= b_tokens.size()) b_tokens.push_back(argmax());
  }
  EXPECT_GE(shared.stats().cow_copies, 1);
  // Unshared: the same prompt in a pool of its own, the first `forced`
  // tokens given, the rest greedy.
  auto replay = [&](const std::vector<int32_t>& tokens, size_t forced) {
    KvPool alone(model_->spec, {{KvType::kF16, KvType::kF16}, 16, 64}, ledger_);
    const KvPool::SeqId s = alone.create();
    fwd.run(prompt_.data(), int64_t(prompt_.size()), alone, s, logits.data(), false);
    std::vector<int32_t> got;
    for (size_t i = 0; i < tokens.size(); ++i) {
      got.push_back(i < forced ? tokens[i] : argmax());
      if (i + 1 < tokens.size()) fwd.run(&got.back(), 1, alone, s, logits.data(), false);
    }
    return got;
  };
  EXPECT_EQ(replay(a_tokens, 0), a_tokens);
  EXPECT_EQ(replay(b_tokens, 3), b_tokens);
  shared.release(a);
  shared.release(b);
  EXPECT_EQ(shared.stats().blocks_in_use, 0);
}

// A second request with the same prompt reuses the cached blocks and
// generates exactly what a run without the cache generates.
TEST_F(PooledForward, PrefixCacheReuseMatchesUnsharedRun) {
  using kernels::AttentionKind;
  KvPool shared(model_->spec, {{KvType::kF16, KvType::kF16}, 16, 64}, ledger_);
  const SessionConfig cfg = config(16, AttentionKind::kFlash, {KvType::kF16, KvType::kF16});
  std::vector<int32_t> first;
  {
    Session s(*model_, *store_, pool_, ledger_, cfg, shared);
    first = greedy(s, prompt_, 10);
  }
  EXPECT_GE(shared.stats().blocks_cached, 3);  // 40 prompt + 10 generated: 3 full blocks
  std::vector<int32_t> longer = prompt_;
  longer.insert(longer.end(), {90, 91, 92});
  Session again(*model_, *store_, pool_, ledger_, cfg, shared);
  again.feed(longer);
  EXPECT_EQ(again.reused_tokens(), 32);
  std::vector<int32_t> reused;
  for (int i = 0; i < 10; ++i) {
    const float* l = again.logits();
    reused.push_back(int32_t(std::max_element(l, l + again.n_vocab()) - l));
    again.feed({reused.back()});
  }
  Session alone(*model_, *store_, pool_, ledger_, cfg);
  EXPECT_EQ(greedy(alone, longer, 10), reused);
  EXPECT_EQ(alone.reused_tokens(), 0);
}

}  // namespace
}  // namespace memwall
