// The GGUF parser's fuzz oracle, shared by the libFuzzer target (gguf_fuzz.cpp)
// and the unit tests that replay the seed corpus and mutate files in-process,
// so `ctest` checks the same properties the fuzzer does.
//
// Properties: parsing any bytes either succeeds or throws memwall::Error with a
// short one-line message; on success every tensor lies inside the input and
// every accessor works on every value without throwing anything but Error.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "base/error.h"
#include "format/gguf_reader.h"

namespace memwall::gguf::fuzz {

// Longest error message accepted: names from the file must be elided, not
// pasted whole into messages.
constexpr size_t kMaxMessageBytes = 1024;

// Returns "" when every property holds, else a description of the first violation.
constexpr const char* kInputName = "fuzz.gguf";

inline std::string check_error_message(const std::string& msg) {
  if (msg.rfind(std::string(kInputName) + ": ", 0) != 0) return "error names no file: " + msg;
  if (msg.size() > kMaxMessageBytes) {
    return "error message of " + std::to_string(msg.size()) + " bytes";
  }
  for (char c : msg) {
    if (c == '\n' || c == '\r' || c == '\0') return "error message spans lines: " + msg;
  }
  return "";
}

inline std::string check_value(const Value& v, uint64_t& sink) {
  std::string text = v.to_string();  // must not throw on a value the reader accepted
  sink += text.size();
  if (v.type != ValueType::ARRAY) return "";
  size_t n = v.array_size();
  if (v.element_type == ValueType::STRING) {
    if (n != v.strings.size()) return "string array size mismatch";
    for (const std::string& s : v.strings) sink += s.size();
  } else if (v.element_type == ValueType::ARRAY) {
    if (n != v.arrays.size()) return "nested array size mismatch";
    for (const Value& a : v.arrays) {
      if (std::string r = check_value(a, sink); !r.empty()) return r;
    }
  } else {
    if (v.raw.size() != n * scalar_size(v.element_type)) return "numeric array size mismatch";
    for (size_t k = 0; k < n; ++k) {
      if (is_float(v.element_type) || is_integer(v.element_type)) {
        sink += static_cast<uint64_t>(v.float_at(k) != 0);
      } else if (v.element_type == ValueType::BOOL && v.int_at(k) > 1) {
        return "bool array element above 1";
      }
    }
  }
  return "";
}

// Typed getters may refuse a value of the wrong type, but only with Error.
template <typename F>
void allow_error(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

inline std::string exercise(const uint8_t* data, size_t size) {
  std::optional<File> parsed;
  try {
    parsed.emplace(File::parse(data, size, kInputName));
  } catch (const Error& e) {
    return check_error_message(e.what());
  }
  const File& file = *parsed;
  if (file.version() != 2 && file.version() != 3)
    return "accepted version " + std::to_string(file.version());
  uint64_t a = file.alignment();
  if (a == 0 || (a & (a - 1)) != 0) return "alignment not a power of two";
  if (file.data_offset() % a != 0) return "data offset not aligned";

  volatile uint64_t sink = 0;
  uint64_t local = 0;
  for (const auto& entry : file.metadata()) {
    const std::string& key = entry.first;  // not a structured binding: clang 14 cannot capture one
    const Value& value = entry.second;
    if (file.find(key) != &value) return "find() does not return the key's value";
    if (std::string r = check_value(value, local); !r.empty()) return key + ": " + r;
    allow_error([&] { local += static_cast<uint64_t>(file.get_int(key)); });
    allow_error([&] { local += static_cast<uint64_t>(file.get_float(key) != 0); });
    allow_error([&] { local += file.get_bool(key, false); });
    allow_error([&] { local += file.get_string(key).size(); });
    allow_error([&] { local += file.get_strings(key).size(); });
    allow_error([&] { local += file.get_floats(key).size(); });
    allow_error([&] { local += file.get_ints(key).size(); });
  }

  const uint8_t* end = data + size;
  for (const TensorInfo& t : file.tensors()) {
    if (file.find_tensor(t.name) != &t) return "find_tensor() does not return the tensor";
    if (t.n_dims < 1 || t.n_dims > kMaxDims) return t.name + ": bad n_dims";
    uint64_t n = 1;
    for (uint32_t d = 0; d < kMaxDims; ++d) {
      if (t.ne[d] == 0) return t.name + ": zero dimension";
      if (d >= t.n_dims && t.ne[d] != 1) return t.name + ": unused dimension not 1";
      if (__builtin_mul_overflow(n, t.ne[d], &n)) return t.name + ": element count overflows";
    }
    if (n != t.n_elements) return t.name + ": n_elements is not the product of dims";
    const TensorTypeInfo& info = tensor_type_info(t.type);
    if (t.ne[0] % info.block_elements != 0) return t.name + ": row not a whole number of blocks";
    // Exact in 128 bits, so a wrapped 64-bit size cannot pass.
    unsigned __int128 bytes =
        static_cast<unsigned __int128>(n / info.block_elements) * info.block_bytes;
    if (t.n_bytes == 0 || bytes != t.n_bytes) return t.name + ": n_bytes does not match the shape";
    if (t.offset % a != 0) return t.name + ": unaligned offset";
    if (t.data != data + file.data_offset() + t.offset) return t.name + ": data pointer mismatch";
    if (t.data < data || t.data > end || t.n_bytes > static_cast<uint64_t>(end - t.data)) {
      return t.name + ": data outside the input";
    }
    local += t.data[0];  // ASan flags these if the bounds above are wrong
    local += t.data[t.n_bytes - 1];
    local += t.shape_string().size() + t.rows();
  }
  sink = local;
  (void)sink;
  return "";
}

}  // namespace memwall::gguf::fuzz
