#include "model/synthetic.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "base/splitmix64.h"
#include "format/gguf_writer.h"
#include "kernels/weight_format.h"

namespace memwall {
namespace {

// The same seed writes the same file anywhere.
struct Random : SplitMix64 {
  // Uniform with unit variance: U(-sqrt(3), sqrt(3)).
  float unit() {
    return float((double(next() >> 11) * 0x1.0p-53 * 2.0 - 1.0) * 1.7320508075688772);
  }
};

// The GPT-2 byte-to-unicode map, so byte tokens are printable strings.
std::string byte_token(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int n = 0;
    for (int x = 0; x < b; ++x) {
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    }
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

void add_vocabulary(gguf::Writer& w, int64_t n_vocab) {
  // 256 byte tokens, <|endoftext|>, then merged pairs of letters/digits (a
  // real BPE vocabulary), then unused fillers up to n_vocab.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_token(b));
    types.push_back(1);
  }
  tokens.push_back("<|endoftext|>");
  types.push_back(3);
  const std::string alphabet = "etaoinshrdlucmfwypvbgkjqxzETAOINSHRDLUCMFWYPVBGKJQXZ0123456789";
  for (char a : alphabet) {
    for (char b : alphabet) {
      if (int64_t(tokens.size()) >= n_vocab) break;
      tokens.push_back(std::string{a, b});
      types.push_back(1);
      merges.push_back(std::string{a, ' ', b});
    }
  }
  while (int64_t(tokens.size()) < n_vocab) {
    tokens.push_back("<|unused_" + std::to_string(tokens.size()) + "|>");
    types.push_back(5);
  }
  w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  w.set("tokenizer.ggml.pre", gguf::Value::string("gpt-2"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  w.set("tokenizer.ggml.merges", gguf::Value::string_array(merges));
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(256));
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(256));
  w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(false));
}

std::vector<uint8_t> random_matrix(Random& rng, const kernels::WeightCodec& codec, int64_t rows,
                                   int64_t cols, float scale) {
  std::vector<uint8_t> bytes(size_t(rows) * row_bytes(codec.type, uint64_t(cols)));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = rng.unit() * scale;
    codec.quantize_row(row.data(), bytes.data() + size_t(r) * row_bytes(codec.type, uint64_t(cols)),
                       cols);
  }
  return bytes;
}

std::vector<uint8_t> norm_vector(Random& rng, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = 1.0f + 0.1f * rng.unit();
  std::vector<uint8_t> bytes(v.size() * 4);
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

}  // namespace

SyntheticShape synthetic_shape(const std::string& name) {
  SyntheticShape s;
  if (name == "smollm2-135m") {
    s.n_embd = 576, s.n_ff = 1536, s.n_layer = 30, s.n_head = 9, s.n_head_kv = 3;
    s.n_vocab = 49152, s.n_ctx = 8192, s.rope_base = 100000.0f;
  } else if (name == "llama-3.2-1b") {
    s.n_embd = 2048, s.n_ff = 8192, s.n_layer = 16, s.n_head = 32, s.n_head_kv = 8;
    s.n_vocab = 128256, s.n_ctx = 131072, s.rope_base = 500000.0f;
  } else {
    fail("unknown synthetic shape '", name, "' (known: smollm2-135m, llama-3.2-1b)");
  }
  return s;
}

