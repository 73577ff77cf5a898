// Helpers for the GGUF tests: a byte builder for hand-made (often corrupt)
// files and assertions on the reader's error messages.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "format/gguf_reader.h"
#include "format/gguf_value.h"

namespace memwall::gguf::test {

// Little-endian GGUF bytes, appended field by field.
class Bytes {
 public:
  std::vector<uint8_t> b;

  // Magic, version, tensor count, metadata count.
  static Bytes header(uint32_t version, uint64_t n_tensors, uint64_t n_kv,
                      uint32_t magic = kMagic) {
    Bytes out;
    out.u32(magic).u32(version).u64(n_tensors).u64(n_kv);
    return out;
  }

  Bytes& raw(const void* p, size_t n) {
    // resize + memcpy: GCC 12 warns falsely (-Wstringop-overflow) on vector::insert here.
    if (n == 0) return *this;
    const size_t at = b.size();
    b.resize(at + n);
    std::memcpy(b.data() + at, p, n);
    return *this;
  }
  Bytes& u8(uint8_t v) { return raw(&v, 1); }
  Bytes& u16(uint16_t v) { return raw(&v, 2); }
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& f32(float v) { return raw(&v, 4); }
  Bytes& str(std::string_view s) { return u64(s.size()).raw(s.data(), s.size()); }
  Bytes& type(ValueType t) { return u32(static_cast<uint32_t>(t)); }
  Bytes& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
  Bytes& pad_to(uint64_t alignment) {
    return zeros((alignment - b.size() % alignment) % alignment);
  }

  // One key/value pair of a u32 and of a string.
  Bytes& kv_u32(std::string_view key, uint32_t v) { return str(key).type(ValueType::U32).u32(v); }
  Bytes& kv_str(std::string_view key, std::string_view v) {
    return str(key).type(ValueType::STRING).str(v);
  }
  // A tensor info record.
  Bytes& tensor(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type_id,
                uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type_id).u64(offset);
  }

  size_t size() const { return b.size(); }
  void patch_u32(size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
  void patch_u64(size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); }
};

// Offsets of the header fields.
constexpr size_t kVersionAt = 4;
constexpr size_t kTensorCountAt = 8;
constexpr size_t kKvCountAt = 16;
constexpr size_t kHeaderBytes = 24;

inline File parse_bytes(const std::vector<uint8_t>& bytes, const std::string& name = "t.gguf") {
  return File::parse(bytes.data(), bytes.size(), name);
}

// The reader's error for bytes, or "<parsed>" when it accepted them.
inline std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    parse_bytes(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "<parsed>";
}

// The reader refuses bytes with a one-line message containing `expected`.
inline ::testing::AssertionResult refused_with(const std::vector<uint8_t>& bytes,
                                               std::string_view expected) {
  std::string msg = parse_error(bytes);
  if (msg == "<parsed>") return ::testing::AssertionFailure() << "file was accepted";
  if (msg.find('\n') != std::string::npos) {
    return ::testing::AssertionFailure() << "message spans lines: " << msg;
  }
  if (msg.find(expected) == std::string::npos) {
    return ::testing::AssertionFailure() << "message '" << msg << "' lacks '" << expected << "'";
  }
  return ::testing::AssertionSuccess() << msg;
}

// Error message of a call, "" when it did not throw.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline std::string shared_data(const std::string& rel) {
  return std::string(MEMWALL_SHARED_DATA) + "/" + rel;
}
inline std::string source_path(const std::string& rel) {
  return std::string(MEMWALL_SOURCE_DIR) + "/" + rel;
}

}  // namespace memwall::gguf::test
