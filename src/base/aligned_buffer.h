// An owned, 64-byte aligned byte buffer (cache-line and zmm aligned), for
// data that SIMD kernels stream: repacked weights, and later other arenas.
// Buffers of kHugeFrom or more are 2 MiB aligned and asked to use
// transparent huge pages: streaming hundreds of MiB per decoded token through
// 4 KiB pages costs a TLB miss every 4 KiB. A huge page is resident whole, so
// such a buffer holds its size rounded up to 2 MiB (footprint()); below
// kHugeFrom that rounding would waste more than it saves.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "base/error.h"

namespace memwall {

class AlignedBuffer {
 public:
  static constexpr size_t kAlign = 64;
  static constexpr size_t kHugePage = size_t(2) << 20;
  static constexpr size_t kHugeFrom = size_t(32) << 20;
  // The resident bytes a buffer of `bytes` holds once written.
  static size_t footprint(size_t bytes) {
    const size_t align = bytes >= kHugeFrom ? kHugePage : size_t(4096);
    return (bytes + align - 1) / align * align;
  }
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes) : size_(bytes) {
    if (bytes == 0) return;
    const size_t align = bytes >= kHugeFrom ? kHugePage : kAlign;
    const size_t rounded = (bytes + align - 1) / align * align;
    data_.reset(static_cast<uint8_t*>(std::aligned_alloc(align, rounded)));
    if (!data_) fail("out of memory: cannot allocate ", bytes, " bytes");
    // Advice only: without THP the buffer works the same, with small pages.
    if (align == kHugePage) ::madvise(data_.get(), rounded, MADV_HUGEPAGE);
  }
  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

}  // namespace memwall
