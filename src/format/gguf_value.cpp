#include "format/gguf_value.h"

#include <cstring>
#include <sstream>

#include "base/error.h"

namespace memwall::gguf {

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::U8:
      return "u8";
    case ValueType::I8:
      return "i8";
    case ValueType::U16:
      return "u16";
    case ValueType::I16:
      return "i16";
    case ValueType::U32:
      return "u32";
    case ValueType::I32:
      return "i32";
    case ValueType::F32:
      return "f32";
    case ValueType::BOOL:
      return "bool";
    case ValueType::STRING:
      return "string";
    case ValueType::ARRAY:
      return "array";
    case ValueType::U64:
      return "u64";
    case ValueType::I64:
      return "i64";
    case ValueType::F64:
      return "f64";
  }
  return "?";
}

bool is_valid_value_type(uint32_t id) {
  return id <= static_cast<uint32_t>(ValueType::F64);
}

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::U16:
    case ValueType::I16:
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::U64:
    case ValueType::I64:
      return true;
    default:
      return false;
  }
}

bool is_float(ValueType t) {
  return t == ValueType::F32 || t == ValueType::F64;
}

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
      return 8;
    default:
      return 0;
  }
}

namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Decodes one little-endian scalar of type t at p into the matching Value field.
void decode_scalar(ValueType t, const uint8_t* p, uint64_t& u, int64_t& i, double& f) {
  switch (t) {
    case ValueType::U8:
      u = load<uint8_t>(p);
      break;
    case ValueType::BOOL:
      u = load<uint8_t>(p) != 0;
      break;
    case ValueType::I8:
      i = load<int8_t>(p);
      break;
    case ValueType::U16:
      u = load<uint16_t>(p);
      break;
    case ValueType::I16:
      i = load<int16_t>(p);
      break;
    case ValueType::U32:
      u = load<uint32_t>(p);
      break;
    case ValueType::I32:
      i = load<int32_t>(p);
      break;
    case ValueType::F32:
      f = load<float>(p);
      break;
    case ValueType::U64:
      u = load<uint64_t>(p);
      break;
    case ValueType::I64:
      i = load<int64_t>(p);
      break;
    case ValueType::F64:
      f = load<double>(p);
      break;
    default:
      break;
  }
}

bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

}  // namespace

size_t Value::array_size() const {
  if (type != ValueType::ARRAY) return 0;
  if (element_type == ValueType::STRING) return strings.size();
  if (element_type == ValueType::ARRAY) return arrays.size();
  return raw.size() / scalar_size(element_type);
}

int64_t Value::int_at(size_t index) const {
  if (!(is_integer(element_type) || element_type == ValueType::BOOL)) {
    fail("array of ", value_type_name(element_type), " read as integers");
  }
  uint64_t uu = 0;
  int64_t ii = 0;
  double ff = 0;
  decode_scalar(element_type, raw.data() + index * scalar_size(element_type), uu, ii, ff);
  if (is_signed(element_type)) return ii;
  if (uu > static_cast<uint64_t>(INT64_MAX)) fail("array element ", uu, " is out of range");
  return static_cast<int64_t>(uu);
}

uint64_t Value::uint_at(size_t index) const {
  if (!(is_integer(element_type) || element_type == ValueType::BOOL) || is_signed(element_type)) {
    fail("array of ", value_type_name(element_type), " read as unsigned integers");
  }
  uint64_t uu = 0;
  int64_t ii = 0;
  double ff = 0;
  decode_scalar(element_type, raw.data() + index * scalar_size(element_type), uu, ii, ff);
  return uu;
}

double Value::float_at(size_t index) const {
  if (!(is_integer(element_type) || is_float(element_type))) {
    fail("array of ", value_type_name(element_type), " read as numbers");
  }
  uint64_t uu = 0;
  int64_t ii = 0;
  double ff = 0;
  decode_scalar(element_type, raw.data() + index * scalar_size(element_type), uu, ii, ff);
  if (is_float(element_type)) return ff;
  return is_signed(element_type) ? static_cast<double>(ii) : static_cast<double>(uu);
}

