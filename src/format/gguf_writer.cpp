#include "format/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "format/gguf_reader.h"

namespace memwall::gguf {

Writer::Writer(uint64_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    fail("GGUF alignment ", alignment, " is not a power of two");
  }
  if (alignment != kDefaultAlignment) set("general.alignment", Value::u32(uint32_t(alignment)));
}

void Writer::set(std::string key, Value value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

uint64_t Writer::check_tensor(const std::string& name, TensorType type,
                              const std::vector<uint64_t>& dims) const {
  if (dims.empty() || dims.size() > kMaxDims) {
    fail("tensor '", name, "' has ", dims.size(), " dimensions (1 to ", kMaxDims, " allowed)");
  }
  for (const Tensor& t : tensors_) {
    if (t.name == name) fail("tensor '", name, "' was added twice");
  }
  const TensorTypeInfo& info = tensor_type_info(type);
  // The reader refuses zero dimensions and element counts past INT64_MAX: never write them.
  uint64_t n = 1;
  for (uint64_t d : dims) {
    if (d == 0) fail("tensor '", name, "' has a dimension of 0");
    if (__builtin_mul_overflow(n, d, &n) || n > static_cast<uint64_t>(INT64_MAX)) {
      fail("tensor '", name, "' element count overflows");
    }
  }
  if (dims[0] % info.block_elements != 0) {
    fail("tensor '", name, "' row length ", dims[0], " is not a multiple of ", info.name,
         "'s block size ", info.block_elements);
  }
  uint64_t bytes;
  uint64_t per_row;
  if (__builtin_mul_overflow(dims[0] / info.block_elements, uint64_t{info.block_bytes}, &per_row) ||
      __builtin_add_overflow(per_row, uint64_t{info.row_header_bytes}, &per_row) ||
      __builtin_mul_overflow(n / dims[0], per_row, &bytes)) {
    fail("tensor '", name, "' size in bytes overflows");
  }
  return bytes;
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<uint64_t> dims,
                        std::vector<uint8_t> data) {
  const uint64_t bytes = check_tensor(name, type, dims);
  if (bytes != data.size()) {
    fail("tensor '", name, "' needs ", bytes, " bytes of ", tensor_type_name(type), " data, got ",
         data.size());
  }
  uint64_t offset = (data_bytes_ + alignment_ - 1) / alignment_ * alignment_;
  data_bytes_ = offset + bytes;
  tensors_.push_back({std::move(name), type, std::move(dims), std::move(data), {}, bytes, offset});
}

void Writer::add_lazy_tensor(std::string name, TensorType type, std::vector<uint64_t> dims,
                             Producer produce) {
  const uint64_t bytes = check_tensor(name, type, dims);
  uint64_t offset = (data_bytes_ + alignment_ - 1) / alignment_ * alignment_;
  data_bytes_ = offset + bytes;
  tensors_.push_back(
      {std::move(name), type, std::move(dims), {}, std::move(produce), bytes, offset});
}

namespace {

struct VectorSink {
  std::vector<uint8_t>& out;
  void put(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = out.size();
    out.resize(at + n);
    std::memcpy(out.data() + at, p, n);
  }
  uint64_t tell() const { return out.size(); }
};

struct FileSink {
  std::FILE* f;
  const std::string& path;
  uint64_t written = 0;
  void put(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f) != n) {
      fail("cannot write '", path, "': ", std::strerror(errno));
    }
    written += n;
  }
  uint64_t tell() const { return written; }
};

template <typename Sink>
void put_u32(Sink& s, uint32_t v) {
  s.put(&v, 4);
}
template <typename Sink>
void put_u64(Sink& s, uint64_t v) {
  s.put(&v, 8);
}
template <typename Sink>
void put_string(Sink& s, const std::string& v) {
  put_u64(s, v.size());
  s.put(v.data(), v.size());
}

template <typename Sink>
void put_payload(Sink& s, const Value& v) {
  switch (v.type) {
    case ValueType::STRING:
      put_string(s, v.s);
      return;
    case ValueType::ARRAY: {
      put_u32(s, static_cast<uint32_t>(v.element_type));
      put_u64(s, v.array_size());
      if (v.element_type == ValueType::STRING) {
        for (const auto& str : v.strings) put_string(s, str);
      } else if (v.element_type == ValueType::ARRAY) {
        for (const auto& a : v.arrays) put_payload(s, a);
      } else {
        s.put(v.raw.data(), v.raw.size());
      }
      return;
    }
    case ValueType::F32: {
      float f = static_cast<float>(v.f);
      s.put(&f, 4);
      return;
    }
    case ValueType::F64:
      s.put(&v.f, 8);
      return;
    case ValueType::I8:
    case ValueType::I16:
    case ValueType::I32:
    case ValueType::I64:
      s.put(&v.i, scalar_size(v.type));
      return;  // little-endian low bytes
    default:
      s.put(&v.u, scalar_size(v.type));
      return;
  }
}

template <typename Sink>
void pad_to(Sink& s, uint64_t alignment) {
  static const uint8_t zeros[256] = {};
  uint64_t pad = (alignment - s.tell() % alignment) % alignment;
  while (pad > 0) {
    uint64_t n = pad < sizeof(zeros) ? pad : sizeof(zeros);
    s.put(zeros, n);
    pad -= n;
  }
}

}  // namespace

template <typename Sink>
void Writer::emit(Sink& sink) const {
  put_u32(sink, kMagic);
  put_u32(sink, 3);
  put_u64(sink, tensors_.size());
  put_u64(sink, metadata_.size());
  for (const auto& [key, value] : metadata_) {
    put_string(sink, key);
    put_u32(sink, static_cast<uint32_t>(value.type));
    put_payload(sink, value);
  }
  for (const Tensor& t : tensors_) {
    put_string(sink, t.name);
    put_u32(sink, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) put_u64(sink, d);
    put_u32(sink, static_cast<uint32_t>(t.type));
    put_u64(sink, t.offset);
  }
  pad_to(sink, alignment_);
  uint64_t base = sink.tell();
  for (const Tensor& t : tensors_) {
    pad_to(sink, alignment_);
    if (sink.tell() - base != t.offset) fail("internal error: GGUF tensor offset mismatch");
    if (!t.produce) {
      sink.put(t.data.data(), t.data.size());
      continue;
    }
    const std::vector<uint8_t> data = t.produce();
    if (data.size() != t.bytes) {
      fail("internal error: tensor '", t.name, "' was made with ", data.size(), " bytes, not ",
           t.bytes);
    }
    sink.put(data.data(), data.size());
  }
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> out;
  VectorSink sink{out};
  emit(sink);
  return out;
}

void Writer::write(const std::string& path) const {
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot create '", tmp, "': ", std::strerror(errno));
  try {
    FileSink sink{f, tmp};
    emit(sink);
    if (std::fflush(f) != 0) fail("cannot write '", tmp, "': ", std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    fail("cannot write '", tmp, "': ", std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

}  // namespace memwall::gguf
