#include "model/model_spec.h"

#include "base/error.h"
#include "kernels/hadamard.h"

namespace memwall {
namespace {

// Architectures that share the llama block layout (pre-norm RMSNorm, RoPE,
// GQA attention without biases, SwiGLU FFN) and differ only in defaults.
struct ArchitectureEntry {
  const char* name;
  kernels::RopeStyle rope_style;
};
constexpr ArchitectureEntry kArchitectures[] = {
    {"llama", kernels::RopeStyle::kNormal},
    {"mistral", kernels::RopeStyle::kNormal},
};

int64_t positive(const gguf::File& f, const std::string& key, int64_t value, int64_t max) {
  if (value <= 0 || value > max) fail(f.path(), ": ", key, " = ", value, " is out of range");
  return value;
}

}  // namespace

ModelSpec read_model_spec(const gguf::File& f) {
  ModelSpec s;
  s.architecture = f.get_string("general.architecture", "");
  if (s.architecture.empty()) fail(f.path(), ": general.architecture is missing");
  const ArchitectureEntry* arch = nullptr;
  for (const auto& a : kArchitectures) {
    if (s.architecture == a.name) arch = &a;
  }
  if (!arch) {
    fail(f.path(), ": architecture '", s.architecture,
         "' is not supported (supported: llama, mistral)");
  }
  if (f.tensors().empty()) fail(f.path(), ": the file has no tensors (a vocabulary-only file?)");
  const std::string p = s.architecture + ".";
  s.name = f.get_string("general.name", "");
  constexpr int64_t kMaxDim = 1 << 20;
  s.n_embd = positive(f, p + "embedding_length", f.get_int(p + "embedding_length"), kMaxDim);
  s.n_ff = positive(f, p + "feed_forward_length", f.get_int(p + "feed_forward_length"), kMaxDim);
  s.n_layer = positive(f, p + "block_count", f.get_int(p + "block_count"), 4096);
  s.n_head = positive(f, p + "attention.head_count", f.get_int(p + "attention.head_count"), 4096);
  s.n_head_kv = positive(f, p + "attention.head_count_kv",
                         f.get_int(p + "attention.head_count_kv", s.n_head), 4096);
  if (s.n_embd % s.n_head != 0) {
    fail(f.path(), ": embedding_length ", s.n_embd, " is not divisible by head_count ", s.n_head);
  }
  if (s.n_head % s.n_head_kv != 0) {
    fail(f.path(), ": head_count ", s.n_head, " is not a multiple of head_count_kv ", s.n_head_kv);
  }
  s.head_dim = f.get_int(p + "attention.key_length", s.n_embd / s.n_head);
  if (s.head_dim * s.n_head != s.n_embd) {
    fail(f.path(), ": head dim ", s.head_dim, " x ", s.n_head, " heads != width ", s.n_embd,
         " (separate attention widths are not supported)");
  }
  s.n_rot = positive(f, p + "rope.dimension_count",
                     f.get_int(p + "rope.dimension_count", s.head_dim), s.head_dim);
  if (s.n_rot % 2 != 0) fail(f.path(), ": rope.dimension_count ", s.n_rot, " is odd");
  s.n_ctx_train = positive(f, p + "context_length", f.get_int(p + "context_length", 2048), 1 << 24);
  s.rms_eps = float(f.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5));
  if (!(s.rms_eps >= 0 && s.rms_eps < 1))
    fail(f.path(), ": rms epsilon ", s.rms_eps, " is invalid");
  s.rope_base = float(f.get_float(p + "rope.freq_base", 10000.0));
  if (!(s.rope_base > 1)) fail(f.path(), ": rope.freq_base ", s.rope_base, " is invalid");
  std::string scaling = f.get_string(p + "rope.scaling.type", "none");
  if (scaling == "linear") {
    s.rope_scale = float(f.get_float(p + "rope.scaling.factor", 1.0));
    if (!(s.rope_scale > 0)) fail(f.path(), ": rope.scaling.factor must be positive");
  } else if (scaling != "none" && scaling != "") {
    fail(f.path(), ": rope scaling '", scaling, "' is not supported (none, linear)");
  }
  s.rope_style = arch->rope_style;
  // memwall's own key, written by `memwall synth`, to test both orderings.
  std::string style = f.get_string("memwall.rope_style", "");
  if (style == "neox") {
    s.rope_style = kernels::RopeStyle::kNeox;
  } else if (style == "normal") {
    s.rope_style = kernels::RopeStyle::kNormal;
  } else if (!style.empty()) {
    fail(f.path(), ": memwall.rope_style '", style, "' is not normal or neox");
  }

  const gguf::TensorInfo& embd = f.tensor("token_embd.weight");
  if (embd.n_dims != 2 || int64_t(embd.ne[0]) != s.n_embd) {
    fail(f.path(), ": token_embd.weight has shape ", embd.shape_string(), ", expected [", s.n_embd,
         ", vocab]");
  }
  s.n_vocab = int64_t(embd.ne[1]);
  s.tied_output = f.find_tensor("output.weight") == nullptr;
  s.rotation.residual = f.get_bool("memwall.rotation.residual", false);
  s.rotation.ffn_down = f.get_bool("memwall.rotation.ffn_down", false);
  if (s.rotation.residual || s.rotation.ffn_down) {
    s.rotation.seed = uint64_t(f.get_int("memwall.rotation.seed"));
    for (int64_t n : {s.rotation.residual ? s.n_embd : 1, s.rotation.ffn_down ? s.n_ff : 1}) {
      if (!kernels::HadamardRotation::supported(n)) {
        fail(f.path(), ": the file is rotated, but width ", n, " has no Hadamard rotation");
      }
    }
  }
  return s;
}

}  // namespace memwall
