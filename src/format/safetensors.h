// safetensors reader over mmap. A file is: an 8-byte little-endian header
// length N, N bytes of JSON ({"name": {"dtype", "shape", "data_offsets"}, ...,
// "__metadata__": {...}}), then the data section the offsets index.
//
// Everything is validated before any tensor byte is handed out: the header
// length against the file, the JSON's shape, each dtype, each shape's element
// count times the dtype size against its offsets (with overflow checks),
// offsets inside the data section, no two tensors overlapping, no duplicate
// names. A bad file throws memwall::Error naming the file and the tensor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"

namespace memwall::safetensors {

// Every dtype the format defines; a file may hold any of them even if a
// consumer reads only the float ones.
enum class DType {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  F64,
  I64,
  U64
};

std::optional<DType> dtype_from_name(std::string_view name);
std::string_view dtype_name(DType t);
size_t dtype_size(DType t);  // bytes per element

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<uint64_t> shape;  // outermost first, as in the file (PyTorch order)
  uint64_t begin = 0;           // byte offsets into the data section
  uint64_t end = 0;
  const uint8_t* data = nullptr;  // start of the tensor's bytes (may be unaligned)
  uint64_t bytes() const { return end - begin; }
  uint64_t elements() const;
};

// Parses and validates the header of a safetensors image held in memory.
// `path` only names the file in messages. Tensors come out in data order.
std::vector<TensorInfo> parse(const uint8_t* data, size_t size, const std::string& path);

// A mapped safetensors file. Move-only; tensor data pointers stay valid for
// the File's lifetime.
class File {
 public:
  static File open(const std::string& path);  // throws Error on any invalid byte

  const std::string& path() const { return map_.path(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(std::string_view name) const;

 private:
  MappedFile map_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace memwall::safetensors
