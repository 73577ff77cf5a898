// Weights: per-layer views of a llama-layout model's tensors. Matrices are
// views into the mapped file (no copy); norm vectors are small f32 copies.
#pragma once

#include <vector>

#include "format/gguf_reader.h"
#include "kernels/matrix_view.h"
#include "model/model_spec.h"

namespace memwall {

struct LayerWeights {
  std::vector<float> attn_norm;  // [C]
  kernels::MatrixView wq;        // [H*D x C]
  kernels::MatrixView wk;        // [Hkv*D x C]
  kernels::MatrixView wv;        // [Hkv*D x C]
  kernels::MatrixView wo;        // [C x H*D]
  std::vector<float> ffn_norm;   // [C]
  kernels::MatrixView w_gate;    // [F x C]
  kernels::MatrixView w_up;      // [F x C]
  kernels::MatrixView w_down;    // [C x F]
};

struct ModelWeights {
  kernels::MatrixView token_embd;  // [V x C]
  std::vector<LayerWeights> layers;
  std::vector<float> output_norm;  // [C]
  kernels::MatrixView output;      // [V x C]; the embedding when tied
  std::vector<float> rope_freqs;   // [n_rot/2] frequency divisors, or empty
};

// The output norm's name in a file whose residual stream is rotated.
inline constexpr const char* kRotatedOutputNorm = "memwall.output_norm.weight";

// Binds every tensor the spec needs, checking names, shapes and formats.
ModelWeights bind_weights(const gguf::File& file, const ModelSpec& spec);

}  // namespace memwall