int64_t Value::as_int() const {
  if (is_signed(type)) return i;
  if (is_integer(type) || type == ValueType::BOOL) {
    if (u > static_cast<uint64_t>(INT64_MAX)) fail("value ", u, " is out of range");
    return static_cast<int64_t>(u);
  }
  fail("a ", value_type_name(type), " value was read as an integer");
}

double Value::as_float() const {
  if (is_float(type)) return f;
  if (is_signed(type)) return static_cast<double>(i);
  if (is_integer(type)) return static_cast<double>(u);
  fail("a ", value_type_name(type), " value was read as a number");
}

Value Value::scalar_u(ValueType t, uint64_t v) {
  Value out;
  out.type = t;
  out.u = v;
  return out;
}

Value Value::scalar_i(ValueType t, int64_t v) {
  Value out;
  out.type = t;
  out.i = v;
  return out;
}

Value Value::f32(float v) {
  Value out;
  out.type = ValueType::F32;
  out.f = v;
  return out;
}

Value Value::f64(double v) {
  Value out;
  out.type = ValueType::F64;
  out.f = v;
  return out;
}

Value Value::string(std::string v) {
  Value out;
  out.type = ValueType::STRING;
  out.s = std::move(v);
  return out;
}

Value Value::string_array(std::vector<std::string> v) {
  Value out;
  out.type = ValueType::ARRAY;
  out.element_type = ValueType::STRING;
  out.strings = std::move(v);
  return out;
}

Value Value::f32_array(const std::vector<float>& v) {
  Value out;
  out.type = ValueType::ARRAY;
  out.element_type = ValueType::F32;
  out.raw.resize(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(out.raw.data(), v.data(), out.raw.size());
  return out;
}

Value Value::i32_array(const std::vector<int32_t>& v) {
  Value out;
  out.type = ValueType::ARRAY;
  out.element_type = ValueType::I32;
  out.raw.resize(v.size() * sizeof(int32_t));
  if (!v.empty()) std::memcpy(out.raw.data(), v.data(), out.raw.size());
  return out;
}

Value Value::array_of_arrays(ValueType inner_type, std::vector<Value> v) {
  for (const Value& item : v) {
    if (item.type != ValueType::ARRAY || item.element_type != inner_type) {
      fail("nested array elements must all be arrays of ", value_type_name(inner_type));
    }
  }
  Value out;
  out.type = ValueType::ARRAY;
  out.element_type = ValueType::ARRAY;
  out.arrays = std::move(v);
  return out;
}

namespace {

std::string quote(const std::string& s, size_t max_chars) {
  std::string out = "\"";
  for (size_t k = 0; k < s.size() && k < max_chars; ++k) {
    char c = s[k];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  if (s.size() > max_chars) out += "...";
  return out + "\"";
}

}  // namespace

std::string Value::to_string(size_t max_items) const {
  std::ostringstream out;
  switch (type) {
    case ValueType::STRING:
      return quote(s, 120);
    case ValueType::BOOL:
      return u ? "true" : "false";
    case ValueType::F32:
    case ValueType::F64:
      out << f;
      return out.str();
    case ValueType::ARRAY: {
      size_t n = array_size();
      out << "[";
      for (size_t k = 0; k < n && k < max_items; ++k) {
        if (k) out << ", ";
        if (element_type == ValueType::STRING) {
          out << quote(strings[k], 40);
        } else if (element_type == ValueType::ARRAY) {
          out << arrays[k].to_string(max_items);
        } else if (is_float(element_type)) {
          out << float_at(k);
        } else if (element_type == ValueType::U64) {
          // int_at refuses values above INT64_MAX; rendering must not.
          out << load<uint64_t>(raw.data() + k * 8);
        } else {
          out << int_at(k);
        }
      }
      if (n > max_items) out << ", ... (" << n << " " << value_type_name(element_type) << ")";
      out << "]";
      return out.str();
    }
    default:
      if (is_signed(type)) {
        out << i;
      } else {
        out << u;
      }
      return out.str();
  }
}

}  // namespace memwall::gguf
