// GGUF v3 writer. Tensor data is aligned to 64 bytes by default: 32-byte
// alignment leaves rows straddling cache lines and measurably slows readers.
// The file is written to "<path>.tmp" and renamed on success, so a failed
// write never leaves a half file under the final name.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "format/gguf_value.h"
#include "format/tensor_type.h"

namespace memwall::gguf {

class Writer {
 public:
  explicit Writer(uint64_t alignment = 64);

  void set(std::string key, Value value);  // replaces an existing key
  // dims innermost first (dims[0] = row length). data must hold exactly the tensor's bytes.
  void add_tensor(std::string name, TensorType type, std::vector<uint64_t> dims,
                  std::vector<uint8_t> data);
  // A tensor whose bytes are made only while the file is written, one tensor
  // at a time, so writing a large model holds one tensor's bytes, not all of
  // them. The producer must return exactly the tensor's size in bytes.
  using Producer = std::function<std::vector<uint8_t>()>;
  void add_lazy_tensor(std::string name, TensorType type, std::vector<uint64_t> dims,
                       Producer produce);
  size_t tensor_count() const { return tensors_.size(); }

  void write(const std::string& path) const;
  std::vector<uint8_t> to_bytes() const;  // the whole file in memory (tests)

 private:
  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> dims;
    std::vector<uint8_t> data;
    Producer produce;  // set instead of data for lazy tensors
    uint64_t bytes;
    uint64_t offset;
  };
  uint64_t check_tensor(const std::string& name, TensorType type,
                        const std::vector<uint64_t>& dims) const;  // -> bytes
  template <typename Sink>
  void emit(Sink& sink) const;

  uint64_t alignment_;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<Tensor> tensors_;
  uint64_t data_bytes_ = 0;
};

}  // namespace memwall::gguf
