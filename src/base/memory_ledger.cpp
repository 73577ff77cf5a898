#include "base/memory_ledger.h"

#include <algorithm>

#include "base/error.h"
#include "base/process_stats.h"

namespace memwall {

std::string_view category_name(MemCategory c) {
  switch (c) {
    case MemCategory::kProcess:
      return "process";
    case MemCategory::kTokenizer:
      return "tokenizer";
    case MemCategory::kWeights:
      return "weights";
    case MemCategory::kWeightStream:
      return "weight_stream";
    case MemCategory::kWeightsMapped:
      return "weights_mapped";
    case MemCategory::kKv:
      return "kv";
    case MemCategory::kScratch:
      return "scratch";
    case MemCategory::kAttention:
      return "attention";
    case MemCategory::kCount:
      break;
  }
  return "?";
}

MemoryLedger::Reservation& MemoryLedger::Reservation::operator=(Reservation&& o) noexcept {
  if (this != &o) {
    reset();
    ledger_ = o.ledger_;
    category_ = o.category_;
    bytes_ = o.bytes_;
    o.ledger_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void MemoryLedger::Reservation::reset() {
  if (ledger_ != nullptr && bytes_ != 0) ledger_->release(category_, bytes_);
  ledger_ = nullptr;
  bytes_ = 0;
}

MemoryLedger::Reservation MemoryLedger::reserve(MemCategory c, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (budget_ != kUnlimited && total_ + bytes > budget_) {
    const size_t left = budget_ > total_ ? budget_ - total_ : 0;
    fail("memory budget exceeded: ", category_name(c), " asked for ", format_bytes(double(bytes)),
         " but ", format_bytes(double(left)), " of the ", format_bytes(double(budget_)),
         " budget is left (raise --mem)");
  }
  const size_t i = size_t(c);
  used_[i] += bytes;
  peak_[i] = std::max(peak_[i], used_[i]);
  total_ += bytes;
  total_peak_ = std::max(total_peak_, total_);
  Reservation r;
  r.ledger_ = this;
  r.category_ = c;
  r.bytes_ = bytes;
  return r;
}

void MemoryLedger::record(MemCategory c, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t i = size_t(c);
  used_[i] += bytes;
  peak_[i] = std::max(peak_[i], used_[i]);
  total_ += bytes;
  total_peak_ = std::max(total_peak_, total_);
}

void MemoryLedger::release(MemCategory c, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  used_[size_t(c)] -= bytes;
  total_ -= bytes;
}

size_t MemoryLedger::used() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_;
}
size_t MemoryLedger::used(MemCategory c) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return used_[size_t(c)];
}
size_t MemoryLedger::peak() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_peak_;
}
size_t MemoryLedger::peak(MemCategory c) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_[size_t(c)];
}

}  // namespace memwall
