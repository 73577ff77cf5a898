// choose_within_budget (--max-bpw's knapsack) against exhaustive search on
// small random instances: it always fits, it is never worse than the optimum
// by more than one step of one matrix (the LP-relaxation bound of the greedy
// on convex hulls), and at the extreme budgets it is exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "base/error.h"
#include "quant/bit_budget.h"

namespace memwall::quant {
namespace {

using Items = std::vector<std::vector<MixOption>>;

struct Totals {
  uint64_t bytes = 0;
  double loss = 0;
};

Totals totals(const Items& items, const std::vector<size_t>& pick) {
  Totals t;
  for (size_t i = 0; i < items.size(); ++i) {
    t.bytes += items[i][pick[i]].bytes;
    t.loss += items[i][pick[i]].loss;
  }
  return t;
}

// The least total loss within the budget, over every combination.
double optimum(const Items& items, uint64_t budget) {
  std::vector<size_t> pick(items.size(), 0);
  double best = 1e300;
  while (true) {
    const Totals t = totals(items, pick);
    if (t.bytes <= budget) best = std::min(best, t.loss);
    size_t i = 0;
    while (i < items.size() && ++pick[i] == items[i].size()) pick[i++] = 0;
    if (i == items.size()) return best;
  }
}

Items random_items(std::mt19937& rng) {
  std::uniform_int_distribution<int> n_items(1, 6), n_opts(1, 4), bytes(1, 40);
  std::uniform_real_distribution<double> loss(0.0, 1.0);
  Items items(size_t(n_items(rng)));
  for (auto& opts : items) {
    opts.resize(size_t(n_opts(rng)));
    for (MixOption& o : opts) o = {uint64_t(bytes(rng)), loss(rng)};
  }
  return items;
}

TEST(BitBudget, FitsAndStaysWithinOneStepOfTheOptimum) {
  std::mt19937 rng(7);
  int exact = 0, cases = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const Items items = random_items(rng);
    uint64_t lo = 0, hi = 0;
    double max_step = 0;  // the largest loss one matrix can shed
    for (const auto& opts : items) {
      uint64_t mn = UINT64_MAX, mx = 0;
      double lmin = 1e300, lmax = -1;
      for (const MixOption& o : opts) {
        mn = std::min(mn, o.bytes);
        mx = std::max(mx, o.bytes);
        lmin = std::min(lmin, o.loss);
        lmax = std::max(lmax, o.loss);
      }
      lo += mn;
      hi += mx;
      max_step = std::max(max_step, lmax - lmin);
    }
    const uint64_t budget = lo + uint64_t(rng() % (hi - lo + 1));
    const std::vector<size_t> pick = choose_within_budget(items, budget);
    const Totals t = totals(items, pick);
    const double best = optimum(items, budget);
    ASSERT_LE(t.bytes, budget) << "trial " << trial;
    ASSERT_GE(t.loss, best - 1e-12) << "trial " << trial;
    ASSERT_LE(t.loss, best + max_step + 1e-12) << "trial " << trial;
    exact += t.loss <= best + 1e-12;
    ++cases;
  }
  // The greedy is the optimum in most cases; the bound above is the guarantee.
  EXPECT_GT(exact, cases * 8 / 10) << exact << " of " << cases << " optimal";
}

TEST(BitBudget, ExtremeBudgetsAreExact) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 500; ++trial) {
    const Items items = random_items(rng);
    uint64_t all = 0;
    for (const auto& opts : items) {
      for (const MixOption& o : opts) all += o.bytes;
    }
    // A budget that holds anything: every matrix at its least loss.
    const std::vector<size_t> roomy = choose_within_budget(items, all);
    for (size_t i = 0; i < items.size(); ++i) {
      double least = 1e300;
      for (const MixOption& o : items[i]) least = std::min(least, o.loss);
      EXPECT_EQ(items[i][roomy[i]].loss, least) << "trial " << trial << " item " << i;
    }
  }
}

TEST(BitBudget, DominatedOptionIsNeverChosen) {
  // The second type is bigger and worse: no budget makes it worth taking.
  const Items items{{{10, 0.5}, {20, 0.9}, {30, 0.1}}};
  for (uint64_t budget : {10, 15, 20, 25, 29}) {
    EXPECT_EQ(choose_within_budget(items, budget)[0], 0u) << budget;
  }
  EXPECT_EQ(choose_within_budget(items, 30)[0], 2u);
}

TEST(BitBudget, UnreachableBudgetIsAnError) {
  const Items items{{{10, 0.5}, {20, 0.1}}, {{8, 0.3}}};
  EXPECT_THROW(choose_within_budget(items, 17), Error);
  EXPECT_NO_THROW(choose_within_budget(items, 18));
  EXPECT_THROW(choose_within_budget(Items(1), 100), Error);
}

}  // namespace
}  // namespace memwall::quant
