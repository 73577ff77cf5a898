#include "format/llama2c.h"

#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <unordered_map>

#include "base/error.h"
#include "base/mapped_file.h"

namespace memwall::llama2c {
namespace {

// The float32 arrays of a checkpoint. Per-layer parts hold all layers back to back.
enum Part : int {
  kTokEmb,    // (V, C)
  kRmsAtt,    // (L, C)
  kWq,        // (L, H*D, C)
  kWk,        // (L, Hkv*D, C)
  kWv,        // (L, Hkv*D, C)
  kWo,        // (L, C, H*D)
  kRmsFfn,    // (L, C)
  kW1,        // (L, F, C)  gate
  kW2,        // (L, C, F)  down
  kW3,        // (L, F, C)  up
  kRmsFinal,  // (C)
  kFreqReal,  // (seq_len, D/2), legacy only; unused (RoPE is recomputed)
  kFreqImag,  // (seq_len, D/2), legacy only
  kWcls,      // (V, C), only when the classifier is not shared
  kPartCount,
};

constexpr const char* kPartNames[kPartCount] = {
    "tok_emb",       "rms_att", "wq", "wk", "wv",        "wo",
    "rms_ffn",       "w1",      "w2", "w3", "rms_final", "freq_cis_real",
    "freq_cis_imag", "wcls"};

constexpr Part kLegacyOrder[] = {kTokEmb, kRmsAtt, kWq, kWk,       kWv,       kWo,       kRmsFfn,
                                 kW1,     kW2,     kW3, kRmsFinal, kFreqReal, kFreqImag, kWcls};
constexpr Part kV1Order[] = {kRmsAtt, kRmsFfn, kRmsFinal, kTokEmb, kWq, kWk,
                             kWv,     kWo,     kW1,       kW2,     kW3, kWcls};

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& name) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r))
    fail(name, ": header sizes overflow 64 bits; not a llama2.c checkpoint");
  return r;
}

uint64_t checked_add(uint64_t a, uint64_t b, const std::string& name) {
  uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r))
    fail(name, ": header sizes overflow 64 bits; not a llama2.c checkpoint");
  return r;
}

// Elements of one layer's slice (or of the whole part, for parts without layers).
uint64_t slice_elements(const Config& c, Part p, const std::string& name) {
  uint64_t C = uint64_t(c.dim), F = uint64_t(c.hidden_dim), V = uint64_t(c.vocab_size);
  uint64_t D = uint64_t(c.head_size()), kv = uint64_t(c.kv_dim());
  switch (p) {
    case kTokEmb:
    case kWcls:
      return checked_mul(V, C, name);
    case kRmsAtt:
    case kRmsFfn:
    case kRmsFinal:
      return C;
    case kWq:
    case kWo:
      return checked_mul(uint64_t(c.n_heads) * D, C, name);
    case kWk:
    case kWv:
      return checked_mul(kv, C, name);
    case kW1:
    case kW2:
    case kW3:
      return checked_mul(F, C, name);
    case kFreqReal:
    case kFreqImag:
      return checked_mul(uint64_t(c.seq_len), D / 2, name);
    default:
      return 0;
  }
}

bool per_layer(Part p) {
  return p == kRmsAtt || p == kWq || p == kWk || p == kWv || p == kWo || p == kRmsFfn || p == kW1 ||
         p == kW2 || p == kW3;
}

struct Layout {
  std::array<uint64_t, kPartCount> offset{};  // byte offset of each part in the file
  std::array<bool, kPartCount> present{};
  uint64_t end = 0;  // bytes the header implies
};

Layout layout_of(const Config& c, const std::string& name) {
  Layout lay;
  uint64_t at = c.version == 0 ? kLegacyHeaderBytes : kV1HeaderBytes;
  std::span<const Part> order =
      c.version == 0 ? std::span<const Part>(kLegacyOrder) : std::span<const Part>(kV1Order);
  for (Part p : order) {
    if (p == kWcls && c.shared_classifier) continue;
    uint64_t n = slice_elements(c, p, name);
    if (per_layer(p)) n = checked_mul(n, uint64_t(c.n_layers), name);
    lay.offset[p] = at;
    lay.present[p] = true;
    at = checked_add(at, checked_mul(n, 4, name), name);
  }
  lay.end = at;
  return lay;
}

