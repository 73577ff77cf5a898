// ModelSpec: the shape and hyperparameters of a model, read from GGUF
// metadata through the architecture registry. Letters: C model width, F FFN
// width, L layers, H heads, Hkv KV heads, D head dim, V vocab.
#pragma once

#include <cstdint>
#include <string>

#include "format/gguf_reader.h"
#include "kernels/ops.h"

namespace memwall {

struct ModelSpec {
  std::string architecture;
  std::string name;
  int64_t n_embd = 0;     // C
  int64_t n_ff = 0;       // F
  int64_t n_layer = 0;    // L
  int64_t n_head = 0;     // H
  int64_t n_head_kv = 0;  // Hkv
  int64_t head_dim = 0;   // D
  int64_t n_rot = 0;      // rotated dims per head
  int64_t n_vocab = 0;    // V
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_scale = 1.0f;  // linear position scaling factor
  kernels::RopeStyle rope_style = kernels::RopeStyle::kNormal;
  bool tied_output = false;
  // Written by `memwall quantize --rotate hadamard` (QuaRot-style): the
  // residual stream is stored rotated by a randomized Hadamard R_C (norm
  // weights folded into the matrices that read it; the output norm applied
  // online between R_C and R_C^T), and FFN down's input is rotated online by
  // R_F^T, with R_F folded into W_down. Seeds make both reproducible.
  struct Rotation {
    bool residual = false;
    bool ffn_down = false;
    uint64_t seed = 0;
  } rotation;

  int64_t kv_dim() const { return n_head_kv * head_dim; }
  int64_t q_dim() const { return n_head * head_dim; }
};

// Reads and validates the spec; throws Error naming the key or tensor at fault.
ModelSpec read_model_spec(const gguf::File& file);

}  // namespace memwall
