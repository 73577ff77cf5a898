#include "model/weights.h"

#include <cstdint>
#include <string>

#include "base/error.h"

namespace memwall {
namespace {

kernels::MatrixView matrix(const gguf::File& f, const std::string& name, int64_t rows,
                           int64_t cols) {
  const gguf::TensorInfo& t = f.tensor(name);
  if (t.n_dims != 2 || int64_t(t.ne[0]) != cols || int64_t(t.ne[1]) != rows) {
    fail(f.path(), ": tensor '", name, "' has shape ", t.shape_string(), ", expected [", cols, ", ",
         rows, "]");
  }
  kernels::MatrixView m;
  m.name = name;
  m.type = t.type;
  m.codec = &kernels::codec_for(t.type, name);
  m.data = t.data;
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = row_bytes(t.type, uint64_t(cols));
  // Codecs read 2- and 4-byte fields in place.
  if (reinterpret_cast<uintptr_t>(t.data) % 4 != 0) {
    fail(f.path(), ": tensor '", name, "' data is not 4-byte aligned in the file");
  }
  return m;
}

std::vector<float> vector_f32(const gguf::File& f, const std::string& name, int64_t n) {
  const gguf::TensorInfo& t = f.tensor(name);
  if (int64_t(t.n_elements) != n || int64_t(t.ne[0]) != n) {
    fail(f.path(), ": tensor '", name, "' has shape ", t.shape_string(), ", expected [", n, "]");
  }
  std::vector<float> out(static_cast<size_t>(n));
  kernels::codec_for(t.type, name).dequantize_row(t.data, out.data(), n);
  return out;
}

}  // namespace

ModelWeights bind_weights(const gguf::File& f, const ModelSpec& s) {
  ModelWeights w;
  const int64_t C = s.n_embd, F = s.n_ff, Q = s.q_dim(), KV = s.kv_dim(), V = s.n_vocab;
  w.token_embd = matrix(f, "token_embd.weight", V, C);
  w.layers.resize(size_t(s.n_layer));
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights& L = w.layers[size_t(l)];
    L.attn_norm = vector_f32(f, p + "attn_norm.weight", C);
    L.wq = matrix(f, p + "attn_q.weight", Q, C);
    L.wk = matrix(f, p + "attn_k.weight", KV, C);
    L.wv = matrix(f, p + "attn_v.weight", KV, C);
    L.wo = matrix(f, p + "attn_output.weight", C, Q);
    L.ffn_norm = vector_f32(f, p + "ffn_norm.weight", C);
    L.w_gate = matrix(f, p + "ffn_gate.weight", F, C);
    L.w_up = matrix(f, p + "ffn_up.weight", F, C);
    L.w_down = matrix(f, p + "ffn_down.weight", C, F);
  }
  // A rotated file names its output norm differently so that engines which
  // would not apply it online (llama.cpp) refuse the file instead of
  // computing nonsense.
  w.output_norm = vector_f32(f, s.rotation.residual ? kRotatedOutputNorm : "output_norm.weight", C);
  w.output = s.tied_output ? w.token_embd : matrix(f, "output.weight", V, C);
  if (f.find_tensor("rope_freqs.weight")) {
    w.rope_freqs = vector_f32(f, "rope_freqs.weight", s.n_rot / 2);
  }
  return w;
}

}  // namespace memwall
