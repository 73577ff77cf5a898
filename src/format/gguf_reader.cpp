#include "format/gguf_reader.h"

#include <cstring>
#include <sstream>

#include "base/error.h"

namespace memwall::gguf {

namespace {

// Caps that no real model comes near but that bound what a hostile file can
// make the parser allocate or recurse into.
constexpr uint32_t kMaxArrayDepth = 8;
constexpr uint64_t kMaxKeyBytes = 64 * 1024;
constexpr uint64_t kMaxTensorNameBytes = 1024;
constexpr uint64_t kMaxAlignment = 1 << 20;
// Total elements across all string arrays and nested arrays: their in-memory
// form is several times larger than their bytes in the file.
constexpr uint64_t kMaxBoxedElements = 16u << 20;
// A nested array costs ~12x its file bytes in memory (an empty one is 12 bytes
// on disk, a 144-byte Value in memory), so it gets a much lower cap.
constexpr uint64_t kMaxNestedArrays = 1u << 16;
// Real files hold tens of keys and at most tens of thousands of tensors; the
// caps keep a huge hostile file from costing ~15x its size in memory.
constexpr uint64_t kMaxMetadataKeys = 1u << 16;
constexpr uint64_t kMaxTensors = 1u << 20;

// Keys and tensor names come from the file: escape control bytes and cut long
// ones so that an error message stays one short line.
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t k = 0; k < s.size() && k < kMaxShown; ++k) {
    unsigned char c = static_cast<unsigned char>(s[k]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

}  // namespace

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, std::string name)
      : data_(data), size_(size), name_(std::move(name)) {}

  void parse(File& out) {
    out.name_ = name_;
    out.size_ = size_;
    uint32_t magic = read_u32("magic");
    if (magic != kMagic) {
      fail(name_, ": not a GGUF file (magic bytes are ", hex(magic), ", expected \"GGUF\")");
    }
    uint32_t version = read_u32("version");
    if (version == 1) fail(name_, ": GGUF version 1 is not supported (only versions 2 and 3)");
    if (version != 2 && version != 3) {
      uint32_t swapped = __builtin_bswap32(version);
      if (swapped == 2 || swapped == 3) fail(name_, ": big-endian GGUF files are not supported");
      fail(name_, ": unsupported GGUF version ", version, " (only versions 2 and 3)");
    }
    out.version_ = version;
    uint64_t n_tensors = read_u64("tensor count");
    uint64_t n_kv = read_u64("metadata count");
    // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each
    // tensor info at least 8 + 4 + 8 + 4 + 8.
    if (n_kv > remaining() / 13) {
      fail(name_, ": metadata count ", n_kv, " is impossible for a file of ", size_, " bytes");
    }
    if (n_tensors > remaining() / 32) {
      fail(name_, ": tensor count ", n_tensors, " is impossible for a file of ", size_, " bytes");
    }
    if (n_kv > kMaxMetadataKeys) {
      fail(name_, ": metadata count ", n_kv, " exceeds the limit of ", kMaxMetadataKeys);
    }
    if (n_tensors > kMaxTensors) {
      fail(name_, ": tensor count ", n_tensors, " exceeds the limit of ", kMaxTensors);
    }

    out.metadata_.reserve(n_kv);
    for (uint64_t k = 0; k < n_kv; ++k) {
      size_t at = pos_;
      std::string key = read_string("metadata key", kMaxKeyBytes);
      uint32_t type_id = read_u32("metadata value type");
      if (!is_valid_value_type(type_id)) {
        fail(name_, ": metadata key '", printable(key), "' has invalid value type id ", type_id);
      }
      Value value = read_value(static_cast<ValueType>(type_id), key, 0);
      if (out.metadata_index_.count(key)) {
        fail(name_, ": duplicate metadata key '", printable(key), "' at offset ", at);
      }
      out.metadata_index_.emplace(key, out.metadata_.size());
      out.metadata_.emplace_back(std::move(key), std::move(value));
    }

    if (const Value* a = out.find("general.alignment")) {
      if (a->type != ValueType::U32) {
        fail(name_, ": general.alignment must be u32, not ", value_type_name(a->type));
      }
      uint64_t align = a->u;
      if (align == 0 || (align & (align - 1)) != 0 || align > kMaxAlignment) {
        fail(name_, ": general.alignment ", align, " is not a power of two up to ", kMaxAlignment);
      }
      out.alignment_ = align;
    }

    out.tensors_.reserve(n_tensors);
    for (uint64_t t = 0; t < n_tensors; ++t) {
      TensorInfo info = read_tensor_info();
      if (out.tensor_index_.count(info.name)) {
        fail(name_, ": duplicate tensor name '", printable(info.name), "'");
      }
      out.tensor_index_.emplace(info.name, out.tensors_.size());
      out.tensors_.push_back(std::move(info));
    }

    uint64_t data_offset = align_up(pos_, out.alignment_);
    out.data_offset_ = data_offset;
    if (n_tensors > 0 && data_offset > size_) {
      fail(name_, ": file is truncated before its tensor data (needs ", data_offset, " bytes, has ",
           size_, ")");
    }
    uint64_t data_size = data_offset <= size_ ? size_ - data_offset : 0;
    for (TensorInfo& info : out.tensors_) {
      if (info.offset % out.alignment_ != 0) {
        fail(name_, ": tensor '", printable(info.name), "' offset ", info.offset,
             " is not aligned to ", out.alignment_);
      }
      if (info.offset > data_size || info.n_bytes > data_size - info.offset) {
        fail(name_, ": tensor '", printable(info.name), "' (", info.n_bytes,
             " bytes at data offset ", info.offset, ") lies outside the file's ", data_size,
             " bytes of tensor data", " (file truncated?)");
      }
      info.data = data_ + data_offset + info.offset;
    }
  }

