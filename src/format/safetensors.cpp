#include "format/safetensors.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"

namespace memwall::safetensors {
namespace {

struct DTypeEntry {
  DType type;
  std::string_view name;
  size_t size;
};

constexpr std::array<DTypeEntry, 15> kDTypes = {{
    {DType::BOOL, "BOOL", 1},
    {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
    {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
}};

// The reference implementation's limit: a larger header is a corrupt length,
// and refusing it early keeps a hostile file from making us parse 4 GiB of JSON.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Names in messages are cut short: a hostile name can be megabytes long.
std::string in_quotes(const std::string& name) {
  return "'" + (name.size() > 80 ? name.substr(0, 80) + "..." : name) + "'";
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

std::string json_type(const nlohmann::json& j) {
  return j.type_name();
}

TensorInfo read_entry(const std::string& path, const std::string& name, const nlohmann::json& e) {
  const std::string where = path + ": tensor " + in_quotes(name);
  if (!e.is_object()) fail(where, ": header entry is a JSON ", json_type(e), ", not an object");
  TensorInfo t;
  t.name = name;
  auto dtype = e.find("dtype");
  if (dtype == e.end() || !dtype->is_string()) fail(where, ": 'dtype' is missing or not a string");
  auto dt = dtype_from_name(dtype->get_ref<const std::string&>());
  if (!dt) {
    fail(where, ": unknown dtype ", in_quotes(dtype->get_ref<const std::string&>()),
         " (safetensors defines BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, "
         "F32, F64, I64, U64)");
  }
  t.dtype = *dt;
  auto shape = e.find("shape");
  if (shape == e.end() || !shape->is_array()) fail(where, ": 'shape' is missing or not an array");
  uint64_t elements = 1;
  bool overflow = false;
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned()) fail(where, ": shape entry ", d.dump(), " is not a size");
    const uint64_t n = d.get<uint64_t>();
    t.shape.push_back(n);
    if (n != 0 && elements > UINT64_MAX / n) overflow = true;
    elements *= n;
  }
  auto offsets = e.find("data_offsets");
  if (offsets == e.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    fail(where, ": 'data_offsets' must be two byte offsets [begin, end]");
  }
  t.begin = (*offsets)[0].get<uint64_t>();
  t.end = (*offsets)[1].get<uint64_t>();
  if (t.end < t.begin) fail(where, ": data_offsets [", t.begin, ", ", t.end, "] end before begin");
  // A shape with a zero dimension holds nothing, whatever the other dims are.
  bool empty = false;
  for (uint64_t n : t.shape) empty |= n == 0;
  const size_t esize = dtype_size(t.dtype);
  if (!empty && (overflow || elements > UINT64_MAX / esize)) {
    fail(where, ": shape ", shape->dump(), " overflows 64 bits");
  }
  const uint64_t want = empty ? 0 : elements * esize;
  if (t.bytes() != want) {
    fail(where, ": shape ", shape->dump(), " of ", dtype_name(t.dtype), " needs ", want,
         " bytes but data_offsets [", t.begin, ", ", t.end, "] hold ", t.bytes());
  }
  return t;
}

}  // namespace

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (d.name == name) return d.type;
  }
  return std::nullopt;
}

std::string_view dtype_name(DType t) {
  for (const auto& d : kDTypes) {
    if (d.type == t) return d.name;
  }
  return "?";
}

size_t dtype_size(DType t) {
  for (const auto& d : kDTypes) {
    if (d.type == t) return d.size;
  }
  return 1;
}

uint64_t TensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;  // validated not to overflow
  return n;
}

std::vector<TensorInfo> parse(const uint8_t* data, size_t size, const std::string& path) {
  if (size < 8) {
    fail(path, ": not a safetensors file (", size,
         " bytes, shorter than the 8-byte header length)");
  }
  const uint64_t header_bytes = read_u64_le(data);
  if (header_bytes > size - 8) {
    fail(path, ": header length ", header_bytes, " runs past the end of the file (", size,
         " bytes): truncated, or not a safetensors file");
  }
  if (header_bytes > kMaxHeaderBytes) {
    fail(path, ": header length ", header_bytes, " is over the format's 100 MB limit");
  }
  if (header_bytes < 2 || data[8] != '{') {
    fail(path, ": not a safetensors file (the header is not a JSON object)");
  }
  const char* text = reinterpret_cast<const char*>(data + 8);

  // nlohmann keeps the last of two equal keys silently; the callback sees
  // every key, so a duplicate tensor name is caught here.
  std::set<std::string> names;
  std::string duplicate;
  auto on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && duplicate.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!names.insert(key).second) duplicate = key;
    }
    return true;
  };
  nlohmann::json header =
      nlohmann::json::parse(text, text + header_bytes, on_event, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail(path, ": the header is not valid JSON");
  if (!header.is_object())
    fail(path, ": the header is a JSON ", json_type(header), ", not an object");
  if (!duplicate.empty())
    fail(path, ": tensor ", in_quotes(duplicate), " appears twice in the header");

  const uint64_t data_start = 8 + header_bytes;
  const uint64_t data_size = size - data_start;
  std::vector<TensorInfo> tensors;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;  // free-form strings; nothing we need
    TensorInfo t = read_entry(path, name, entry);
    if (t.end > data_size) {
      fail(path, ": tensor ", in_quotes(name), ": data_offsets [", t.begin, ", ", t.end,
           "] run past the data section (", data_size, " bytes): the file is truncated");
    }
    t.data = data + data_start + t.begin;
    tensors.push_back(std::move(t));
  }
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < tensors.size(); ++i) {
    if (tensors[i].begin < tensors[i - 1].end) {
      fail(path, ": tensors ", in_quotes(tensors[i - 1].name), " [", tensors[i - 1].begin, ", ",
           tensors[i - 1].end, ") and ", in_quotes(tensors[i].name), " [", tensors[i].begin, ", ",
           tensors[i].end, ") overlap");
    }
  }
  return tensors;
}

File File::open(const std::string& path) {
  File f;
  f.map_ = MappedFile(path);
  f.tensors_ = parse(f.map_.data(), f.map_.size(), path);
  return f;
}

const TensorInfo* File::find(std::string_view name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace memwall::safetensors
