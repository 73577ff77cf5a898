#include "runtime/weight_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/error.h"
#include "kernels/packed_weights.h"

namespace memwall {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Rows per staging piece of matrix m: whole 16-row groups (the staging
// buffer holds at least 16 rows of every packed matrix).
int64_t rows_per_piece(const kernels::MatrixView& m) {
  return std::max<int64_t>(16, int64_t(WeightStore::kStagingBytes / m.row_bytes) / 16 * 16);
}

}  // namespace

std::string_view residency_name(Residency r) {
  switch (r) {
    case Residency::kResident:
      return "resident";
    case Residency::kMapped:
      return "mapped";
    case Residency::kStreamed:
      return "streamed";
  }
  return "?";
}

size_t WeightStore::staging_bytes(const StoreConfig& config, const WeightUnits& units) {
  if (config.residency == Residency::kMapped) return 0;
  size_t bytes = 0;
  for (const WeightUnit& u : units.units) {
    for (const UnitMatrix& m : u.matrices) {
      if (m.packed) bytes = std::max(bytes, std::max(kStagingBytes, 16 * m.source->row_bytes));
    }
  }
  return bytes;
}

WeightStore::WeightStore(const Model& model, const StoreConfig& config, MemoryLedger& ledger,
                         ThreadPool& pool)
    : model_(model), config_(config) {
  const kernels::Isa isa = kernels::active_isa();
  precision_ = effective_precision(config.precision, isa, model.weights);
  const bool mapped = config.residency == Residency::kMapped;
  units_ = weight_units(model.weights, precision_, isa, /*packed=*/!mapped);
  if (model.file.is_mapped_file()) {
    fd_ = ::open(model.file.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail("cannot open '", model.file.path(), "': ", std::strerror(errno));
  }
  embed_row_.resize(model.weights.token_embd.row_bytes);

  if (mapped) {
    const bool all = config.window <= 0 || config.window >= int64_t(units_.units.size());
    size_t bytes = 0;
    for (const WeightUnit& u : units_.units) {
      size_t b = 0;
      for (const UnitMatrix& m : u.matrices) b += m.file_bytes();
      bytes = all ? bytes + b : std::max(bytes, b);
    }
    mapped_ = ledger.reserve(MemCategory::kWeightsMapped, bytes);
    for (const WeightUnit& u : units_.units) unit_views_.push_back(views_of(u, nullptr));
    return;
  }

  const size_t staging = staging_bytes(config, units_);
  const size_t n_units = units_.units.size();
  if (config.residency == Residency::kResident) {
    load_resident(n_units, ledger, pool);
    return;
  }

  // Streamed, after the resident prefix.
  if (config.window < 1) fail("a streamed plan needs a window of at least 1 unit");
  load_resident(size_t(std::clamp<int64_t>(config.resident_units, 0, int64_t(n_units))), ledger,
                pool);
  if (n_resident_ == n_units) return;
  size_t slot_bytes = 0;
  for (size_t u = n_resident_; u < n_units; ++u) {
    slot_bytes = std::max(slot_bytes, units_.units[u].bytes);
  }
  const int64_t k = std::min<int64_t>(config.window, int64_t(n_units - n_resident_));
  if (staging > 0) staging_ = LedgerBuffer(ledger, MemCategory::kWeightStream, staging);
  for (int64_t s = 0; s < k; ++s) {
    slots_.emplace_back(ledger, MemCategory::kWeightStream, slot_bytes);
  }
  slot_views_.resize(size_t(k));
  slot_ticket_.assign(size_t(k), ~uint64_t(0));
  loader_ = std::thread([this] { loader(); });
}

// Reads units [0, n) into one resident buffer (with a staging buffer only
// while they load).
void WeightStore::load_resident(size_t n, MemoryLedger& ledger, ThreadPool& pool) {
  n_resident_ = n;
  if (n == 0) return;
  const auto t0 = Clock::now();
  size_t bytes = 0;
  for (size_t u = 0; u < n; ++u) bytes += units_.units[u].bytes;
  resident_ = LedgerBuffer(ledger, MemCategory::kWeights, bytes);
  const size_t staging = staging_bytes({Residency::kResident, 0, 0, precision_}, units_);
  if (staging > 0) staging_ = LedgerBuffer(ledger, MemCategory::kWeightStream, staging);
  size_t offset = 0;
  for (size_t u = 0; u < n; ++u) {
    load(units_.units[u], resident_.data() + offset, &pool);
    count_load(units_.units[u]);
    unit_views_.push_back(views_of(units_.units[u], resident_.data() + offset));
    offset += units_.units[u].bytes;
  }
  staging_ = LedgerBuffer();  // only needed while loading
  stats_.load_seconds += seconds_since(t0);
}

WeightStore::~WeightStore() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (loader_.joinable()) loader_.join();
  if (fd_ >= 0) ::close(fd_);
}

WeightStore::Views WeightStore::views_of(const WeightUnit& u, const uint8_t* base) const {
  Views v;
  std::vector<kernels::MatrixView> mats;
  for (const UnitMatrix& m : u.matrices) {
    kernels::MatrixView view = *m.source;
    view.rows = m.rows;
    if (base == nullptr) {  // mapped: the file's rows
      view.data = m.source->row(m.first_row);
    } else if (m.packed) {
      view.data = nullptr;  // packed kernels only (uses_packed guarantees one)
      view.packed = base + m.offset;
      view.packed_group_bytes = kernels::packed_shape(view.type, 16, view.cols).group_bytes;
    } else {
      view.data = base + m.offset;
    }
    mats.push_back(view);
  }
  if (u.layer >= 0) {
    v.layer = {mats[0], mats[1], mats[2], mats[3], mats[4], mats[5], mats[6]};
  } else {
    v.head = mats[0];
    v.head_first_row = u.matrices[0].first_row;
  }
  return v;
}

void WeightStore::read_at(uint64_t offset, uint8_t* dst, size_t bytes) {
  if (fd_ < 0) {  // a model parsed from memory (tests)
    std::memcpy(dst, model_.file.base() + offset, bytes);
    return;
  }
  while (bytes > 0) {
    const ssize_t n = ::pread(fd_, dst, bytes, off_t(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fail("cannot read '", model_.file.path(), "' at byte ", offset, ": ",
           n < 0 ? std::strerror(errno) : "unexpected end of file");
    }
    dst += n;
    offset += uint64_t(n);
    bytes -= size_t(n);
  }
}

void WeightStore::load(const WeightUnit& u, uint8_t* dst, ThreadPool* pool) {
  uint8_t* staging = staging_.data();
  const uint8_t* base = model_.file.base();
  for (const UnitMatrix& m : u.matrices) {
    const kernels::MatrixView& src = *m.source;
    const uint64_t at = uint64_t(src.row(m.first_row) - base);
    if (!m.packed) {
      read_at(at, dst + m.offset, m.file_bytes());
      continue;
    }
    const kernels::PackedShape shape = kernels::packed_shape(src.type, 16, src.cols);
    const int64_t piece = rows_per_piece(src);
    for (int64_t r = 0; r < m.rows; r += piece) {
      const int64_t n = std::min(piece, m.rows - r);
      read_at(at + uint64_t(r) * src.row_bytes, staging, size_t(n) * src.row_bytes);
      uint8_t* out = dst + m.offset + size_t(r / 16) * shape.group_bytes;
      const int64_t groups = (n + 15) / 16;
      auto pack = [&](int64_t g0, int64_t g1, int) {
        kernels::pack_groups(src.type, staging, src.row_bytes, n, src.cols, g0, g1, out);
      };
      if (pool) {
        pool->parallel_for(groups, pack);
      } else {
        pack(0, groups, 0);
      }
    }
  }
}

void WeightStore::count_load(const WeightUnit& u) {
  stats_.units_loaded += 1;
  for (const UnitMatrix& m : u.matrices) stats_.bytes_read += m.file_bytes();
}

void WeightStore::loader() {
  const uint64_t k = slots_.size(), n_streamed = units_.units.size() - n_resident_;
  for (uint64_t t = 0;; ++t) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || t < released_ + k; });
      if (stop_) return;
    }
    const auto t0 = Clock::now();
    try {
      const WeightUnit& u = units_.units[n_resident_ + t % n_streamed];
      load(u, slots_[t % k].data(), nullptr);
      slot_views_[t % k] = views_of(u, slots_[t % k].data());
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      loader_error_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.load_seconds += seconds_since(t0);
    count_load(units_.units[n_resident_ + t % n_streamed]);
    slot_ticket_[t % k] = t;
    changed_.notify_all();
  }
}