 private:
  size_t remaining() const { return size_ - pos_; }

  static std::string hex(uint32_t v) {
    std::ostringstream s;
    s << "0x" << std::hex << v;
    return s.str();
  }

  static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

  void need(uint64_t n, const char* what) {
    if (n > remaining()) {
      fail(name_, ": truncated at offset ", pos_, " reading ", what, " (needs ", n,
           " bytes, file has ", remaining(), " left)");
    }
  }

  template <typename T>
  T read_raw(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint32_t read_u32(const char* what) { return read_raw<uint32_t>(what); }
  uint64_t read_u64(const char* what) { return read_raw<uint64_t>(what); }

  std::string read_string(const char* what, uint64_t max_bytes) {
    size_t at = pos_;
    uint64_t len = read_u64(what);
    if (len > max_bytes) fail(name_, ": ", what, " at offset ", at, " is ", len, " bytes long");
    need(len, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

  Value read_value(ValueType type, const std::string& key, uint32_t depth) {
    Value v;
    v.type = type;
    if (type == ValueType::STRING) {
      v.s = read_string("string value", UINT64_MAX);
      return v;
    }
    if (type != ValueType::ARRAY) {
      size_t n = scalar_size(type);
      need(n, "scalar value");
      uint64_t u = 0;
      int64_t i = 0;
      double f = 0;
      std::memcpy(&u, data_ + pos_, n);  // little-endian, zero-extended
      switch (type) {
        case ValueType::I8:
          i = static_cast<int8_t>(u);
          break;
        case ValueType::I16:
          i = static_cast<int16_t>(u);
          break;
        case ValueType::I32:
          i = static_cast<int32_t>(u);
          break;
        case ValueType::I64:
          i = static_cast<int64_t>(u);
          break;
        case ValueType::F32: {
          float x;
          std::memcpy(&x, data_ + pos_, 4);
          f = x;
          break;
        }
        case ValueType::F64:
          std::memcpy(&f, data_ + pos_, 8);
          break;
        case ValueType::BOOL:
          if (u > 1) fail(name_, ": metadata key '", printable(key), "' has bool value ", u);
          break;
        default:
          break;
      }
      pos_ += n;
      v.u = u;
      v.i = i;
      v.f = f;
      return v;
    }

    if (depth >= kMaxArrayDepth) {
      fail(name_, ": metadata key '", printable(key), "' nests arrays deeper than ",
           kMaxArrayDepth);
    }
    uint32_t elem_id = read_u32("array element type");
    if (!is_valid_value_type(elem_id)) {
      fail(name_, ": metadata key '", printable(key), "' has array element type id ", elem_id);
    }
    ValueType elem = static_cast<ValueType>(elem_id);
    v.element_type = elem;
    size_t at = pos_;
    uint64_t count = read_u64("array length");
    if (elem == ValueType::STRING || elem == ValueType::ARRAY) {
      uint64_t min_each = elem == ValueType::STRING ? 8 : 12;
      if (count > remaining() / min_each) {
        fail(name_, ": metadata key '", printable(key), "' array length ", count, " at offset ", at,
             " exceeds the file");
      }
      boxed_ += count;
      if (boxed_ > kMaxBoxedElements) {
        fail(name_, ": metadata has more than ", kMaxBoxedElements, " string or array elements");
      }
      if (elem == ValueType::ARRAY) {
        nested_ += count;
        if (nested_ > kMaxNestedArrays) {
          fail(name_, ": metadata has more than ", kMaxNestedArrays, " nested arrays");
        }
      }
      if (elem == ValueType::STRING) {
        v.strings.reserve(count);
        for (uint64_t k = 0; k < count; ++k) v.strings.push_back(read_string("string", UINT64_MAX));
      } else {
        v.arrays.reserve(count);
        for (uint64_t k = 0; k < count; ++k) {
          v.arrays.push_back(read_value(ValueType::ARRAY, key, depth + 1));
        }
      }
      return v;
    }
    uint64_t each = scalar_size(elem);
    if (count > remaining() / each) {
      fail(name_, ": metadata key '", printable(key), "' array of ", count, " ",
           value_type_name(elem), " at offset ", at, " exceeds the file");
    }
    v.raw.assign(data_ + pos_, data_ + pos_ + count * each);
    pos_ += count * each;
    if (elem == ValueType::BOOL) {
      for (uint8_t b : v.raw) {
        if (b > 1) {
          fail(name_, ": metadata key '", printable(key), "' has bool array value ", int(b));
        }
      }
    }
    return v;
  }

  TensorInfo read_tensor_info() {
    TensorInfo info;
    info.name = read_string("tensor name", kMaxTensorNameBytes);
    if (info.name.empty()) fail(name_, ": a tensor has an empty name");
    info.n_dims = read_u32("tensor dimension count");
    if (info.n_dims == 0 || info.n_dims > kMaxDims) {
      fail(name_, ": tensor '", printable(info.name), "' has ", info.n_dims, " dimensions (1 to ",
           kMaxDims, " allowed)");
    }
    uint64_t n = 1;
    for (uint32_t d = 0; d < info.n_dims; ++d) {
      uint64_t ne = read_u64("tensor dimension");
      if (ne == 0 || ne > static_cast<uint64_t>(INT64_MAX)) {
        fail(name_, ": tensor '", printable(info.name), "' dimension ", d, " is ", ne);
      }
      if (__builtin_mul_overflow(n, ne, &n) || n > static_cast<uint64_t>(INT64_MAX)) {
        fail(name_, ": tensor '", printable(info.name), "' element count overflows");
      }
      info.ne[d] = ne;
    }
    info.n_elements = n;
    uint32_t type_id = read_u32("tensor type");
    auto type = tensor_type_info(type_id);
    if (!type) fail(name_, ": tensor '", printable(info.name), "' has unknown type id ", type_id);
    info.type = type->type;
    if (info.ne[0] % type->block_elements != 0) {
      fail(name_, ": tensor '", printable(info.name), "' row length ", info.ne[0],
           " is not a multiple of ", type->name, "'s block size ", type->block_elements);
    }
    // Up to 8 bytes per element, so n <= INT64_MAX does not keep this in 64 bits; a
    // wrapped size could pass the bounds check as a tiny or empty tensor.
    // rows * (header + blocks per row * block bytes), each step checked.
    uint64_t per_row;
    if (__builtin_mul_overflow(info.ne[0] / type->block_elements, uint64_t{type->block_bytes},
                               &per_row) ||
        __builtin_add_overflow(per_row, uint64_t{type->row_header_bytes}, &per_row) ||
        __builtin_mul_overflow(n / info.ne[0], per_row, &info.n_bytes)) {
      fail(name_, ": tensor '", printable(info.name), "' size in bytes overflows");
    }
    info.offset = read_u64("tensor data offset");
    return info;
  }

  const uint8_t* data_;
  size_t size_;
  std::string name_;
  size_t pos_ = 0;
  uint64_t boxed_ = 0;
  uint64_t nested_ = 0;
};

std::string TensorInfo::shape_string() const {
  std::ostringstream s;
  s << "[";
  for (uint32_t d = 0; d < n_dims; ++d) s << (d ? ", " : "") << ne[d];
  s << "]";
  return s.str();
}

File File::open(const std::string& path) {
  auto mapping = std::make_shared<MappedFile>(path);
  File file = parse(mapping->data(), mapping->size(), path);
  file.mapping_ = std::move(mapping);
  return file;
}

File File::parse(const uint8_t* data, size_t size, std::string name) {
  static const uint8_t kEmpty[1] = {0};
  File file;
  Parser parser(data ? data : kEmpty, data ? size : 0, std::move(name));
  parser.parse(file);
  file.base_ = data ? data : kEmpty;
  return file;
}

const Value* File::find(std::string_view key) const {
  auto it = metadata_index_.find(std::string(key));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) fail(name_, ": tensor '", name, "' is missing");
  return *t;
}

namespace {

[[noreturn]] void wrong_type(const std::string& file, std::string_view key, const Value& v,
                             const char* expected) {
  fail(file, ": metadata key '", key, "' is ", value_type_name(v.type), ", expected ", expected);
}

}  // namespace

int64_t File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) fail(name_, ": metadata key '", key, "' is missing");
  if (!is_integer(v->type)) wrong_type(name_, key, *v, "an integer");
  try {
    return v->as_int();
  } catch (const Error& e) {
    fail(name_, ": metadata key '", key, "': ", e.what());
  }
}

