#include "format/hf_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "base/error.h"

namespace memwall::hf {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kArchitectures[] = {"LlamaForCausalLM", "MistralForCausalLM"};

const json* member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

// Hyperparameters of config.json, checked as they are read.
struct Config {
  const json& j;
  std::string path;

  std::optional<uint64_t> size(const char* key, uint64_t max = uint64_t(1) << 24) const {
    const json* v = member(j, key);
    if (!v) return std::nullopt;
    if (!v->is_number_unsigned() || v->get<uint64_t>() == 0 || v->get<uint64_t>() > max) {
      fail(path, ": '", key, "' = ", v->dump(), " is not a positive size");
    }
    return v->get<uint64_t>();
  }
  uint64_t required(const char* key, uint64_t max = uint64_t(1) << 24) const {
    auto v = size(key, max);
    if (!v) fail(path, ": '", key, "' is missing");
    return *v;
  }
  std::optional<double> number(const json& obj, const char* key) const {
    const json* v = member(obj, key);
    if (!v) return std::nullopt;
    if (!v->is_number() || !std::isfinite(v->get<double>())) {
      fail(path, ": '", key, "' = ", v->dump(), " is not a number");
    }
    return v->get<double>();
  }
  bool flag(const char* key) const {
    const json* v = member(j, key);
    return v && v->is_boolean() && v->get<bool>();
  }
};

struct Hparams {
  std::string arch;
  uint64_t n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_vocab = 0;
  uint64_t head_dim = 0, n_ctx = 0;
  bool explicit_head_dim = false;
  double rms_eps = 1e-6, rope_theta = 10000.0;
  std::optional<double> linear_scale;
  bool tied = false;
};

Hparams read_hparams(const json& j, const std::string& path) {
  const Config c{j, path};
  Hparams h;
  const json* archs = member(j, "architectures");
  if (!archs || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    fail(path, ": 'architectures' is missing or not a list (expected [\"LlamaForCausalLM\"])");
  }
  h.arch = (*archs)[0].get<std::string>();
  if (std::find(std::begin(kArchitectures), std::end(kArchitectures), h.arch) ==
      std::end(kArchitectures)) {
    fail(path, ": architecture '", h.arch,
         "' is not supported (memwall imports LlamaForCausalLM and MistralForCausalLM)");
  }
  // Limits far past any real model keep a corrupt config from sizing huge tables.
  constexpr uint64_t kMaxWidth = uint64_t(1) << 20, kMaxCount = 4096;
  h.n_embd = c.required("hidden_size", kMaxWidth);
  h.n_ff = c.required("intermediate_size", kMaxWidth);
  h.n_layer = c.required("num_hidden_layers", kMaxCount);
  h.n_head = c.required("num_attention_heads", kMaxCount);
  h.n_head_kv = c.size("num_key_value_heads", kMaxCount).value_or(h.n_head);
  h.n_vocab = c.required("vocab_size");
  // transformers' defaults for keys a config may leave out.
  h.n_ctx = c.size("max_position_embeddings", UINT32_MAX)
                .value_or(h.arch == "MistralForCausalLM" ? 131072 : 2048);
  if (auto d = c.size("head_dim", kMaxWidth)) {
    h.head_dim = *d;
    h.explicit_head_dim = true;
  } else {
    if (h.n_embd % h.n_head != 0) {
      fail(path, ": hidden_size ", h.n_embd, " is not a multiple of num_attention_heads ",
           h.n_head);
    }
    h.head_dim = h.n_embd / h.n_head;
  }
  if (h.head_dim % 2 != 0)
    fail(path, ": the head dimension ", h.head_dim, " is odd (RoPE needs pairs)");
  if (h.n_head % h.n_head_kv != 0) {
    fail(path, ": num_attention_heads ", h.n_head, " is not a multiple of num_key_value_heads ",
         h.n_head_kv);
  }
  h.rms_eps = c.number(j, "rms_norm_eps").value_or(1e-6);
  const json* rope_params = member(j, "rope_parameters");  // transformers 5
  h.rope_theta =
      c.number(j, "rope_theta")
          .value_or(rope_params ? c.number(*rope_params, "rope_theta").value_or(10000.0) : 10000.0);
  const json* scaling = member(j, "rope_scaling");
  if (!scaling) scaling = rope_params;
  if (scaling) {
    const json* type = member(*scaling, "rope_type");
    if (!type) type = member(*scaling, "type");
    const std::string t = type && type->is_string() ? type->get<std::string>() : "default";
    if (t == "linear") {
      auto factor = c.number(*scaling, "factor");
      if (!factor || !(*factor > 0)) fail(path, ": linear rope_scaling needs a positive 'factor'");
      h.linear_scale = *factor;
    } else if (t != "default") {
      fail(path, ": rope_scaling type '", t,
           "' is not supported (memwall runs linear RoPE scaling or none)");
    }
  }
  if (const json* act = member(j, "hidden_act");
      act && (!act->is_string() || act->get<std::string>() != "silu")) {
    fail(path, ": hidden_act ", act->dump(), " is not supported (the llama layout uses silu)");
  }
  if (c.flag("attention_bias") || c.flag("mlp_bias")) {
    fail(path, ": attention_bias / mlp_bias are set; bias tensors are not supported");
  }
  h.tied = c.flag("tie_word_embeddings");
  return h;
}

// gguf-py's size label: 134515008 -> "135M".
std::string size_label(uint64_t params) {
  double scaled;
  const char* suffix;
  if (params > 1e12) {
    scaled = double(params) * 1e-12, suffix = "T";
  } else if (params > 1e9) {
    scaled = double(params) * 1e-9, suffix = "B";
  } else if (params > 1e6) {
    scaled = double(params) * 1e-6, suffix = "M";
  } else {
    scaled = double(params) * 1e-3, suffix = "K";
  }
  const std::string whole = std::to_string(int64_t(std::nearbyint(scaled)));
  const int digits = whole == "0" ? 0 : int(whole.size());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", std::max(2 - digits, 0), scaled, suffix);
  return buf;
}

struct Expected {
  std::string gguf;
  std::vector<uint64_t> hf_shape;  // outermost first
  uint32_t permute_heads = 0;
};

// The HF name -> GGUF name and shape of every tensor the llama layout has.
std::map<std::string, Expected> expected_tensors(const Hparams& h) {
  const uint64_t c = h.n_embd, q = h.n_head * h.head_dim, kv = h.n_head_kv * h.head_dim;
  std::map<std::string, Expected> m;
  m["model.embed_tokens.weight"] = {"token_embd.weight", {h.n_vocab, c}};
  m["model.norm.weight"] = {"output_norm.weight", {c}};
  if (!h.tied) m["lm_head.weight"] = {"output.weight", {h.n_vocab, c}};
  for (uint64_t b = 0; b < h.n_layer; ++b) {
    const std::string hf = "model.layers." + std::to_string(b) + ".";
    const std::string gg = "blk." + std::to_string(b) + ".";
    m[hf + "input_layernorm.weight"] = {gg + "attn_norm.weight", {c}};
    m[hf + "self_attn.q_proj.weight"] = {gg + "attn_q.weight", {q, c}, uint32_t(h.n_head)};
    m[hf + "self_attn.k_proj.weight"] = {gg + "attn_k.weight", {kv, c}, uint32_t(h.n_head_kv)};
    m[hf + "self_attn.v_proj.weight"] = {gg + "attn_v.weight", {kv, c}};
    m[hf + "self_attn.o_proj.weight"] = {gg + "attn_output.weight", {c, q}};
    m[hf + "post_attention_layernorm.weight"] = {gg + "ffn_norm.weight", {c}};
    m[hf + "mlp.gate_proj.weight"] = {gg + "ffn_gate.weight", {h.n_ff, c}};
    m[hf + "mlp.up_proj.weight"] = {gg + "ffn_up.weight", {h.n_ff, c}};
    m[hf + "mlp.down_proj.weight"] = {gg + "ffn_down.weight", {c, h.n_ff}};
  }
  return m;
}

std::string shape_string(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The safetensors files of the model: the index's weight_map, or every
// model*.safetensors (as the converter lists them), in name order.
std::vector<std::string> shard_names(const std::string& dir,
                                     std::map<std::string, std::string>& where) {
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::set<std::string> files;
  if (fs::is_regular_file(index)) {
    json j = read_json(index.string());
    const json* map = member(j, "weight_map");
    if (!map || !map->is_object())
      fail(index.string(), ": 'weight_map' is missing or not an object");
    for (const auto& [name, file] : map->items()) {
      if (!file.is_string() || file.get<std::string>().empty() ||
          file.get<std::string>().find('/') != std::string::npos) {
        fail(index.string(), ": tensor '", name, "' maps to ", file.dump(), ", not a file in ",
             dir);
      }
      files.insert(file.get<std::string>());
      where[name] = file.get<std::string>();
    }
    if (files.empty()) fail(index.string(), ": 'weight_map' lists no tensors");
  } else {
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("model", 0) == 0 && n.size() > 12 &&
          n.compare(n.size() - 12, 12, ".safetensors") == 0) {
        files.insert(n);
      }
    }
    if (files.empty()) {
      fail(dir,
           ": no model*.safetensors files (PyTorch .bin checkpoints are not read; save the "
           "model with safe_serialization=True)");
    }
  }
  return {files.begin(), files.end()};
}

}  // namespace

