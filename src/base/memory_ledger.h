// The memory ledger: every byte the engine owns is reserved here under a
// category before it is allocated, against one budget. A reservation that
// would exceed the budget throws an Error naming the category, the bytes
// asked and the bytes left, before anything is allocated. The ledger keeps
// each category's peak, which `memwall` prints at exit beside the measured
// peak RSS (VmHWM).
//
// Bytes the process holds but did not allocate through the engine (the
// binary, its libraries, parsed metadata, the tokenizer) are recorded as
// measured resident-set deltas (`record`), so the ledger's total can be
// compared with VmHWM at all.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string_view>

#include "base/aligned_buffer.h"

namespace memwall {

enum class MemCategory : int {
  kProcess,        // the process before the model: binary, libraries, heap (measured)
  kTokenizer,      // vocabulary, merges, chat template (measured)
  kWeights,        // weights held in RAM for the whole run
  kWeightStream,   // ring of streamed-weight buffers and their staging buffer
  kWeightsMapped,  // file pages of memory-mapped weights the plan keeps resident
  kKv,             // the KV cache
  kScratch,        // activations, quantized activations, logits
  kAttention,      // attention's score matrices (materialized) or tiles (flash)
  kCount
};

std::string_view category_name(MemCategory c);  // "weights", "kv", ...

class MemoryLedger {
 public:
  static constexpr size_t kUnlimited = 0;
  explicit MemoryLedger(size_t budget = kUnlimited) : budget_(budget) {}
  MemoryLedger(const MemoryLedger&) = delete;
  MemoryLedger& operator=(const MemoryLedger&) = delete;

  // Owns `bytes` of a category until destroyed (or moved from).
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& o) noexcept { *this = std::move(o); }
    Reservation& operator=(Reservation&& o) noexcept;
    ~Reservation() { reset(); }
    void reset();
    size_t bytes() const { return bytes_; }

   private:
    friend class MemoryLedger;
    MemoryLedger* ledger_ = nullptr;
    MemCategory category_ = MemCategory::kScratch;
    size_t bytes_ = 0;
  };

  // Throws Error when used() + bytes would exceed the budget.
  Reservation reserve(MemCategory c, size_t bytes);
  // Adds measured bytes that stay held for the rest of the run (no Error:
  // they are already resident; the planner accounted for them).
  void record(MemCategory c, size_t bytes);

  size_t budget() const { return budget_; }  // 0: unlimited
  size_t used() const;
  size_t used(MemCategory c) const;
  size_t peak() const;               // peak of the total
  size_t peak(MemCategory c) const;  // peak of one category

 private:
  void release(MemCategory c, size_t bytes);
  size_t budget_;
  mutable std::mutex mutex_;
  std::array<size_t, size_t(MemCategory::kCount)> used_{}, peak_{};
  size_t total_ = 0, total_peak_ = 0;
};

// An AlignedBuffer whose bytes are reserved from a ledger for its lifetime.
class LedgerBuffer {
 public:
  LedgerBuffer() = default;
  LedgerBuffer(MemoryLedger& ledger, MemCategory c, size_t bytes)
      : reservation_(ledger.reserve(c, AlignedBuffer::footprint(bytes))), buffer_(bytes) {}
  uint8_t* data() { return buffer_.data(); }
  const uint8_t* data() const { return buffer_.data(); }
  size_t size() const { return buffer_.size(); }
  template <class T>
  T* as() {
    return reinterpret_cast<T*>(buffer_.data());
  }

 private:
  MemoryLedger::Reservation reservation_;
  AlignedBuffer buffer_;
};

}  // namespace memwall
