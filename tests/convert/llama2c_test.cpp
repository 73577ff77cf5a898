// llama2.c -> GGUF conversion: the real stories260K checkpoint read back as a
// GGUF (keys, shapes, token types, bytes in place), hand-made legacy and
// version-1 checkpoints whose every float says where it came from, and corrupt
// inputs, each refused with a one-line memwall::Error and no output file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/mapped_file.h"
#include "format/gguf_reader.h"
#include "format/llama2c.h"

namespace memwall::llama2c {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const std::string kData = std::string(MEMWALL_SHARED_DATA) + "/llama2c-stories260k/";

template <typename T>
void put(Bytes& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof v);
}

template <typename T>
void poke(Bytes& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

Bytes slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Expects fn to throw memwall::Error whose one-line message contains `needle`.
void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing \"" << needle << "\"";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(needle), std::string::npos) << "message: " << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "message is not one line: " << what;
  }
}

// ---------------------------------------------------------------------------
// A tiny synthetic checkpoint. Every float of part p (in legacy order, 1-based)
// at flat index k is p * 100000 + k: exact in f32, so a tensor's bytes say
// which llama2.c array and element they were copied from.

struct Tiny {
  int32_t dim = 8, hidden = 12, layers = 2, heads = 4, kv_heads = 2, vocab = 16, seq_len = 6;
  bool shared = true;

  int32_t head_size() const { return dim / heads; }
  int32_t kv_dim() const { return kv_heads * head_size(); }
};

enum TinyPart {
  kTokEmb = 1,
  kRmsAtt,
  kWq,
  kWk,
  kWv,
  kWo,
  kRmsFfn,
  kW1,
  kW2,
  kW3,
  kRmsFinal,
  kFreqRe,
  kFreqIm,
  kWcls
};

size_t part_elements(const Tiny& t, int part) {
  size_t L = size_t(t.layers), C = size_t(t.dim), F = size_t(t.hidden), V = size_t(t.vocab);
  size_t KV = size_t(t.kv_dim()), D = size_t(t.head_size());
  switch (part) {
    case kTokEmb:
    case kWcls:
      return V * C;
    case kRmsAtt:
    case kRmsFfn:
      return L * C;
    case kWq:
    case kWo:
      return L * C * C;
    case kWk:
    case kWv:
      return L * KV * C;
    case kW1:
    case kW2:
    case kW3:
      return L * F * C;
    case kRmsFinal:
      return C;
    case kFreqRe:
    case kFreqIm:
      return size_t(t.seq_len) * D / 2;
  }
  return 0;
}

float tag(int part, size_t k) {
  return float(part * 100000 + int(k));
}

void put_part(Bytes& b, const Tiny& t, int part) {
  for (size_t k = 0; k < part_elements(t, part); ++k) put(b, tag(part, k));
}

Bytes legacy_checkpoint(const Tiny& t) {
  Bytes b;
  for (int32_t v :
       {t.dim, t.hidden, t.layers, t.heads, t.kv_heads, t.shared ? t.vocab : -t.vocab, t.seq_len}) {
    put(b, v);
  }
  for (int part = kTokEmb; part <= kFreqIm; ++part) put_part(b, t, part);
  if (!t.shared) put_part(b, t, kWcls);
  return b;
}

Bytes v1_checkpoint(const Tiny& t, int32_t version = 1) {
  Bytes b;
  put(b, kMagicV1);
  put(b, version);
  for (int32_t v : {t.dim, t.hidden, t.layers, t.heads, t.kv_heads, t.vocab, t.seq_len}) put(b, v);
  put(b, uint8_t(t.shared ? 1 : 0));
  b.resize(kV1HeaderBytes, 0);
  for (int part : {kRmsAtt, kRmsFfn, kRmsFinal, kTokEmb, kWq, kWk, kWv, kWo, kW1, kW2, kW3})
    put_part(b, t, part);
  if (!t.shared) put_part(b, t, kWcls);
  return b;
}

const std::vector<std::string> kTinyPieces = {
    "<unk>", "\n<s>\n", "\n</s>\n", "<0x00>", "<0x0A>",   "<0xFF>",   " ",      "a",
    "b",     " a",      " ab",      "ab",     "\xC3\xA9", " the end", "<0xzz>", "<0x41"};