WeightStore::Views& WeightStore::acquire(size_t unit) {
  const size_t n_units = units_.units.size();
  if (held_ || next_acquire_ % n_units != unit) {
    fail("weight store: unit ", unit, " acquired out of forward order");
  }
  ++next_acquire_;
  held_ = true;
  if (config_.residency == Residency::kMapped) {
    // Read the next unit into the page cache while this one computes: on
    // every pass when a window drops each unit's pages after use, else only
    // on the first (the pages then stay mapped). MADV_WILLNEED walks the
    // page cache page by page even when every page is there: on the default
    // model in nf4 about 1 ms per forward pass on this thread while the pool
    // waits, a fifth of decode at 2 threads.
    if (!keeps_all_mapped() || next_acquire_ < n_units) {
      const WeightUnit& next = units_.units[(unit + 1) % n_units];
      for (const UnitMatrix& m : next.matrices) {
        model_.file.will_need(m.source->row(m.first_row), m.file_bytes());
      }
    }
    return unit_views_[unit];
  }
  if (!streams(unit)) return unit_views_[unit];
  const uint64_t t = next_ticket_++;
  const auto t0 = Clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  const size_t slot = t % slots_.size();
  changed_.wait(lock, [&] { return slot_ticket_[slot] == t || loader_error_; });
  if (slot_ticket_[slot] != t) std::rethrow_exception(loader_error_);
  stats_.wait_seconds += seconds_since(t0);
  return slot_views_[slot];
}

void WeightStore::release(size_t unit) {
  held_ = false;
  if (config_.residency == Residency::kMapped) {
    if (!keeps_all_mapped()) {
      for (const UnitMatrix& m : units_.units[unit].matrices) {
        model_.file.release_pages(m.source->row(m.first_row), m.file_bytes());
      }
    }
    return;
  }
  if (!streams(unit)) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ += 1;
  }
  changed_.notify_all();
}

const LayerMatrices& WeightStore::acquire_layer(int64_t layer) {
  return acquire(size_t(layer)).layer;
}
void WeightStore::release_layer(int64_t layer) {
  release(size_t(layer));
}
const kernels::MatrixView& WeightStore::acquire_output(int64_t part, int64_t* first_row) {
  Views& v = acquire(size_t(units_.n_layer + part));
  *first_row = v.head_first_row;
  return v.head;
}
void WeightStore::release_output(int64_t part) {
  release(size_t(units_.n_layer + part));
}

void WeightStore::embed(int32_t token, float* out) {
  const kernels::MatrixView& e = model_.weights.token_embd;
  read_at(uint64_t(e.row(token) - model_.file.base()), embed_row_.data(), e.row_bytes);
  e.codec->dequantize_row(embed_row_.data(), out, e.cols);
}

StoreStats WeightStore::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace memwall
