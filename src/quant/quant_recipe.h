// QuantRecipe: which type each tensor of a model is written in. A target
// type for the weight matrices, `--keep PATTERN=TYPE` rules that override it
// (first match wins; PATTERN is a regular expression searched in the tensor
// name, as llama.cpp's --tensor-type), 1-D tensors (norms) kept in f32, and a
// fallback for matrices whose rows are not a multiple of the type's block
// (SmolLM2-135M's rows of 576 cannot hold 256-weight k-quant blocks).
#pragma once

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "format/tensor_type.h"
#include "quant/tensor_source.h"

namespace memwall::quant {

struct KeepRule {
  std::string pattern;
  std::regex regex;
  TensorType type;
};

struct TensorChoice {
  TensorType type;
  std::string reason;  // "target", "--keep token_embd", "1-D", "fallback: ..."
};

class QuantRecipe {
 public:
  // Throws Error for a type memwall cannot write or a malformed rule.
  QuantRecipe(TensorType target, const std::vector<std::string>& keep_rules);

  TensorType target() const { return target_; }
  TensorChoice choose(const SourceTensor& t) const;
  std::string describe() const;  // "q4_0, keep token_embd=q8_0"

  // Whether the target type applies to t (a matrix no --keep rule names),
  // so a bit budget may give it another type.
  bool mixable(const SourceTensor& t) const;
  // `type` for t, or its fallback when t's rows do not split into its blocks.
  TensorChoice resolve(const SourceTensor& t, TensorType type, std::string reason) const;
  // Overrides choose() for one tensor (the bit budget's choices); `note`
  // joins describe(): "q4_k, mixed to <= 4.5 bpw from q3_g64/q4_k/q6_k".
  void assign(const std::string& tensor, TensorChoice choice);
  void set_mix_note(std::string note) { mix_note_ = std::move(note); }

 private:
  TensorType target_;
  std::vector<KeepRule> keep_;
  std::map<std::string, TensorChoice> assigned_;
  std::string mix_note_;
};

// Whether memwall can write (quantize to) this type.
bool writable_type(TensorType type);
std::string writable_types();  // "f32, f16, ..." for messages

// llama.cpp's general.file_type for a file mostly in `type`; -1 when it has none.
int llama_file_type(TensorType type);

}  // namespace memwall::quant