Bytes tokenizer_file(const std::vector<std::string>& pieces, int32_t max_len = -1) {
  Bytes b;
  if (max_len < 0) {
    max_len = 0;
    for (const auto& p : pieces) max_len = std::max(max_len, int32_t(p.size()));
  }
  put(b, max_len);
  for (size_t i = 0; i < pieces.size(); ++i) {
    put(b, -float(i));
    put(b, int32_t(pieces[i].size()));
    b.insert(b.end(), pieces[i].begin(), pieces[i].end());
  }
  return b;
}

// Converts in memory and parses the result back.
struct Converted {
  Bytes bytes;
  gguf::File file;
};

Converted convert_bytes(const Bytes& model, const Bytes& tok, const std::string& name = "tiny") {
  gguf::Writer w = to_gguf(model, "model.bin", tok, "tok.bin", {name});
  Converted c{w.to_bytes(), {}};
  c.file = gguf::File::parse(c.bytes.data(), c.bytes.size(), "converted");
  return c;
}

std::vector<float> floats(const gguf::TensorInfo& t) {
  std::vector<float> out(t.n_elements);
  std::memcpy(out.data(), t.data, t.n_bytes);
  return out;
}

// Checks tensor `name` has GGUF dims `dims` and holds part `part` from flat index `first`.
void expect_tensor(const gguf::File& f, const std::string& name, std::vector<uint64_t> dims,
                   int part, size_t first) {
  SCOPED_TRACE(name);
  const gguf::TensorInfo& t = f.tensor(name);
  EXPECT_EQ(t.type, TensorType::F32);
  ASSERT_EQ(t.n_dims, dims.size());
  for (size_t d = 0; d < dims.size(); ++d) EXPECT_EQ(t.ne[d], dims[d]) << "dim " << d;
  std::vector<float> v = floats(t);
  for (size_t k = 0; k < v.size(); ++k) {
    ASSERT_EQ(v[k], tag(part, first + k)) << "element " << k;
  }
}

void expect_tiny_layout(const gguf::File& f, const Tiny& t) {
  uint64_t C = uint64_t(t.dim), F = uint64_t(t.hidden), V = uint64_t(t.vocab),
           KV = uint64_t(t.kv_dim());
  expect_tensor(f, "token_embd.weight", {C, V}, kTokEmb, 0);
  for (int l = 0; l < t.layers; ++l) {
    std::string blk = "blk." + std::to_string(l) + ".";
    size_t L = size_t(l);
    expect_tensor(f, blk + "attn_norm.weight", {C}, kRmsAtt, L * C);
    expect_tensor(f, blk + "attn_q.weight", {C, C}, kWq, L * C * C);
    expect_tensor(f, blk + "attn_k.weight", {C, KV}, kWk, L * KV * C);
    expect_tensor(f, blk + "attn_v.weight", {C, KV}, kWv, L * KV * C);
    expect_tensor(f, blk + "attn_output.weight", {C, C}, kWo, L * C * C);
    expect_tensor(f, blk + "ffn_norm.weight", {C}, kRmsFfn, L * C);
    expect_tensor(f, blk + "ffn_gate.weight", {C, F}, kW1, L * F * C);
    expect_tensor(f, blk + "ffn_down.weight", {F, C}, kW2, L * C * F);
    expect_tensor(f, blk + "ffn_up.weight", {C, F}, kW3, L * F * C);
  }
  expect_tensor(f, "output_norm.weight", {C}, kRmsFinal, 0);
  if (t.shared) {
    EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  } else {
    expect_tensor(f, "output.weight", {C, V}, kWcls, 0);
  }
  EXPECT_EQ(f.tensors().size(), 2 + 9 * size_t(t.layers) + (t.shared ? 0 : 1));
}

// ---------------------------------------------------------------------------
// stories260K