void write_synthetic_model(const std::string& path, const SyntheticShape& s, TensorType type,
                           uint64_t seed) {
  const kernels::WeightCodec* codec = kernels::find_codec(type);
  if (!codec) {
    fail("cannot write a synthetic model in ", tensor_type_name(type),
         " (supported: ", kernels::supported_formats(), ")");
  }
  auto check = [](bool ok, const char* what) {
    if (!ok) fail("invalid synthetic shape: ", what);
  };
  check(s.n_embd > 0 && s.n_ff > 0 && s.n_layer > 0 && s.n_head > 0 && s.n_head_kv > 0,
        "sizes must be positive");
  check(s.n_embd % s.n_head == 0, "n_embd must be a multiple of n_head");
  check(s.n_head % s.n_head_kv == 0, "n_head must be a multiple of n_head_kv");
  check((s.n_embd / s.n_head) % 2 == 0, "head dim must be even");
  check(s.n_vocab >= 257, "the vocabulary needs at least 257 tokens (256 bytes + end of text)");
  check(s.n_ctx > 0, "context must be positive");
  const int64_t block = tensor_type_info(type).block_elements;
  check(s.n_embd % block == 0 && s.n_ff % block == 0,
        "n_embd and n_ff must be multiples of the format's block size");

  const int64_t C = s.n_embd, F = s.n_ff, D = C / s.n_head, KV = s.n_head_kv * D;
  Random rng{seed};
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::string("llama"));
  w.set("general.name", gguf::Value::string("memwall synthetic"));
  w.set("llama.context_length", gguf::Value::u32(uint32_t(s.n_ctx)));
  w.set("llama.embedding_length", gguf::Value::u32(uint32_t(C)));
  w.set("llama.feed_forward_length", gguf::Value::u32(uint32_t(F)));
  w.set("llama.block_count", gguf::Value::u32(uint32_t(s.n_layer)));
  w.set("llama.attention.head_count", gguf::Value::u32(uint32_t(s.n_head)));
  w.set("llama.attention.head_count_kv", gguf::Value::u32(uint32_t(s.n_head_kv)));
  w.set("llama.rope.freq_base", gguf::Value::f32(s.rope_base));
  w.set("llama.rope.dimension_count", gguf::Value::u32(uint32_t(D)));
  w.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-5f));
  w.set("llama.vocab_size", gguf::Value::u32(uint32_t(s.n_vocab)));
  if (s.rope_style == kernels::RopeStyle::kNeox) {
    w.set("memwall.rope_style", gguf::Value::string("neox"));
  }
  add_vocabulary(w, s.n_vocab);

  auto u64 = [](int64_t v) { return uint64_t(v); };
  const float in_c = 1.0f / std::sqrt(float(C)), in_f = 1.0f / std::sqrt(float(F));
  w.add_tensor("token_embd.weight", type, {u64(C), u64(s.n_vocab)},
               random_matrix(rng, *codec, s.n_vocab, C, 1.0f));
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    w.add_tensor(p + "attn_norm.weight", TensorType::F32, {u64(C)}, norm_vector(rng, C));
    w.add_tensor(p + "attn_q.weight", type, {u64(C), u64(C)},
                 random_matrix(rng, *codec, C, C, in_c));
    w.add_tensor(p + "attn_k.weight", type, {u64(C), u64(KV)},
                 random_matrix(rng, *codec, KV, C, in_c));
    w.add_tensor(p + "attn_v.weight", type, {u64(C), u64(KV)},
                 random_matrix(rng, *codec, KV, C, in_c));
    w.add_tensor(p + "attn_output.weight", type, {u64(C), u64(C)},
                 random_matrix(rng, *codec, C, C, in_c));
    w.add_tensor(p + "ffn_norm.weight", TensorType::F32, {u64(C)}, norm_vector(rng, C));
    w.add_tensor(p + "ffn_gate.weight", type, {u64(C), u64(F)},
                 random_matrix(rng, *codec, F, C, in_c));
    w.add_tensor(p + "ffn_up.weight", type, {u64(C), u64(F)},
                 random_matrix(rng, *codec, F, C, in_c));
    w.add_tensor(p + "ffn_down.weight", type, {u64(F), u64(C)},
                 random_matrix(rng, *codec, C, F, in_f));
  }
  w.add_tensor("output_norm.weight", TensorType::F32, {u64(C)}, norm_vector(rng, C));
  if (!s.tied_output) {
    w.add_tensor("output.weight", type, {u64(C), u64(s.n_vocab)},
                 random_matrix(rng, *codec, s.n_vocab, C, in_c));
  }
  w.write(path);
}

}  // namespace memwall
