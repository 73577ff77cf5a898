// A read-only memory map of a whole file. Owns the mapping; move-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace memwall {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws Error with the path and errno text
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops the pages of [p, p + bytes) from this process's resident set (whole
  // pages inside the range only). The mapping stays valid: a later read
  // faults the page back in from the file.
  void release_pages(const uint8_t* p, size_t bytes) const;
  // Asks the kernel to read [p, p + bytes) into the page cache ahead of use
  // (not into this process's resident set: that happens on first touch).
  void will_need(const uint8_t* p, size_t bytes) const;
  // Stops mapping the file from `offset` (rounded up to a page) to its end:
  // the range stays reserved but maps nothing, so a plan that reads the
  // weights with pread never has them mapped at all.
  void unmap_from(size_t offset);
  // Bytes of [p, p + bytes) in the page cache now (mincore), so a plan can
  // tell a warm read from a disk read.
  size_t cached_bytes(const uint8_t* p, size_t bytes) const;

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace memwall
