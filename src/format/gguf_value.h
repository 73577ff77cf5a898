// A GGUF metadata value: a scalar, a string, or an array (possibly nested).
//
// Arrays of numbers keep their elements as the file's little-endian bytes and
// arrays of strings as strings, so a hostile count cannot make memory grow
// much faster than the file itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace memwall::gguf {

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

std::string_view value_type_name(ValueType type);
bool is_valid_value_type(uint32_t id);
bool is_integer(ValueType type);
bool is_float(ValueType type);
size_t scalar_size(ValueType type);  // 0 for STRING and ARRAY

struct Value {
  ValueType type = ValueType::U32;
  // Scalars: one of these, chosen by `type`.
  uint64_t u = 0;  // U8, U16, U32, U64, BOOL (0/1)
  int64_t i = 0;   // I8, I16, I32, I64
  double f = 0;    // F32, F64
  std::string s;   // STRING
  // Arrays: element_type says which of these holds the elements.
  ValueType element_type = ValueType::U8;
  std::vector<uint8_t> raw;          // numeric and bool elements, little-endian
  std::vector<std::string> strings;  // STRING elements
  std::vector<Value> arrays;         // ARRAY elements (nested arrays)

  size_t array_size() const;
  int64_t int_at(size_t index) const;   // integer or bool elements
  uint64_t uint_at(size_t index) const;  // unsigned integer or bool elements
  double float_at(size_t index) const;  // any numeric element
  int64_t as_int() const;               // integer or bool scalar
  double as_float() const;              // any numeric scalar

  static Value u8(uint8_t v) { return scalar_u(ValueType::U8, v); }
  static Value u32(uint32_t v) { return scalar_u(ValueType::U32, v); }
  static Value u64(uint64_t v) { return scalar_u(ValueType::U64, v); }
  static Value i32(int32_t v) { return scalar_i(ValueType::I32, v); }
  static Value i64(int64_t v) { return scalar_i(ValueType::I64, v); }
  static Value f32(float v);
  static Value f64(double v);
  static Value boolean(bool v) { return scalar_u(ValueType::BOOL, v ? 1 : 0); }
  static Value string(std::string v);
  static Value string_array(std::vector<std::string> v);
  static Value f32_array(const std::vector<float>& v);
  static Value i32_array(const std::vector<int32_t>& v);
  static Value array_of_arrays(ValueType inner_type, std::vector<Value> v);

  // Short human-readable rendering; long arrays and strings are elided.
  std::string to_string(size_t max_items = 8) const;

 private:
  static Value scalar_u(ValueType t, uint64_t v);
  static Value scalar_i(ValueType t, int64_t v);
};

}  // namespace memwall::gguf