int64_t File::get_int(std::string_view key, int64_t fallback) const {
  return find(key) ? get_int(key) : fallback;
}

double File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) fail(name_, ": metadata key '", key, "' is missing");
  if (!is_float(v->type) && !is_integer(v->type)) wrong_type(name_, key, *v, "a number");
  return v->as_float();
}

double File::get_float(std::string_view key, double fallback) const {
  return find(key) ? get_float(key) : fallback;
}

bool File::get_bool(std::string_view key, bool fallback) const {
  const Value* v = find(key);
  if (!v) return fallback;
  if (v->type != ValueType::BOOL) wrong_type(name_, key, *v, "bool");
  return v->u != 0;
}

std::string File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) fail(name_, ": metadata key '", key, "' is missing");
  if (v->type != ValueType::STRING) wrong_type(name_, key, *v, "string");
  return v->s;
}

std::string File::get_string(std::string_view key, std::string fallback) const {
  return find(key) ? get_string(key) : fallback;
}

std::vector<std::string> File::get_strings(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return {};
  if (v->type != ValueType::ARRAY || v->element_type != ValueType::STRING) {
    wrong_type(name_, key, *v, "an array of strings");
  }
  return v->strings;
}

std::vector<float> File::get_floats(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return {};
  if (v->type != ValueType::ARRAY || !(is_float(v->element_type) || is_integer(v->element_type))) {
    wrong_type(name_, key, *v, "an array of numbers");
  }
  std::vector<float> out(v->array_size());
  for (size_t k = 0; k < out.size(); ++k) out[k] = static_cast<float>(v->float_at(k));
  return out;
}

std::vector<int64_t> File::get_ints(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return {};
  if (v->type != ValueType::ARRAY || !is_integer(v->element_type)) {
    wrong_type(name_, key, *v, "an array of integers");
  }
  std::vector<int64_t> out(v->array_size());
  for (size_t k = 0; k < out.size(); ++k) out[k] = v->int_at(k);
  return out;
}

}  // namespace memwall::gguf
