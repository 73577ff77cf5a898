#include "quant/quant_recipe.h"

#include "base/error.h"
#include "kernels/weight_format.h"

namespace memwall::quant {
namespace {

TensorType parse_type(const std::string& name, const std::string& context) {
  auto t = tensor_type_from_name(name);
  if (!t) fail(context, ": unknown type '", name, "' (memwall writes ", writable_types(), ")");
  if (!writable_type(*t)) {
    fail(context, ": memwall cannot write ", name, " (it writes ", writable_types(), ")");
  }
  return *t;
}

bool fits(TensorType type, uint64_t cols) {
  return cols % tensor_type_info(type).block_elements == 0;
}

// The type used when rows do not split into `type`'s blocks: the nearest
// 32-weight type of at least its quality, as llama.cpp falls back.
TensorType fallback(TensorType type) {
  auto first_writable = [](std::initializer_list<TensorType> options) {
    for (TensorType t : options) {
      if (writable_type(t)) return t;
    }
    return TensorType::F16;
  };
  switch (type) {
    case TensorType::Q4_K:
      return first_writable({TensorType::Q5_0, TensorType::Q4_1});
    case TensorType::Q5_K:
      return first_writable({TensorType::Q5_1, TensorType::Q8_0});
    case TensorType::Q6_K:
      return TensorType::Q8_0;
    case TensorType::NF4_DQ:
      return TensorType::NF4;
    default:
      return first_writable({TensorType::Q4_0});
  }
}

}  // namespace

bool writable_type(TensorType type) {
  const kernels::WeightCodec* c = kernels::find_codec(type);
  return c != nullptr && c->quantize_row != nullptr;
}

std::string writable_types() {
  return kernels::supported_formats();
}

QuantRecipe::QuantRecipe(TensorType target, const std::vector<std::string>& keep_rules)
    : target_(target) {
  if (!writable_type(target)) {
    fail("memwall cannot write ", tensor_type_name(target), " (it writes ", writable_types(), ")");
  }
  for (const std::string& rule : keep_rules) {
    const size_t eq = rule.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == rule.size()) {
      fail("--keep '", rule, "' is not PATTERN=TYPE (e.g. token_embd=q8_0)");
    }
    KeepRule k;
    k.pattern = rule.substr(0, eq);
    k.type = parse_type(rule.substr(eq + 1), "--keep '" + rule + "'");
    try {
      k.regex = std::regex(k.pattern, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      fail("--keep '", rule, "': '", k.pattern, "' is not a valid regular expression (", e.what(),
           ")");
    }
    keep_.push_back(std::move(k));
  }
}

TensorChoice QuantRecipe::choose(const SourceTensor& t) const {
  if (auto it = assigned_.find(t.name); it != assigned_.end()) return it->second;
  if (t.dims.size() < 2) {
    // Norm weights and biases: a few KiB, and the quantizers need whole rows of blocks.
    return {TensorType::F32, "1-D"};
  }
  for (const KeepRule& k : keep_) {
    if (std::regex_search(t.name, k.regex)) return resolve(t, k.type, "--keep " + k.pattern);
  }
  return resolve(t, target_, "target");
}

bool QuantRecipe::mixable(const SourceTensor& t) const {
  if (t.dims.size() < 2) return false;
  for (const KeepRule& k : keep_) {
    if (std::regex_search(t.name, k.regex)) return false;
  }
  return true;
}

TensorChoice QuantRecipe::resolve(const SourceTensor& t, TensorType type,
                                  std::string reason) const {
  if (fits(type, t.cols())) return {type, std::move(reason)};
  const TensorType alt = fallback(type);
  return {fits(alt, t.cols()) ? alt : TensorType::F16,
          "fallback: rows of " + std::to_string(t.cols()) + " are not a multiple of " +
              std::string(tensor_type_name(type)) + "'s " +
              std::to_string(tensor_type_info(type).block_elements)};
}

void QuantRecipe::assign(const std::string& tensor, TensorChoice choice) {
  assigned_[tensor] = std::move(choice);
}

std::string QuantRecipe::describe() const {
  std::string out(tensor_type_name(target_));
  for (const KeepRule& k : keep_) {
    out += ", keep " + k.pattern + "=" + std::string(tensor_type_name(k.type));
  }
  if (!mix_note_.empty()) out += ", " + mix_note_;
  return out;
}

int llama_file_type(TensorType type) {
  // llama.cpp's llama_ftype: the "mostly X" ids its loader shows.
  switch (type) {
    case TensorType::F32:
      return 0;
    case TensorType::F16:
      return 1;
    case TensorType::Q4_0:
      return 2;
    case TensorType::Q4_1:
      return 3;
    case TensorType::Q8_0:
      return 7;
    case TensorType::Q5_0:
      return 8;
    case TensorType::Q5_1:
      return 9;
    case TensorType::Q4_K:
      return 15;  // Q4_K_M
    case TensorType::Q5_K:
      return 17;  // Q5_K_M
    case TensorType::Q6_K:
      return 18;
    case TensorType::BF16:
      return 32;
    case TensorType::TQ1_0:
      return 36;
    case TensorType::TQ2_0:
      return 37;
    default:
      return -1;
  }
}

}  // namespace memwall::quant