int32_t read_i32(std::span<const uint8_t> b, size_t at) {
  int32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}

uint32_t read_u32(std::span<const uint8_t> b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}

float read_f32(std::span<const uint8_t> b, size_t at) {
  float v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}

bool starts_with(std::span<const uint8_t> b, const char* prefix) {
  size_t n = std::strlen(prefix);
  return b.size() >= n && std::memcmp(b.data(), prefix, n) == 0;
}

// Recognizes files that are plainly something else, to say what to do instead.
void refuse_other_formats(std::span<const uint8_t> b, const std::string& name, const char* what) {
  if (starts_with(b, "GGUF")) fail(name, " is a GGUF file, not a llama2.c ", what);
  if (starts_with(b, "PK\x03\x04")) {
    fail(name, " is a zip archive (a PyTorch .pt checkpoint?), not a llama2.c ", what,
         "; export it with llama2.c's export.py first");
  }
}

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// "<0xXX>" with two hex digits, as SentencePiece names its byte-fallback pieces.
bool is_byte_piece(const std::string& s) {
  return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>' &&
         std::isxdigit(static_cast<unsigned char>(s[3])) &&
         std::isxdigit(static_cast<unsigned char>(s[4]));
}

}  // namespace

uint64_t Config::parameters() const {
  uint64_t C = uint64_t(dim), F = uint64_t(hidden_dim), V = uint64_t(vocab_size);
  uint64_t q = uint64_t(n_heads) * uint64_t(head_size()), kv = uint64_t(kv_dim());
  uint64_t per_layer = 2 * C + 2 * q * C + 2 * kv * C + 3 * F * C;
  return V * C * (shared_classifier ? 1 : 2) + uint64_t(n_layers) * per_layer + C;
}

std::string Config::to_string() const {
  std::ostringstream out;
  out << "dim " << dim << ", hidden_dim " << hidden_dim << ", n_layers " << n_layers << ", n_heads "
      << n_heads << ", n_kv_heads " << n_kv_heads << ", vocab_size " << vocab_size << ", seq_len "
      << seq_len << ", " << (shared_classifier ? "shared" : "separate") << " classifier";
  return out.str();
}