TEST(Llama2c, ConvertsStories260K) {
  fs::path dir = fs::temp_directory_path() / ("memwall_llama2c_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string out = (dir / "stories.gguf").string();
  Config c = convert(kData + "stories260K.bin", kData + "tok512.bin", out, {});
  EXPECT_EQ(c.version, 0);
  EXPECT_EQ(
      c.to_string(),
      "dim 64, hidden_dim 172, n_layers 5, n_heads 8, n_kv_heads 4, vocab_size 512, seq_len 512, "
      "shared classifier");
  EXPECT_EQ(c.parameters(), 260032u);
  EXPECT_FALSE(fs::exists(out + ".tmp"));

  gguf::File f = gguf::File::open(out);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("general.name"), "stories260K");
  EXPECT_EQ(f.get_int("llama.context_length"), 512);
  EXPECT_EQ(f.get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f.get_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(f.get_int("llama.block_count"), 5);
  EXPECT_EQ(f.get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(f.get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(f.get_int("llama.rope.dimension_count"), 8);
  EXPECT_FLOAT_EQ(float(f.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_FLOAT_EQ(float(f.get_float("llama.rope.freq_base")), 10000.0f);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f.get_int("tokenizer.ggml.unknown_token_id"), 0);
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token", false));
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_space_prefix", false));
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_eos_token", true));

  std::vector<std::string> tokens = f.get_strings("tokenizer.ggml.tokens");
  std::vector<int64_t> types = f.get_ints("tokenizer.ggml.token_type");
  std::vector<float> scores = f.get_floats("tokenizer.ggml.scores");
  ASSERT_EQ(tokens.size(), 512u);
  ASSERT_EQ(types.size(), 512u);
  ASSERT_EQ(scores.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(types[0], 2);
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(types[1], 3);
  EXPECT_EQ(tokens[2], "</s>");
  EXPECT_EQ(types[2], 3);
  for (int i = 3; i < 259; ++i) {
    char want[8];
    std::snprintf(want, sizeof want, "<0x%02X>", i - 3);
    EXPECT_EQ(tokens[i], want);
    EXPECT_EQ(types[i], 6) << i;
  }
  for (int i = 259; i < 512; ++i) {
    EXPECT_EQ(types[i], 1) << i;
    EXPECT_EQ(tokens[i].find(' '), std::string::npos) << i;
  }
  EXPECT_EQ(tokens[259], "\xE2\x96\x81t");  // " t"
  EXPECT_EQ(tokens[260], "he");
  EXPECT_EQ(tokens[265], "\xE2\x96\x81the");  // " the"
  EXPECT_EQ(scores[260], -1.0f);
  EXPECT_EQ(scores[265], -6.0f);

  // Shapes, and bytes copied from the right place: token_embd starts right
  // after the 28-byte header, output_norm (rms_final) right before the freq_cis tables.
  EXPECT_EQ(f.tensors().size(), 47u);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f.tensor("token_embd.weight").shape_string(), "[64, 512]");
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight").shape_string(), "[64, 64]");
  EXPECT_EQ(f.tensor("blk.4.attn_k.weight").shape_string(), "[64, 32]");
  EXPECT_EQ(f.tensor("blk.4.attn_v.weight").shape_string(), "[64, 32]");
  EXPECT_EQ(f.tensor("blk.2.attn_output.weight").shape_string(), "[64, 64]");
  EXPECT_EQ(f.tensor("blk.3.ffn_gate.weight").shape_string(), "[64, 172]");
  EXPECT_EQ(f.tensor("blk.3.ffn_up.weight").shape_string(), "[64, 172]");
  EXPECT_EQ(f.tensor("blk.3.ffn_down.weight").shape_string(), "[172, 64]");
  EXPECT_EQ(f.tensor("output_norm.weight").shape_string(), "[64]");
  MappedFile src(kData + "stories260K.bin");
  const gguf::TensorInfo& emb = f.tensor("token_embd.weight");
  EXPECT_EQ(std::memcmp(emb.data, src.data() + 28, emb.n_bytes), 0);
  const gguf::TensorInfo& norm = f.tensor("output_norm.weight");
  size_t freq_bytes = 2 * 512 * 4 * 4;
  EXPECT_EQ(std::memcmp(norm.data, src.data() + src.size() - freq_bytes - 64 * 4, 64 * 4), 0);
  fs::remove_all(dir);
}

TEST(Llama2c, Stories260KAsVersion1GivesTheSameGguf) {
  // Re-export stories260K in the version-1 layout (norms first, no freq_cis)
  // and check both convert to identical bytes.
  Bytes legacy = slurp(kData + "stories260K.bin");
  Bytes tok = slurp(kData + "tok512.bin");
  Config c = parse_config(legacy, "stories260K.bin");
  const size_t C = 64, L = 5, V = 512, KV = 32, F = 172, FREQ = 512 * 4;
  std::vector<std::pair<size_t, size_t>> parts;  // (offset, floats) in legacy order
  size_t at = 28;
  for (size_t n : {V * C, L * C, L * C * C, L * KV * C, L * KV * C, L * C * C, L * C, L * F * C,
                   L * F * C, L * F * C, C, FREQ, FREQ}) {
    parts.emplace_back(at, n);
    at += n * 4;
  }
  ASSERT_EQ(at, legacy.size());
  Bytes v1;
  put(v1, kMagicV1);
  put(v1, int32_t(1));
  for (int32_t x :
       {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len})
    put(v1, x);
  put(v1, uint8_t(1));
  v1.resize(256, 0);
  for (int i : {1, 6, 10, 0, 2, 3, 4, 5, 7, 8, 9}) {
    v1.insert(v1.end(), legacy.begin() + long(parts[i].first),
              legacy.begin() + long(parts[i].first + parts[i].second * 4));
  }
  EXPECT_EQ(parse_config(v1, "v1.bin").version, 1);
  EXPECT_EQ(convert_bytes(legacy, tok).bytes, convert_bytes(v1, tok).bytes);
}

// ---------------------------------------------------------------------------
// Synthetic checkpoints: every tensor comes from the right array and layer.

class Llama2cLayout : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(Llama2cLayout, EveryTensorComesFromItsArrayAndLayer) {
  auto [version, shared] = GetParam();
  Tiny t;
  t.shared = shared;
  Bytes model = version == 0 ? legacy_checkpoint(t) : v1_checkpoint(t);
  Converted c = convert_bytes(model, tokenizer_file(kTinyPieces));
  expect_tiny_layout(c.file, t);
  EXPECT_EQ(c.file.get_int("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(c.file.get_int("llama.rope.dimension_count"), 2);
  EXPECT_EQ(c.file.get_int("llama.context_length"), 6);
  EXPECT_EQ(c.file.get_string("general.name"), "tiny");
}

INSTANTIATE_TEST_SUITE_P(VersionsAndClassifiers, Llama2cLayout,
                         ::testing::Combine(::testing::Values(0, 1), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == 0 ? "Legacy"
                                                                           : "Version1") +
                                  (std::get<1>(info.param) ? "Shared" : "Separate");
                         });

TEST(Llama2c, LegacyAndVersion1ConvertIdentically) {
  for (bool shared : {true, false}) {
    Tiny t;
    t.shared = shared;
    Bytes tok = tokenizer_file(kTinyPieces);
    EXPECT_EQ(convert_bytes(legacy_checkpoint(t), tok).bytes,
              convert_bytes(v1_checkpoint(t), tok).bytes);
  }
}

TEST(Llama2c, VocabIsSentencePieceStyle) {
  Tokenizer tok = parse_tokenizer(tokenizer_file(kTinyPieces), 16, "tok.bin");
  EXPECT_EQ(tok.max_token_length, 8);
  EXPECT_EQ(tok.pieces[13], " the end");
  GgufVocab v = to_gguf_vocab(tok, "tok.bin");
  const std::string S = "\xE2\x96\x81";
  std::vector<std::string> want_text = {
      "<unk>",  "<s>",  "</s>",  "<0x00>", "<0x0A>", "<0xFF>",   S,
      "a",      "b",    S + "a", S + "ab", "ab",     "\xC3\xA9", S + "the" + S + "end",
      "<0xzz>", "<0x41"};
  std::vector<int32_t> want_type = {2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_EQ(v.tokens, want_text);
  EXPECT_EQ(v.types, want_type);
  ASSERT_EQ(v.scores.size(), 16u);
  EXPECT_EQ(v.scores[9], -9.0f);
}

// ---------------------------------------------------------------------------
// Corrupt checkpoints

Bytes tiny_tok() {
  return tokenizer_file(kTinyPieces);
}

void expect_model_error(const Bytes& model, const std::string& needle) {
  Bytes tok = tiny_tok();
  expect_error([&] { to_gguf(model, "model.bin", tok, "tok.bin", {}); }, needle);
}

TEST(Llama2cErrors, TooSmallOrTruncatedOrOversized) {
  expect_model_error({}, "model.bin is 0 bytes: too small for a llama2.c checkpoint");
  expect_model_error(Bytes(27, 1), "is 27 bytes");
  Bytes m = legacy_checkpoint(Tiny{});
  Bytes cut(m.begin(), m.end() - 4);
  expect_model_error(cut, "bytes, but the file has");
  expect_model_error(cut, "(truncated, or the header is wrong)");
  Bytes more = m;
  more.resize(m.size() + 12, 0);
  expect_model_error(more, "(12 unexpected trailing bytes)");
  Bytes v1 = v1_checkpoint(Tiny{});
  expect_model_error(Bytes(v1.begin(), v1.begin() + 100),
                     "the version-1 header alone is 256 bytes");
  expect_model_error(Bytes(v1.begin(), v1.end() - 1), "truncated");
}

TEST(Llama2cErrors, EveryTruncationIsRefused) {
  for (const Bytes& m : {legacy_checkpoint(Tiny{}), v1_checkpoint(Tiny{})}) {
    Bytes tok = tiny_tok();
    for (size_t n = 0; n < m.size(); n += 3) {
      Bytes cut(m.begin(), m.begin() + long(n));
      EXPECT_THROW(to_gguf(cut, "m", tok, "t", {}), Error) << n;
    }
  }
}

TEST(Llama2cErrors, RandomHeaderAndTokenizerDamageNeverCrashes) {
  // Damaged headers and tokenizer records either convert or throw Error.
  std::mt19937 rng(1234);
  const Bytes models[] = {legacy_checkpoint(Tiny{}), v1_checkpoint(Tiny{})};
  const Bytes tok = tiny_tok();
  for (int iter = 0; iter < 3000; ++iter) {
    Bytes m = models[iter % 2], t = tok;
    int hits = 1 + int(rng() % 3);
    for (int h = 0; h < hits; ++h) {
      if (rng() % 2) {
        m[rng() % 40] = uint8_t(rng());
      } else {
        t[rng() % t.size()] = uint8_t(rng());
      }
    }
    try {
      to_gguf(m, "m", t, "t", {});
    } catch (const Error&) {
    }
  }
}

TEST(Llama2cErrors, NonsenseHeaderValues) {
  const char* names[] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                         "n_kv_heads", "vocab_size", "seq_len"};
  for (int field = 0; field < 7; ++field) {
    for (int32_t bad : {0, -3}) {
      if (field == 5 && bad < 0) continue;  // negative legacy vocab = separate classifier
      Bytes m = legacy_checkpoint(Tiny{});
      poke(m, size_t(field) * 4, bad);
      expect_model_error(m, std::string("header ") + names[field] + " is " + std::to_string(bad) +
                                "; it must be positive");
    }
  }
  Bytes m = legacy_checkpoint(Tiny{});
  poke(m, 12, int32_t(3));  // n_heads 3 does not divide dim 8
  expect_model_error(m, "header dim 8 is not divisible by n_heads 3");
  m = legacy_checkpoint(Tiny{});
  poke(m, 16, int32_t(3));  // n_kv_heads 3 does not divide n_heads 4
  expect_model_error(m, "header n_heads 4 is not a multiple of n_kv_heads 3");
  m = legacy_checkpoint(Tiny{});
  poke(m, 16, int32_t(8));  // more KV heads than heads
  expect_model_error(m, "not a multiple of n_kv_heads 8");
  m = legacy_checkpoint(Tiny{});
  poke(m, 12, int32_t(8));  // head size 1
  poke(m, 16, int32_t(8));
  expect_model_error(m, "head size 1 (dim 8 / n_heads 8) is odd");
  m = legacy_checkpoint(Tiny{});
  poke(m, 20, INT32_MIN);
  expect_model_error(m, "vocab_size -2147483648 is not plausible");
  // Huge values: sizes that overflow 64 bits are refused, never wrapped.
  m = legacy_checkpoint(Tiny{});
  const int32_t huge[7] = {1 << 30, INT32_MAX, INT32_MAX, 1 << 29, 1 << 29, INT32_MAX, INT32_MAX};
  for (int field = 0; field < 7; ++field) poke(m, size_t(field) * 4, huge[field]);
  expect_model_error(m, "model.bin: header sizes overflow 64 bits");
  m = legacy_checkpoint(Tiny{});
  for (int field = 0; field < 7; ++field) poke(m, size_t(field) * 4, int32_t(1 << 12));
  poke(m, 12, int32_t(1 << 10));  // n_heads
  poke(m, 16, int32_t(1 << 10));  // n_kv_heads
  expect_model_error(m, "bytes, but the file has");
}

TEST(Llama2cErrors, HeaderThatDisagreesWithTheSize) {
  Tiny t;
  // Legacy file with a separate classifier but a positive vocab_size.
  t.shared = false;
  Bytes m = legacy_checkpoint(t);
  poke(m, 20, t.vocab);
  expect_model_error(m, "exactly one more (vocab_size, dim) classifier");
  // And the reverse.
  t.shared = true;
  m = legacy_checkpoint(t);
  poke(m, 20, -t.vocab);
  expect_model_error(m, "one (vocab_size, dim) classifier short");
  // A different seq_len changes the freq_cis tables' size.
  m = legacy_checkpoint(Tiny{});
  poke(m, 24, int32_t(7));
  expect_model_error(m, "seq_len 7, shared classifier) implies");
}

TEST(Llama2cErrors, Version1Headers) {
  Bytes m = v1_checkpoint(Tiny{}, 2);
  expect_model_error(m, "version 2 (int8 Q8_0) export, which is not supported");
  m = v1_checkpoint(Tiny{}, 7);
  expect_model_error(m, "unknown version 7");
  m = v1_checkpoint(Tiny{});
  m[36] = 2;
  expect_model_error(m, "shared_classifier flag is 2, expected 0 or 1");
  m = v1_checkpoint(Tiny{});
  poke(m, 8 + 20, int32_t(-16));
  expect_model_error(m, "version-1 header vocab_size is -16; it must be positive");
  Tiny t;
  t.shared = false;
  m = v1_checkpoint(t);
  m[36] = 1;  // says shared, but holds the classifier
  expect_model_error(m, "exactly one more (vocab_size, dim) classifier");
}

TEST(Llama2cErrors, OtherFileFormats) {
  Bytes gguf(64, 0);
  std::memcpy(gguf.data(), "GGUF\x03", 5);
  expect_model_error(gguf, "model.bin is a GGUF file, not a llama2.c checkpoint");
  Bytes zip(64, 0);
  std::memcpy(zip.data(), "PK\x03\x04", 4);
  expect_model_error(zip, "zip archive (a PyTorch .pt checkpoint?)");
}

TEST(Llama2cErrors, NonFiniteWeights) {
  Tiny t;
  Bytes m = legacy_checkpoint(t);
  size_t wk_at =
      28 + 4 * (part_elements(t, kTokEmb) + part_elements(t, kRmsAtt) + part_elements(t, kWq));
  size_t layer1 = size_t(t.kv_dim() * t.dim);
  poke(m, wk_at + 4 * (layer1 + 5), std::nanf(""));
  expect_model_error(
      m, "model.bin: wk layer 1 (blk.1.attn_k.weight) holds a non-finite value at element 5");
}

// ---------------------------------------------------------------------------
// Corrupt tokenizers

void expect_tok_error(const Bytes& tok, const std::string& needle) {
  Bytes model = legacy_checkpoint(Tiny{});
  expect_error([&] { to_gguf(model, "model.bin", tok, "tok.bin", {}); }, needle);
}

TEST(Llama2cErrors, TokenizerCountMustMatchVocab) {
  std::vector<std::string> fewer(kTinyPieces.begin(), kTinyPieces.end() - 1);
  expect_tok_error(tokenizer_file(fewer),
                   "tok.bin holds 15 tokens but the checkpoint's vocab_size is 16");
  std::vector<std::string> more = kTinyPieces;
  more.push_back("zz");
  expect_tok_error(tokenizer_file(more), "tok.bin holds 17 tokens");
  expect_tok_error(slurp(kData + "tok512.bin"),
                   "holds 512 tokens but the checkpoint's vocab_size is 16");
}

TEST(Llama2cErrors, CorruptTokenizerRecords) {
  expect_tok_error({}, "tok.bin is 0 bytes: too small for a llama2.c tokenizer");
  expect_tok_error(tokenizer_file(kTinyPieces, 0), "max_token_length is 0");
  expect_tok_error(tokenizer_file(kTinyPieces, 3),
                   "token 0 has length 5, outside 1..max_token_length 3");
  Bytes tok = tiny_tok();
  Bytes cut(tok.begin(), tok.end() - 2);
  expect_tok_error(cut, "token 15 is truncated: 5 bytes at byte");
  Bytes cut_record(tok.begin(), tok.end() - 5 - 3);
  expect_tok_error(cut_record, "token 15 is truncated at byte");
  Bytes neg = tiny_tok();
  poke(neg, 4 + 4, int32_t(-1));  // token 0 length
  expect_tok_error(neg, "token 0 has length -1");
  std::vector<std::string> bad_utf8 = kTinyPieces;
  bad_utf8[7] = "\xC3";
  expect_tok_error(tokenizer_file(bad_utf8), "token 7 is not valid UTF-8");
  std::vector<std::string> empty = kTinyPieces;
  empty[8] = "";
  expect_tok_error(tokenizer_file(empty), "token 8 has length 0");
  Bytes nan_score = tiny_tok();
  poke(nan_score, 4, std::nanf(""));
  expect_tok_error(nan_score, "token 0 has a non-finite score");
  std::vector<std::string> dup = kTinyPieces;
  dup[8] = " a";  // same as token 9 once " " becomes "▁"
  expect_tok_error(tokenizer_file(dup), "tok.bin: tokens 8 and 9 are both");
  expect_tok_error({'G', 'G', 'U', 'F', 3, 0, 0, 0},
                   "tok.bin is a GGUF file, not a llama2.c tokenizer");
}

// ---------------------------------------------------------------------------
// Files: nothing is left behind on failure.

class Llama2cFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("memwall_llama2c_files_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const Bytes& b) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), long(b.size()));
    return p;
  }
  fs::path dir_;
};

TEST_F(Llama2cFiles, FailureLeavesNoOutput) {
  Bytes m = legacy_checkpoint(Tiny{});
  std::string model = write("model.bin", Bytes(m.begin(), m.end() - 4));
  std::string tok = write("tok.bin", tiny_tok());
  std::string out = (dir_ / "out.gguf").string();
  expect_error([&] { convert(model, tok, out, {}); }, "bytes, but the file has");
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  // An existing output survives a failed conversion untouched.
  write("out.gguf", {1, 2, 3});
  expect_error([&] { convert(model, tok, out, {}); }, "truncated");
  EXPECT_EQ(slurp(out), (Bytes{1, 2, 3}));
}

TEST_F(Llama2cFiles, WritesAndReplaces) {
  std::string model = write("model.bin", legacy_checkpoint(Tiny{}));
  std::string tok = write("tok.bin", tiny_tok());
  std::string out = write("out.gguf", {1, 2, 3});
  Config c = convert(model, tok, out, {"my model"});
  EXPECT_EQ(c.vocab_size, 16);
  gguf::File f = gguf::File::open(out);
  EXPECT_EQ(f.get_string("general.name"), "my model");
  expect_tiny_layout(f, Tiny{});
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  // Default name: the checkpoint file's stem.
  convert(model, tok, out, {});
  EXPECT_EQ(gguf::File::open(out).get_string("general.name"), "model");
}

TEST_F(Llama2cFiles, RefusesToOverwriteAnInput) {
  Bytes m = legacy_checkpoint(Tiny{});
  std::string model = write("model.bin", m);
  std::string tok = write("tok.bin", tiny_tok());
  expect_error([&] { convert(model, tok, model, {}); }, "is the input file");
  expect_error([&] { convert(model, tok, tok, {}); }, "is the input file");
  EXPECT_EQ(slurp(model), m);
}

TEST_F(Llama2cFiles, MissingInputs) {
  std::string tok = write("tok.bin", tiny_tok());
  expect_error([&] { convert((dir_ / "nope.bin").string(), tok, (dir_ / "o.gguf").string(), {}); },
               "cannot open");
}

}  // namespace
}  // namespace memwall::llama2c
