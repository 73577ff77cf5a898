// WeightStore: where the weights live while a model runs, as the plan says.
//   resident: every unit (model/weight_units.h) read once with pread into one
//             ledger-owned buffer, repacked for the fast kernels on the way;
//   mapped:   the file's pages through the memory map, GGUF rows as stored;
//             with a window smaller than the model, each unit's pages are
//             dropped (madvise) after use and the next one's read ahead into
//             the page cache, so resident memory tracks the plan;
//   streamed: a ring of `window` ledger-owned slots that a loader thread
//             fills with pread (and repacks) in forward order, up to
//             window - 1 units ahead of the one computing; optionally the
//             first `resident_units` units are held resident and only the
//             rest stream.
// The file is never mapped into the resident set except by the mapped plan.
// A forward pass acquires every unit once, in order: layers, then the output
// head's parts; the store checks that order (streaming depends on it).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "base/memory_ledger.h"
#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "model/weight_units.h"

namespace memwall {

enum class Residency { kResident, kMapped, kStreamed };
std::string_view residency_name(Residency r);

struct StoreConfig {
  Residency residency = Residency::kResident;
  // streamed: ring slots (>= 1); mapped: units kept resident (0: all).
  int64_t window = 0;
  // streamed: the first units (in forward order) held resident instead, so a
  // budget between "stream everything" and "all resident" buys speed.
  int64_t resident_units = 0;
  kernels::Precision precision = kernels::Precision::kFast;  // as requested
};

struct LayerMatrices {
  kernels::MatrixView wq, wk, wv, wo, w_gate, w_up, w_down;
};

// What loading and streaming did, for the report.
struct StoreStats {
  size_t bytes_read = 0;    // through pread
  double load_seconds = 0;  // reading and repacking
  double wait_seconds = 0;  // forward passes waiting for a unit
  int64_t units_loaded = 0;
};

class WeightStore {
 public:
  WeightStore(const Model& model, const StoreConfig& config, MemoryLedger& ledger,
              ThreadPool& pool);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // Bytes of staging buffers (source rows waiting to be repacked) a store
  // with this config holds while it reads.
  static size_t staging_bytes(const StoreConfig& config, const WeightUnits& units);
  static constexpr size_t kStagingBytes = size_t(256) << 10;

  const StoreConfig& config() const { return config_; }
  kernels::Precision precision() const { return precision_; }  // the one that runs
  const WeightUnits& units() const { return units_; }

  // Acquire in forward order; each view stays valid until its release.
  const LayerMatrices& acquire_layer(int64_t layer);
  void release_layer(int64_t layer);
  int64_t output_parts() const { return units_.output_parts(); }
  const kernels::MatrixView& acquire_output(int64_t part, int64_t* first_row);
  void release_output(int64_t part);

  // The embedding of one token, dequantized (read from the file, not held).
  void embed(int32_t token, float* out);

  StoreStats stats() const;

 private:
  struct Views {
    LayerMatrices layer;
    kernels::MatrixView head;
    int64_t head_first_row = 0;
  };
  Views& acquire(size_t unit);
  void release(size_t unit);
  Views views_of(const WeightUnit& u, const uint8_t* base) const;
  void load_resident(size_t n_units, MemoryLedger& ledger, ThreadPool& pool);
  bool streams(size_t unit) const { return !slots_.empty() && unit >= n_resident_; }
  // Mapped with no window (or one as large as the model): pages stay mapped.
  bool keeps_all_mapped() const {
    return config_.window <= 0 || config_.window >= int64_t(units_.units.size());
  }
  // Reads (and repacks, through staging_) unit u into dst. pool: threads for
  // repacking, or null.
  void load(const WeightUnit& u, uint8_t* dst, ThreadPool* pool);
  void read_at(uint64_t offset, uint8_t* dst, size_t bytes);
  void count_load(const WeightUnit& u);  // stats_; under mutex_ once the loader runs
  void loader();

  const Model& model_;
  StoreConfig config_;
  kernels::Precision precision_;
  WeightUnits units_;
  int fd_ = -1;
  MemoryLedger::Reservation mapped_;
  LedgerBuffer resident_;
  LedgerBuffer staging_;
  std::vector<LedgerBuffer> slots_;
  size_t n_resident_ = 0;          // units [0, n_resident_) live in resident_
  std::vector<Views> unit_views_;  // resident and mapped units
  std::vector<Views> slot_views_;  // what each ring slot holds
  std::vector<uint8_t> embed_row_;
  uint64_t next_acquire_ = 0;  // units acquired so far (checks forward order)
  uint64_t next_ticket_ = 0;   // streamed units acquired so far
  bool held_ = false;

  // Streaming state, guarded by mutex_.
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<uint64_t> slot_ticket_;  // the ticket each slot holds (~0: none yet)
  uint64_t released_ = 0;              // tickets [0, released_) are done with
  bool stop_ = false;
  std::exception_ptr loader_error_;
  StoreStats stats_;
  std::thread loader_;
};

}  // namespace memwall
