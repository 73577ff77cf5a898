// The ledger: reservations count against one budget by category, peaks are
// kept, and going over budget fails before anything is allocated, naming
// the category and the bytes.
#include "base/memory_ledger.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace memwall {
namespace {

TEST(MemoryLedger, CountsPeaksAndReleases) {
  MemoryLedger ledger(1000);
  {
    auto a = ledger.reserve(MemCategory::kKv, 300);
    auto b = ledger.reserve(MemCategory::kScratch, 200);
    EXPECT_EQ(ledger.used(), 500u);
    EXPECT_EQ(ledger.used(MemCategory::kKv), 300u);
    auto moved = std::move(a);
    EXPECT_EQ(ledger.used(), 500u);
    moved.reset();
    EXPECT_EQ(ledger.used(), 200u);
    auto c = ledger.reserve(MemCategory::kKv, 700);
    EXPECT_EQ(ledger.used(), 900u);
  }
  EXPECT_EQ(ledger.used(), 0u);
  EXPECT_EQ(ledger.peak(), 900u);
  EXPECT_EQ(ledger.peak(MemCategory::kKv), 700u);
  EXPECT_EQ(ledger.peak(MemCategory::kScratch), 200u);
}

TEST(MemoryLedger, OverBudgetNamesCategoryAskedAndLeft) {
  MemoryLedger ledger(size_t(10) << 20);
  ledger.record(MemCategory::kProcess, size_t(4) << 20);
  auto kv = ledger.reserve(MemCategory::kKv, size_t(5) << 20);
  try {
    auto w = ledger.reserve(MemCategory::kWeights, size_t(2) << 20);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("weights"), std::string::npos) << m;
    EXPECT_NE(m.find("2.00 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("1.00 MiB"), std::string::npos) << m;  // what is left
    EXPECT_NE(m.find("--mem"), std::string::npos) << m;
  }
  EXPECT_EQ(ledger.used(), size_t(9) << 20);  // the failed reservation took nothing
}

TEST(MemoryLedger, UnlimitedNeverFails) {
  MemoryLedger ledger;
  auto r = ledger.reserve(MemCategory::kWeights, size_t(1) << 40);
  EXPECT_EQ(ledger.used(), size_t(1) << 40);
}

TEST(MemoryLedger, LedgerBufferReservesItsFootprint) {
  MemoryLedger ledger;
  {
    LedgerBuffer small(ledger, MemCategory::kScratch, 5000);
    EXPECT_EQ(ledger.used(), 8192u);  // whole pages
    LedgerBuffer huge(ledger, MemCategory::kWeights, (size_t(32) << 20) + 1);
    EXPECT_EQ(ledger.used(MemCategory::kWeights), size_t(34) << 20);  // whole 2 MiB pages
    EXPECT_EQ(reinterpret_cast<uintptr_t>(huge.data()) % (size_t(2) << 20), 0u);
  }
  EXPECT_EQ(ledger.used(), 0u);
}

}  // namespace
}  // namespace memwall