Model Model::open(const std::string& dir) {
  try {
    return open_checked(dir);
  } catch (const json::exception& e) {
    // A field of a JSON type the checks did not expect: still the user's file at fault.
    fail(dir, ": unexpected contents in a JSON file: ", e.what());
  }
}

Model Model::open_checked(const std::string& dir) {
  Model m;
  m.dir_ = dir;
  const fs::path config_path = fs::path(dir) / "config.json";
  if (!fs::is_regular_file(config_path)) {
    fail(dir,
         ": no config.json (a Hugging Face model directory holds config.json, "
         "*.safetensors and tokenizer files)");
  }
  const json config = read_json(config_path.string());
  if (!config.is_object()) fail(config_path.string(), ": not a JSON object");
  const Hparams h = read_hparams(config, config_path.string());

  // Metadata in the converter's order (general, hyperparameters, tokenizer).
  Metadata& md = m.metadata_;
  md.set("general.architecture", gguf::Value::string("llama"));
  md.set("general.type", gguf::Value::string("model"));
  std::string name = fs::path(dir).lexically_normal().filename().string();
  if (name.empty() || name == ".")
    name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  if (const json* n = member(config, "_name_or_path");
      n && n->is_string() && !n->get<std::string>().empty()) {
    name = fs::path(n->get<std::string>()).filename().string();
  }
  md.set("general.name", gguf::Value::string(name));
  md.set("llama.block_count", gguf::Value::u32(uint32_t(h.n_layer)));
  md.set("llama.context_length", gguf::Value::u32(uint32_t(h.n_ctx)));
  md.set("llama.embedding_length", gguf::Value::u32(uint32_t(h.n_embd)));
  md.set("llama.feed_forward_length", gguf::Value::u32(uint32_t(h.n_ff)));
  md.set("llama.attention.head_count", gguf::Value::u32(uint32_t(h.n_head)));
  md.set("llama.attention.head_count_kv", gguf::Value::u32(uint32_t(h.n_head_kv)));
  md.set("llama.rope.freq_base", gguf::Value::f32(float(h.rope_theta)));
  md.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::f32(float(h.rms_eps)));
  if (h.explicit_head_dim) {
    md.set("llama.attention.key_length", gguf::Value::u32(uint32_t(h.head_dim)));
    md.set("llama.attention.value_length", gguf::Value::u32(uint32_t(h.head_dim)));
  }
  md.set("llama.vocab_size", gguf::Value::u32(uint32_t(h.n_vocab)));
  md.set("llama.rope.dimension_count", gguf::Value::u32(uint32_t(h.head_dim)));
  if (h.linear_scale) {
    md.set("llama.rope.scaling.type", gguf::Value::string("linear"));
    md.set("llama.rope.scaling.factor", gguf::Value::f32(float(*h.linear_scale)));
  }
  add_tokenizer_metadata(dir, config, md, m.notes_);

  // Shards and the tensors in them.
  std::map<std::string, std::string> index;  // tensor -> shard, when there is an index
  const std::vector<std::string> files = shard_names(dir, index);
  std::map<std::string, std::pair<const safetensors::TensorInfo*, std::string>> found;
  std::vector<std::string> order;  // shard order, then name order within a shard
  for (const std::string& f : files) {
    const std::string path = (fs::path(dir) / f).string();
    if (!fs::is_regular_file(path)) fail(dir, ": the index names '", f, "', which does not exist");
    m.shards_.push_back(std::make_unique<safetensors::File>(safetensors::File::open(path)));
    std::vector<std::string> names;
    for (const safetensors::TensorInfo& t : m.shards_.back()->tensors()) {
      auto [it, fresh] = found.emplace(t.name, std::make_pair(&t, f));
      if (!fresh) fail(dir, ": tensor '", t.name, "' is in both ", it->second.second, " and ", f);
      names.push_back(t.name);
    }
    std::sort(names.begin(), names.end());
    order.insert(order.end(), names.begin(), names.end());
  }
  for (const auto& [tensor, file] : index) {
    auto it = found.find(tensor);
    if (it == found.end() || it->second.second != file) {
      fail(dir, "/model.safetensors.index.json: tensor '", tensor, "' should be in ", file,
           it == found.end() ? std::string(", which does not hold it")
                             : ", but it is in " + it->second.second);
    }
  }

  const std::map<std::string, Expected> expected = expected_tensors(h);
  uint64_t params = 0;
  for (const std::string& hf_name : order) {
    const auto [src, file] = found.at(hf_name);
    auto e = expected.find(hf_name);
    if (e == expected.end()) {
      if (hf_name.size() > 5 && hf_name.compare(hf_name.size() - 5, 5, ".bias") == 0 &&
          hf_name.find("_proj") != std::string::npos) {
        fail(file, ": bias tensor '", hf_name, "' is not supported by the llama layout");
      }
      m.notes_.push_back(hf_name == "lm_head.weight"
                             ? "skipped lm_head.weight: tie_word_embeddings is set, the output "
                               "reuses token_embd.weight"
                             : "skipped tensor '" + hf_name + "' (not part of the llama layout)");
      continue;
    }
    if (src->shape != e->second.hf_shape) {
      fail(dir, "/", file, ": tensor '", hf_name, "' has shape ", shape_string(src->shape),
           ", config.json implies ", shape_string(e->second.hf_shape));
    }
    if (src->dtype != safetensors::DType::F32 && src->dtype != safetensors::DType::F16 &&
        src->dtype != safetensors::DType::BF16) {
      fail(dir, "/", file, ": tensor '", hf_name, "' is ", safetensors::dtype_name(src->dtype),
           "; memwall reads F32, F16 and BF16 checkpoints (not pre-quantized ones)");
    }
    ModelTensor t;
    t.name = e->second.gguf;
    t.hf_name = hf_name;
    t.dims.assign(src->shape.rbegin(), src->shape.rend());
    t.src = src;
    t.permute_heads = e->second.permute_heads;
    params += src->elements();
    m.tensors_.push_back(std::move(t));
  }
  for (const auto& [hf_name, e] : expected) {
    // Without lm_head.weight the output reuses the embedding, as in llama.cpp.
    if (!found.count(hf_name) && hf_name != "lm_head.weight") {
      fail(dir, ": tensor '", hf_name, "' (", e.gguf, ") is missing");
    }
  }
  md.set("general.size_label", gguf::Value::string(size_label(params)));
  return m;
}

}  // namespace memwall::hf
