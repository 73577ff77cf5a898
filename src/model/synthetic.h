// Synthetic llama-layout models: any shape, seeded random weights, any
// supported weight format, with a small byte-level BPE vocabulary so every
// command runs on them. For tests and benchmarks (speed does not depend on
// the values).
#pragma once

#include <cstdint>
#include <string>

#include "format/tensor_type.h"
#include "kernels/ops.h"

namespace memwall {

struct SyntheticShape {
  int64_t n_embd = 64;
  int64_t n_ff = 128;
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t n_vocab = 512;
  int64_t n_ctx = 512;
  float rope_base = 10000.0f;
  kernels::RopeStyle rope_style = kernels::RopeStyle::kNormal;
  bool tied_output = true;
};

// Named shapes: "smollm2-135m", "llama-3.2-1b".
SyntheticShape synthetic_shape(const std::string& name);

// Writes the model; `type` is used for every matrix, f32 for norms.
// Throws Error on an impossible shape or a type memwall cannot compute with.
void write_synthetic_model(const std::string& path, const SyntheticShape& shape, TensorType type,
                           uint64_t seed);

}  // namespace memwall
