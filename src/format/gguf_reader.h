// GGUF reader (versions 2 and 3) over a memory map.
//
// Everything read is validated before use: magic, version, counts against the
// bytes left, string and array lengths, dimensions and element-count overflow,
// type ids, tensor offsets/sizes inside the file, alignment, duplicate names.
// Any violation throws memwall::Error with a one-line message naming the file
// position or tensor; nothing is allocated in proportion to an untrusted count
// before the bytes backing it are known to exist.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/mapped_file.h"
#include "format/gguf_value.h"
#include "format/tensor_type.h"

namespace memwall::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  uint32_t n_dims = 0;
  std::array<uint64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] is the row length (contiguous)
  uint64_t offset = 0;                            // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the file's bytes

  uint64_t rows() const { return n_elements / ne[0]; }
  std::string shape_string() const;  // "[576, 49152]"
};

class File {
 public:
  // Maps and parses a file.
  static File open(const std::string& path);
  // Parses bytes the caller keeps alive (fuzzing, tests). `name` is used in errors.
  static File parse(const uint8_t* data, size_t size, std::string name = "<memory>");

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return size_; }

  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  const Value* find(std::string_view key) const;
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws if missing

  // Typed getters. Missing key: the default (or throw when no default is given).
  // Wrong type: throws, naming the key and both types.
  int64_t get_int(std::string_view key) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  std::string get_string(std::string_view key) const;
  std::string get_string(std::string_view key, std::string fallback) const;
  std::vector<std::string> get_strings(std::string_view key) const;  // empty if missing
  std::vector<float> get_floats(std::string_view key) const;         // empty if missing
  std::vector<int64_t> get_ints(std::string_view key) const;         // empty if missing

  // Drops the file's pages in [p, p + bytes) from the resident set once the
  // caller has copied what it needs (see MappedFile); no-op for parse().
  void release_pages(const uint8_t* p, size_t bytes) const {
    if (mapping_) mapping_->release_pages(p, bytes);
  }
  void will_need(const uint8_t* p, size_t bytes) const {
    if (mapping_) mapping_->will_need(p, bytes);
  }
  size_t cached_bytes(const uint8_t* p, size_t bytes) const {
    return mapping_ ? mapping_->cached_bytes(p, bytes) : bytes;
  }
  // The first byte of the file (or of the parsed bytes): file offsets of
  // tensor data are `data - base()`.
  const uint8_t* base() const { return base_; }
  // Unmaps the tensor data (reads must then use pread at `data - base()`);
  // metadata stays readable. No-op for parse().
  void unmap_tensor_data() const {
    if (mapping_) mapping_->unmap_from(data_offset_);
  }
  // Whether the bytes come from a file on disk that can be read with pread.
  bool is_mapped_file() const { return mapping_ != nullptr; }

 private:
  std::shared_ptr<MappedFile> mapping_;  // null for parse()
  std::string name_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;

  friend class Parser;
};

}  // namespace memwall::gguf