Config parse_config(std::span<const uint8_t> file, const std::string& name) {
  refuse_other_formats(file, name, "checkpoint");
  if (file.size() < kLegacyHeaderBytes) {
    fail(name, " is ", file.size(),
         " bytes: too small for a llama2.c checkpoint (the header alone is ", kLegacyHeaderBytes,
         " bytes)");
  }
  Config c;
  size_t fields_at = 0;
  if (read_u32(file, 0) == kMagicV1) {
    if (file.size() < kV1HeaderBytes) {
      fail(name, " has the llama2.c \"ak42\" magic but is only ", file.size(),
           " bytes; the version-1 header alone is ", kV1HeaderBytes, " bytes (truncated file?)");
    }
    int32_t version = read_i32(file, 4);
    if (version == 2) {
      fail(name,
           " is a llama2.c version 2 (int8 Q8_0) export, which is not supported; "
           "export float32 instead (llama2.c export.py --version 1)");
    }
    if (version != 1) {
      fail(name, " has the llama2.c \"ak42\" magic but unknown version ", version,
           " (supported: 1, and legacy files without magic)");
    }
    c.version = 1;
    fields_at = 8;
    uint8_t shared = file[36];
    if (shared > 1)
      fail(name, ": version-1 shared_classifier flag is ", int(shared), ", expected 0 or 1");
    c.shared_classifier = shared == 1;
  }
  c.dim = read_i32(file, fields_at + 0);
  c.hidden_dim = read_i32(file, fields_at + 4);
  c.n_layers = read_i32(file, fields_at + 8);
  c.n_heads = read_i32(file, fields_at + 12);
  c.n_kv_heads = read_i32(file, fields_at + 16);
  c.vocab_size = read_i32(file, fields_at + 20);
  c.seq_len = read_i32(file, fields_at + 24);
  if (c.version == 0) {
    // Legacy files signal an unshared classifier with a negative vocab_size.
    if (c.vocab_size == INT32_MIN)
      fail(name, ": header vocab_size ", c.vocab_size, " is not plausible");
    c.shared_classifier = c.vocab_size > 0;
    c.vocab_size = c.vocab_size < 0 ? -c.vocab_size : c.vocab_size;
  } else if (c.vocab_size < 0) {
    fail(name, ": version-1 header vocab_size is ", c.vocab_size, "; it must be positive");
  }

  const std::pair<const char*, int32_t> fields[] = {
      {"dim", c.dim},         {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers},
      {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
      {"seq_len", c.seq_len}};
  for (const auto& [field, value] : fields) {
    if (value <= 0) {
      fail(name, ": header ", field, " is ", value,
           "; it must be positive (is this a llama2.c checkpoint?)");
    }
  }
  if (c.dim % c.n_heads != 0)
    fail(name, ": header dim ", c.dim, " is not divisible by n_heads ", c.n_heads);
  if (c.n_heads % c.n_kv_heads != 0) {
    fail(name, ": header n_heads ", c.n_heads, " is not a multiple of n_kv_heads ", c.n_kv_heads);
  }
  if (c.head_size() % 2 != 0) {
    fail(name, ": head size ", c.head_size(), " (dim ", c.dim, " / n_heads ", c.n_heads,
         ") is odd; RoPE rotates pairs, so it must be even");
  }

  Layout lay = layout_of(c, name);
  if (lay.end != file.size()) {
    std::ostringstream why;
    uint64_t size = file.size();
    why << name << ": header (" << c.to_string() << ") implies " << lay.end
        << " bytes, but the file has " << size;
    uint64_t classifier = uint64_t(c.vocab_size) * uint64_t(c.dim) * 4;
    if (c.shared_classifier && size == lay.end + classifier) {
      why << "; that is exactly one more (vocab_size, dim) classifier, which the header says is "
             "shared";
    } else if (!c.shared_classifier && size + classifier == lay.end) {
      why << "; that is exactly one (vocab_size, dim) classifier short, which the header says is "
             "separate";
    } else if (size < lay.end) {
      why << " (truncated, or the header is wrong)";
    } else {
      why << " (" << size - lay.end << " unexpected trailing bytes)";
    }
    throw Error(why.str());
  }
  return c;
}

Tokenizer parse_tokenizer(std::span<const uint8_t> file, int32_t vocab_size,
                          const std::string& name) {
  refuse_other_formats(file, name, "tokenizer");
  if (file.size() < 4) {
    fail(name, " is ", file.size(),
         " bytes: too small for a llama2.c tokenizer (it starts with a 4-byte "
         "max_token_length)");
  }
  Tokenizer tok;
  tok.max_token_length = read_i32(file, 0);
  constexpr int32_t kMaxTokenLength = 1 << 16;
  if (tok.max_token_length <= 0 || tok.max_token_length > kMaxTokenLength) {
    fail(name, ": max_token_length is ", tok.max_token_length, ", expected 1..", kMaxTokenLength,
         " (is this a llama2.c tokenizer.bin?)");
  }
  size_t at = 4;
  while (at < file.size()) {
    size_t id = tok.pieces.size();
    if (file.size() - at < 8) {
      fail(name, ": token ", id, " is truncated at byte ", at, " (", file.size() - at,
           " bytes left; a record needs 8 for its score and length)");
    }
    float score = read_f32(file, at);
    int32_t len = read_i32(file, at + 4);
    at += 8;
    if (len <= 0 || len > tok.max_token_length) {
      fail(name, ": token ", id, " has length ", len, ", outside 1..max_token_length ",
           tok.max_token_length);
    }
    if (file.size() - at < size_t(len)) {
      fail(name, ": token ", id, " is truncated: ", len, " bytes at byte ", at, ", only ",
           file.size() - at, " left");
    }
    if (!std::isfinite(score)) fail(name, ": token ", id, " has a non-finite score");
    std::string piece(reinterpret_cast<const char*>(file.data() + at), size_t(len));
    if (!valid_utf8(piece)) fail(name, ": token ", id, " is not valid UTF-8");
    at += size_t(len);
    tok.pieces.push_back(std::move(piece));
    tok.scores.push_back(score);
  }
  if (tok.pieces.size() != size_t(vocab_size)) {
    fail(name, " holds ", tok.pieces.size(), " tokens but the checkpoint's vocab_size is ",
         vocab_size, "; use the tokenizer the model was trained with");
  }
  return tok;
}

GgufVocab to_gguf_vocab(const Tokenizer& tok, const std::string& name) {
  static const std::string kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space
  GgufVocab v;
  size_t n = tok.pieces.size();
  v.tokens.reserve(n);
  v.scores = tok.scores;
  v.types.reserve(n);
  std::unordered_map<std::string, size_t> seen;
  for (size_t id = 0; id < n; ++id) {
    const std::string& piece = tok.pieces[id];
    std::string text;
    TokenType type = TokenType::NORMAL;
    // llama2.c (run.c, tokenizer.py) fixes the ids: 0 <unk>, 1 BOS, 2 EOS. Its
    // export stored BOS/EOS as "\n<s>\n" and "\n</s>\n" for printing.
    if (id == 0) {
      type = TokenType::UNKNOWN;
      text = piece;
    } else if (id == 1) {
      type = TokenType::CONTROL;
      text = "<s>";
    } else if (id == 2) {
      type = TokenType::CONTROL;
      text = "</s>";
    } else if (is_byte_piece(piece)) {
      type = TokenType::BYTE;
      text = piece;
    } else {
      // The export replaced "▁" with " "; SentencePiece pieces never hold a real
      // space, so mapping every space back is exact.
      for (char ch : piece) {
        if (ch == ' ') {
          text += kSpaceMark;
        } else {
          text += ch;
        }
      }
    }
    auto [it, inserted] = seen.emplace(text, id);
    if (!inserted) fail(name, ": tokens ", it->second, " and ", id, " are both \"", text, "\"");
    v.tokens.push_back(std::move(text));
    v.types.push_back(static_cast<int32_t>(type));
  }
  return v;
}

gguf::Writer to_gguf(std::span<const uint8_t> model, const std::string& model_name,
                     std::span<const uint8_t> tokenizer, const std::string& tokenizer_name,
                     const ConvertOptions& options) {
  using gguf::Value;
  const Config c = parse_config(model, model_name);
  const Layout lay = layout_of(c, model_name);
  GgufVocab vocab =
      to_gguf_vocab(parse_tokenizer(tokenizer, c.vocab_size, tokenizer_name), tokenizer_name);

  gguf::Writer w;
  std::string name =
      options.name.empty() ? std::filesystem::path(model_name).stem().string() : options.name;
  w.set("general.architecture", Value::string("llama"));
  w.set("general.name", Value::string(name));
  w.set("general.file_type", Value::u32(0));  // all f32
  w.set("llama.vocab_size", Value::u32(uint32_t(c.vocab_size)));
  w.set("llama.context_length", Value::u32(uint32_t(c.seq_len)));
  w.set("llama.embedding_length", Value::u32(uint32_t(c.dim)));
  w.set("llama.feed_forward_length", Value::u32(uint32_t(c.hidden_dim)));
  w.set("llama.block_count", Value::u32(uint32_t(c.n_layers)));
  w.set("llama.attention.head_count", Value::u32(uint32_t(c.n_heads)));
  w.set("llama.attention.head_count_kv", Value::u32(uint32_t(c.n_kv_heads)));
  w.set("llama.attention.layer_norm_rms_epsilon", Value::f32(1e-5f));  // run.c rmsnorm
  w.set("llama.rope.freq_base", Value::f32(10000.0f));                 // run.c RoPE
  w.set("llama.rope.dimension_count", Value::u32(uint32_t(c.head_size())));
  w.set("tokenizer.ggml.model", Value::string("llama"));
  w.set("tokenizer.ggml.tokens", Value::string_array(std::move(vocab.tokens)));
  w.set("tokenizer.ggml.scores", Value::f32_array(vocab.scores));
  w.set("tokenizer.ggml.token_type", Value::i32_array(vocab.types));
  w.set("tokenizer.ggml.bos_token_id", Value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", Value::u32(2));
  w.set("tokenizer.ggml.unknown_token_id", Value::u32(0));
  w.set("tokenizer.ggml.add_bos_token", Value::boolean(true));  // run.c encode(bos=1)
  w.set("tokenizer.ggml.add_eos_token", Value::boolean(false));
  w.set("tokenizer.ggml.add_space_prefix", Value::boolean(true));  // run.c's dummy " " prefix

  // Copies one layer's slice of a part as an f32 tensor. A llama2.c matrix is
  // (out, in) row-major, so its GGUF dims (innermost first) are [in, out].
  auto add = [&](std::string tensor, Part part, uint64_t layer, std::vector<uint64_t> dims) {
    uint64_t n = slice_elements(c, part, model_name);
    uint64_t at = lay.offset[part] + layer * n * 4;
    std::vector<uint8_t> bytes(model.begin() + at, model.begin() + at + n * 4);
    for (uint64_t k = 0; k < n; ++k) {
      float x;
      std::memcpy(&x, bytes.data() + k * 4, 4);
      if (!std::isfinite(x)) {
        fail(model_name, ": ", kPartNames[part],
             per_layer(part) ? " layer " + std::to_string(layer) : "", " (", tensor,
             ") holds a non-finite value at element ", k);
      }
    }
    w.add_tensor(std::move(tensor), TensorType::F32, std::move(dims), std::move(bytes));
  };

  const uint64_t C = uint64_t(c.dim), F = uint64_t(c.hidden_dim), V = uint64_t(c.vocab_size);
  const uint64_t Q = uint64_t(c.n_heads) * uint64_t(c.head_size()), KV = uint64_t(c.kv_dim());
  add("token_embd.weight", kTokEmb, 0, {C, V});
  for (uint64_t l = 0; l < uint64_t(c.n_layers); ++l) {
    const std::string blk = "blk." + std::to_string(l) + ".";
    add(blk + "attn_norm.weight", kRmsAtt, l, {C});
    // No permutation of wq/wk. run.c's RoPE rotates adjacent pairs (vec[i], vec[i+1])
    // of each head by pos * 10000^(-(i % D) / D), i.e. pair j = (2j, 2j+1) by
    // pos * 10000^(-2j/D) — the layout of Meta's original checkpoints and of
    // llama2.c's model.py (view_as_complex over (..., D/2, 2)). GGUF "llama" uses
    // ggml's normal rope mode: the same pairs and the same angles with
    // rope.dimension_count = D and freq_base 10000. (Only HF checkpoints, which are
    // permuted for the neox "halves" layout, need llama.cpp's q/k permute; llama2.c
    // files are already in the original layout.) The legacy freq_cis table is
    // exactly this cos/sin table (tests/convert/llama2c_ref.py check_freq_cis).
    add(blk + "attn_q.weight", kWq, l, {C, Q});
    add(blk + "attn_k.weight", kWk, l, {C, KV});
    add(blk + "attn_v.weight", kWv, l, {C, KV});
    add(blk + "attn_output.weight", kWo, l, {Q, C});
    add(blk + "ffn_norm.weight", kRmsFfn, l, {C});
    add(blk + "ffn_gate.weight", kW1, l, {C, F});  // w1: silu branch
    add(blk + "ffn_down.weight", kW2, l, {F, C});  // w2
    add(blk + "ffn_up.weight", kW3, l, {C, F});    // w3
  }
  add("output_norm.weight", kRmsFinal, 0, {C});
  if (!c.shared_classifier) add("output.weight", kWcls, 0, {C, V});
  return w;
}

Config convert(const std::string& model_path, const std::string& tokenizer_path,
               const std::string& out_path, const ConvertOptions& options) {
  namespace fs = std::filesystem;
  MappedFile model(model_path);
  MappedFile tokenizer(tokenizer_path);
  for (const std::string* input : {&model_path, &tokenizer_path}) {
    std::error_code ec;
    if (fs::equivalent(*input, out_path, ec))
      fail("output ", out_path, " is the input file ", *input);
  }
  std::span<const uint8_t> model_bytes(model.data(), model.size());
  gguf::Writer w =
      to_gguf(model_bytes, model_path, std::span<const uint8_t>(tokenizer.data(), tokenizer.size()),
              tokenizer_path, options);
  w.write(out_path);
  return parse_config(model_bytes, model_path);
}

}  // namespace memwall::llama2c
