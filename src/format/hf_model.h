// A Hugging Face model directory (config.json, *.safetensors, tokenizer
// files) read as the llama-architecture GGUF that llama.cpp's
// convert_hf_to_gguf.py would make of it: the same metadata keys, tensor
// names, shapes and Q/K row order. Architectures: LlamaForCausalLM and
// MistralForCausalLM (the same layout).
//
// The tensors stay in the mapped safetensors files; a ModelTensor says where
// its rows are and in which order (RoPE: HF rotates the two halves of each
// head, llama.cpp adjacent pairs, so Q and K rows are permuted per head).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/hf_tokenizer.h"
#include "format/safetensors.h"

namespace memwall::hf {

struct ModelTensor {
  std::string name;            // GGUF name: "blk.0.attn_q.weight"
  std::string hf_name;         // "model.layers.0.self_attn.q_proj.weight"
  std::vector<uint64_t> dims;  // GGUF order: dims[0] is the row length
  const safetensors::TensorInfo* src = nullptr;
  uint32_t permute_heads = 0;  // Q: H, K: Hkv; 0 for tensors read in order
  uint64_t rows() const { return dims.size() > 1 ? dims[1] : 1; }
  uint64_t cols() const { return dims[0]; }
  // The HF row that holds GGUF row r. GGUF row h*D + 2j + s is HF row
  // h*D + s*(D/2) + j (convert_hf_to_gguf's permute(w, n_head, n_head_kv)).
  uint64_t source_row(uint64_t r) const {
    if (permute_heads == 0) return r;
    const uint64_t d = rows() / permute_heads, h = r / d, i = r % d;
    return h * d + (i % 2) * (d / 2) + i / 2;
  }
};

class Model {
 public:
  // Throws Error naming the file (and tensor or key) for anything missing,
  // malformed or unsupported.
  static Model open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const Metadata& metadata() const { return metadata_; }
  const std::vector<ModelTensor>& tensors() const { return tensors_; }
  // What was skipped or adjusted ("skipped tensor ..."), for the user.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  static Model open_checked(const std::string& dir);
  std::string dir_;
  std::vector<std::unique_ptr<safetensors::File>> shards_;  // stable addresses for `src`
  Metadata metadata_;
  std::vector<ModelTensor> tensors_;
  std::vector<std::string> notes_;
};

}  // namespace memwall::hf
