// memwall info: what a GGUF file holds — metadata, architecture, parameter
// count, bytes per weight format, and (with --tensors) the tensor table.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "base/process_stats.h"
#include "commands.h"
#include "common.h"
#include "format/gguf_reader.h"

namespace memwall::tools {
namespace {

struct InfoOptions {
  std::string model;
  bool tensors = false;
  bool json = false;
};

nlohmann::json value_to_json(const gguf::Value& v, bool full_arrays) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::STRING:
      return v.s;
    case ValueType::BOOL:
      return v.u != 0;
    case ValueType::F32:
    case ValueType::F64:
      return v.f;
    case ValueType::I8:
    case ValueType::I16:
    case ValueType::I32:
    case ValueType::I64:
      return v.i;
    case ValueType::ARRAY: {
      size_t n = v.array_size();
      if (!full_arrays && n > 16) {
        return {{"type", "array"},
                {"element_type", gguf::value_type_name(v.element_type)},
                {"length", n}};
      }
      nlohmann::json out = nlohmann::json::array();
      for (size_t k = 0; k < n; ++k) {
        if (v.element_type == ValueType::STRING) {
          out.push_back(v.strings[k]);
        } else if (v.element_type == ValueType::ARRAY) {
          out.push_back(value_to_json(v.arrays[k], full_arrays));
        } else if (gguf::is_float(v.element_type)) {
          out.push_back(v.float_at(k));
        } else if (v.element_type == ValueType::I8 || v.element_type == ValueType::I16 ||
                   v.element_type == ValueType::I32 || v.element_type == ValueType::I64) {
          out.push_back(v.int_at(k));
        } else {
          out.push_back(v.uint_at(k));
        }
      }
      return out;
    }
    default:
      return v.u;
  }
}

// JSON strings must be valid UTF-8; metadata from files need not be.
std::string json_dump(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

int run_info(const InfoOptions& opt) {
  gguf::File file = gguf::File::open(resolve_model_path(opt.model));
  std::string arch = file.get_string("general.architecture", "(none)");

  struct FormatTotals {
    uint64_t tensors = 0, elements = 0, bytes = 0;
  };
  std::map<std::string, FormatTotals> by_format;
  uint64_t params = 0, weight_bytes = 0;
  for (const auto& t : file.tensors()) {
    auto& f = by_format[std::string(tensor_type_name(t.type))];
    ++f.tensors;
    f.elements += t.n_elements;
    f.bytes += t.n_bytes;
    params += t.n_elements;
    weight_bytes += t.n_bytes;
  }

  if (opt.json) {
    nlohmann::json j;
    j["path"] = file.path();
    j["gguf_version"] = file.version();
    j["file_bytes"] = file.file_size();
    j["architecture"] = arch;
    j["parameters"] = params;
    j["weight_bytes"] = weight_bytes;
    j["bits_per_weight"] = params ? 8.0 * weight_bytes / params : 0.0;
    nlohmann::json formats = nlohmann::json::object();
    for (const auto& [name, f] : by_format) {
      formats[name] = {{"tensors", f.tensors}, {"elements", f.elements}, {"bytes", f.bytes}};
    }
    j["formats"] = formats;
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [k, v] : file.metadata()) meta[k] = value_to_json(v, false);
    j["metadata"] = meta;
    if (opt.tensors) {
      nlohmann::json ts = nlohmann::json::array();
      for (const auto& t : file.tensors()) {
        std::vector<uint64_t> shape(t.ne.begin(), t.ne.begin() + t.n_dims);
        ts.push_back({{"name", t.name},
                      {"type", tensor_type_name(t.type)},
                      {"shape", shape},
                      {"offset", file.data_offset() + t.offset},
                      {"bytes", t.n_bytes}});
      }
      j["tensors"] = ts;
    }
    std::printf("%s\n", json_dump(j).c_str());
    return 0;
  }

  std::printf("file:          %s (%s, GGUF v%u)\n", file.path().c_str(),
              format_bytes(double(file.file_size())).c_str(), file.version());
  std::printf("architecture:  %s\n", arch.c_str());
  std::printf("parameters:    %llu (%.1fM)\n", (unsigned long long)params, params / 1e6);
  std::printf("weights:       %s, %.2f bits per weight\n",
              format_bytes(double(weight_bytes)).c_str(),
              params ? 8.0 * weight_bytes / params : 0.0);
  std::printf("formats:\n");
  for (const auto& [name, f] : by_format) {
    std::printf("  %-8s %4llu tensors %12llu weights %12s  %.2f bits/weight\n", name.c_str(),
                (unsigned long long)f.tensors, (unsigned long long)f.elements,
                format_bytes(double(f.bytes)).c_str(), 8.0 * f.bytes / f.elements);
  }
  std::printf("metadata (%zu keys):\n", file.metadata().size());
  for (const auto& [k, v] : file.metadata()) {
    std::printf("  %-40s %s\n", k.c_str(), v.to_string().c_str());
  }
  if (opt.tensors) {
    std::printf("tensors (%zu):\n", file.tensors().size());
    for (const auto& t : file.tensors()) {
      std::printf("  %-32s %-6s %-18s %10s @ %llu\n", t.name.c_str(),
                  std::string(tensor_type_name(t.type)).c_str(), t.shape_string().c_str(),
                  format_bytes(double(t.n_bytes)).c_str(),
                  (unsigned long long)(file.data_offset() + t.offset));
    }
  }
  return 0;
}

const CommandRegistration kInfo{
    "info", "Show a GGUF model's metadata, parameter count, formats and tensors", 40,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<InfoOptions>();
      sub.add_option("model", opt->model, "GGUF file (default: the default model)");
      sub.add_option("-m,--model", opt->model, "GGUF file (same as the positional argument)");
      sub.add_flag("--tensors", opt->tensors,
                   "List every tensor: name, type, shape, bytes, offset");
      sub.add_flag("--json", opt->json, "Print one JSON object instead of text");
      return [opt] { return run_info(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
