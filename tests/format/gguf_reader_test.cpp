// GGUF reader: versions, typed getters, real files, and hand-made corrupt files.
// Every corrupt file must be refused with a one-line memwall::Error; each test
// asserts on a distinctive part of the message so that it fails if a different
// check (or none) fires.
#include "format/gguf_reader.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include "base/mapped_file.h"
#include "format/gguf_writer.h"
#include "gguf_test_util.h"

namespace memwall::gguf {
namespace {

using test::Bytes;
using test::error_of;
using test::parse_bytes;
using test::parse_error;
using test::refused_with;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ4_0 = 2;

// A small valid v3 file with metadata of several kinds and three tensors.
std::vector<uint8_t> small_valid_file(uint64_t alignment = 32) {
  Writer w(alignment);
  w.set("general.architecture", Value::string("llama"));
  w.set("llama.block_count", Value::u32(2));
  w.set("llama.rope.freq_base", Value::f32(10000.0f));
  w.set("tokenizer.ggml.add_bos_token", Value::boolean(true));
  w.set("tokenizer.ggml.tokens", Value::string_array({"<unk>", "<s>", "</s>", "a", ""}));
  w.set("tokenizer.ggml.scores", Value::f32_array({0, -1, -2, -3.5f, 0}));
  w.set("tokenizer.ggml.token_type", Value::i32_array({2, 3, 3, 1, 1}));
  w.set("nested",
        Value::array_of_arrays(ValueType::I32, {Value::i32_array({1, 2}), Value::i32_array({})}));
  w.set("big", Value::u64(1ull << 40));
  w.add_tensor("token_embd.weight", TensorType::Q4_0, {32, 5}, std::vector<uint8_t>(90, 7));
  w.add_tensor("norm", TensorType::F32, {3}, std::vector<uint8_t>(12, 1));
  w.add_tensor("out", TensorType::F16, {2, 2, 2}, std::vector<uint8_t>(16, 2));
  return w.to_bytes();
}

// --- versions -------------------------------------------------------------

TEST(GgufReader, ReadsVersion2And3Alike) {
  // v2 and v3 share the little-endian layout (v2 moved counts and lengths to
  // u64; v3 only added big-endian files), so a v3 file relabelled 2 is a v2 file.
  std::vector<uint8_t> v3 = small_valid_file();
  Bytes v2{v3};
  v2.patch_u32(test::kVersionAt, 2);
  File a = parse_bytes(v3);
  File b = parse_bytes(v2.b);
  EXPECT_EQ(a.version(), 3u);
  EXPECT_EQ(b.version(), 2u);
  ASSERT_EQ(a.metadata().size(), b.metadata().size());
  for (size_t k = 0; k < a.metadata().size(); ++k) {
    EXPECT_EQ(a.metadata()[k].first, b.metadata()[k].first);
    EXPECT_EQ(a.metadata()[k].second.to_string(), b.metadata()[k].second.to_string());
  }
  ASSERT_EQ(a.tensors().size(), 3u);
  ASSERT_EQ(b.tensors().size(), 3u);
  EXPECT_EQ(b.tensors()[0].data - v2.b.data(), a.tensors()[0].data - v3.data());
}

TEST(GgufReader, ReadsAHandBuiltVersion2File) {
  Bytes f = Bytes::header(2, 1, 2);
  f.kv_str("general.architecture", "gpt2").kv_u32("general.alignment", 32);
  f.tensor("w", {4, 2}, kF32, 0).pad_to(32).zeros(32);
  File file = parse_bytes(f.b);
  EXPECT_EQ(file.version(), 2u);
  EXPECT_EQ(file.get_string("general.architecture"), "gpt2");
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.data_offset() % 32, 0u);
  EXPECT_EQ(file.tensor("w").n_bytes, 32u);
  EXPECT_EQ(file.tensor("w").data, f.b.data() + file.data_offset());
}

TEST(GgufReader, RefusesOtherVersions) {
  auto with_version = [](uint32_t v) { return Bytes::header(v, 0, 0).b; };
  EXPECT_TRUE(refused_with(with_version(1), "GGUF version 1 is not supported"));
  EXPECT_TRUE(refused_with(with_version(0), "unsupported GGUF version 0 "));
  EXPECT_TRUE(refused_with(with_version(4), "unsupported GGUF version 4 "));
  EXPECT_TRUE(refused_with(with_version(0xffffffff), "unsupported GGUF version 4294967295"));
  EXPECT_TRUE(refused_with(with_version(0x03000000), "big-endian GGUF files are not supported"));
  EXPECT_TRUE(refused_with(with_version(0x02000000), "big-endian GGUF files are not supported"));
  EXPECT_TRUE(refused_with(with_version(0x01000000), "unsupported GGUF version 16777216"));
  // Both work with nothing after the header.
  EXPECT_EQ(parse_bytes(with_version(2)).version(), 2u);
  EXPECT_EQ(parse_bytes(with_version(3)).version(), 3u);
}

TEST(GgufReader, RefusesWrongMagic) {
  EXPECT_TRUE(refused_with(Bytes::header(3, 0, 0, 0x4c4d4747).b,  // "GGML"
                           "not a GGUF file (magic bytes are 0x4c4d4747"));
  EXPECT_TRUE(refused_with(Bytes::header(3, 0, 0, 0x47475546).b, "not a GGUF file"));  // "FUGG"
  std::vector<uint8_t> text = {'<', 'h', 't', 'm', 'l', '>', '\n', ' '};
  EXPECT_TRUE(refused_with(text, "not a GGUF file"));
  EXPECT_TRUE(refused_with({}, "truncated at offset 0 reading magic"));
  EXPECT_TRUE(refused_with({'G', 'G', 'U'}, "truncated at offset 0 reading magic"));
  EXPECT_TRUE(refused_with({'G', 'G', 'U', 'F', 3, 0}, "truncated at offset 4 reading version"));
  EXPECT_NE(error_of([] { File::parse(nullptr, 0, "null"); }).find("null: truncated"),
            std::string::npos);
}

// --- typed getters ----------------------------------------------------------

TEST(GgufReader, TypedGettersAndTheirErrors) {
  File f = parse_bytes(small_valid_file(), "model.gguf");
  EXPECT_EQ(f.get_int("llama.block_count"), 2);
  EXPECT_EQ(f.get_int("llama.block_count", 9), 2);
  EXPECT_EQ(f.get_int("missing", 9), 9);
  EXPECT_EQ(f.get_int("big"), 1ll << 40);
  EXPECT_DOUBLE_EQ(f.get_float("llama.rope.freq_base"), 10000.0);
  EXPECT_DOUBLE_EQ(f.get_float("llama.block_count"), 2.0);  // integers widen to float
  EXPECT_DOUBLE_EQ(f.get_float("missing", 0.5), 0.5);
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token", false));
  EXPECT_TRUE(f.get_bool("missing", true));
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("missing", "dflt"), "dflt");
  EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens"),
            (std::vector<std::string>{"<unk>", "<s>", "</s>", "a", ""}));
  EXPECT_EQ(f.get_floats("tokenizer.ggml.scores"), (std::vector<float>{0, -1, -2, -3.5f, 0}));
  EXPECT_EQ(f.get_floats("tokenizer.ggml.token_type"), (std::vector<float>{2, 3, 3, 1, 1}));
  EXPECT_EQ(f.get_ints("tokenizer.ggml.token_type"), (std::vector<int64_t>{2, 3, 3, 1, 1}));
  EXPECT_TRUE(f.get_strings("missing").empty());
  EXPECT_TRUE(f.get_floats("missing").empty());
  EXPECT_TRUE(f.get_ints("missing").empty());

  auto expect_msg = [&](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("model.gguf: ", 0), 0u) << msg;  // names the file
  };
  expect_msg(error_of([&] { f.get_int("missing"); }), "metadata key 'missing' is missing");
  expect_msg(error_of([&] { f.get_float("missing"); }), "metadata key 'missing' is missing");
  expect_msg(error_of([&] { f.get_string("missing"); }), "metadata key 'missing' is missing");
  expect_msg(error_of([&] { f.get_int("general.architecture"); }),
             "'general.architecture' is string, expected an integer");
  expect_msg(error_of([&] { f.get_int("llama.rope.freq_base", 0); }),
             "'llama.rope.freq_base' is f32, expected an integer");
  expect_msg(error_of([&] { f.get_int("tokenizer.ggml.add_bos_token"); }),
             "'tokenizer.ggml.add_bos_token' is bool, expected an integer");
  expect_msg(error_of([&] { f.get_float("general.architecture"); }),
             "is string, expected a number");
  expect_msg(error_of([&] { f.get_bool("llama.block_count", false); }),
             "'llama.block_count' is u32, expected bool");
  expect_msg(error_of([&] { f.get_string("llama.block_count"); }), "is u32, expected string");
  expect_msg(error_of([&] { f.get_string("tokenizer.ggml.tokens", ""); }),
             "is array, expected string");
  expect_msg(error_of([&] { f.get_strings("tokenizer.ggml.scores"); }),
             "is array, expected an array of strings");
  expect_msg(error_of([&] { f.get_strings("general.architecture"); }),
             "is string, expected an array of strings");
  expect_msg(error_of([&] { f.get_floats("tokenizer.ggml.tokens"); }),
             "expected an array of numbers");
  expect_msg(error_of([&] { f.get_ints("tokenizer.ggml.scores"); }),
             "expected an array of integers");
  expect_msg(error_of([&] { f.get_ints("nested"); }), "expected an array of integers");
}

TEST(GgufReader, GetIntRefusesU64AboveInt64Max) {
  Bytes f = Bytes::header(3, 0, 1);
  f.str("huge").type(ValueType::U64).u64(UINT64_MAX);
  File file = parse_bytes(f.b, "h.gguf");
  std::string msg = error_of([&] { file.get_int("huge"); });
  EXPECT_NE(msg.find("'huge': value 18446744073709551615 is out of range"), std::string::npos)
      << msg;
  EXPECT_DOUBLE_EQ(file.get_float("huge"), 18446744073709551615.0);
}

// --- real files ---------------------------------------------------------------

struct VocabCase {
  const char* file;
  size_t n_kv;
  size_t n_tokens;
  size_t n_merges;  // 0: no merges key
  const char* first_token;
  int64_t bos;
};

void PrintTo(const VocabCase& c, std::ostream* os) { *os << c.file; }

class GgufRealVocab : public ::testing::TestWithParam<VocabCase> {};

TEST_P(GgufRealVocab, ReadsKnownCounts) {
  const VocabCase& c = GetParam();
  std::string path = test::shared_data(std::string("tokenizer-vectors/") + c.file);
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  File f = File::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 0u);
  EXPECT_EQ(f.metadata().size(), c.n_kv);
  EXPECT_EQ(f.alignment(), 32u);
  std::vector<std::string> tokens = f.get_strings("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), c.n_tokens);
  EXPECT_EQ(tokens[0], c.first_token);
  EXPECT_EQ(f.get_ints("tokenizer.ggml.token_type").size(), c.n_tokens);
  EXPECT_EQ(f.get_strings("tokenizer.ggml.merges").size(), c.n_merges);
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), c.bos);
  for (const auto& [key, value] : f.metadata()) EXPECT_FALSE(value.to_string().empty()) << key;
}

INSTANTIATE_TEST_SUITE_P(
    Files, GgufRealVocab,
    ::testing::Values(VocabCase{"ggml-vocab-gpt-2.gguf", 16, 50257, 50000, "!", 50256},
                      VocabCase{"ggml-vocab-llama-spm.gguf", 22, 32000, 0, "<unk>", 1},
                      VocabCase{"ggml-vocab-starcoder.gguf", 19, 49152, 48872, "<|endoftext|>", 0}),
    [](const auto& info) {
      std::string name = info.param.file;
      name = name.substr(11, name.size() - 16);  // between "ggml-vocab-" and ".gguf"
      for (char& ch : name) {
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

TEST(GgufRealFile, LlamaSpmVocabHasScoresAndFlags) {
  std::string path = test::shared_data("tokenizer-vectors/ggml-vocab-llama-spm.gguf");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  File f = File::open(path);
  EXPECT_EQ(f.get_floats("tokenizer.ggml.scores").size(), 32000u);
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token", false));
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_eos_token", true));
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f.get_int("llama.vocab_size"), 32000);
}

std::string smollm2_path() {
  return test::source_path("models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

TEST(GgufRealFile, SmolLM2) {
  std::string path = smollm2_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  File f = File::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.metadata().size(), 33u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), 1785664u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 30);
  EXPECT_EQ(f.get_int("llama.embedding_length"), 576);
  EXPECT_EQ(f.get_int("llama.attention.head_count_kv"), 3);
  EXPECT_DOUBLE_EQ(f.get_float("llama.rope.freq_base"), 100000.0);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(f.get_strings("general.languages"), std::vector<std::string>{"en"});
  std::vector<std::string> tokens = f.get_strings("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[2], "<|im_end|>");
  EXPECT_EQ(f.get_strings("tokenizer.ggml.merges").size(), 48900u);
  EXPECT_EQ(f.get_strings("tokenizer.ggml.merges")[0], "Ġ t");
  EXPECT_EQ(f.get_ints("tokenizer.ggml.token_type").size(), 49152u);
  EXPECT_EQ(f.get_string("tokenizer.chat_template").rfind("{% for message in messages %}", 0), 0u);
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token", true));

  std::map<TensorType, int> by_type;
  for (const TensorInfo& t : f.tensors()) ++by_type[t.type];
  EXPECT_EQ(by_type[TensorType::Q4_1], 210);
  EXPECT_EQ(by_type[TensorType::F32], 61);
  EXPECT_EQ(by_type[TensorType::Q8_0], 1);

  const TensorInfo& embd = f.tensor("token_embd.weight");
  EXPECT_EQ(embd.type, TensorType::Q8_0);
  EXPECT_EQ(embd.shape_string(), "[576, 49152]");
  EXPECT_EQ(embd.offset, 0u);
  EXPECT_EQ(embd.n_bytes, 30081024u);
  EXPECT_EQ(embd.rows(), 49152u);
  const TensorInfo& down = f.tensor("blk.0.ffn_down.weight");
  EXPECT_EQ(down.type, TensorType::Q4_1);
  EXPECT_EQ(down.shape_string(), "[1536, 576]");
  EXPECT_EQ(f.data_offset() + down.offset, 31868992u);
  EXPECT_EQ(down.n_bytes, 552960u);
  const TensorInfo& norm = f.tensor("output_norm.weight");
  EXPECT_EQ(norm.n_bytes, 2304u);
  EXPECT_EQ(norm.data + norm.n_bytes,
            embd.data - f.data_offset() + f.file_size());  // ends the file
  uint64_t params = 0;
  for (const TensorInfo& t : f.tensors()) params += t.n_elements;
  EXPECT_EQ(params, 134515008u);
}

// --- corrupt headers and metadata ------------------------------------------

TEST(GgufCorrupt, AbsurdCounts) {
  EXPECT_TRUE(
      refused_with(Bytes::header(3, 1ull << 60, 0).b,
                   "tensor count 1152921504606846976 is impossible for a file of 24 bytes"));
  EXPECT_TRUE(refused_with(Bytes::header(3, 0, UINT64_MAX).b,
                           "metadata count 18446744073709551615 is impossible"));
  // Just over what the bytes left could hold.
  Bytes f = Bytes::header(3, 0, 3).zeros(38);
  EXPECT_TRUE(refused_with(f.b, "metadata count 3 is impossible for a file of 62 bytes"));
  Bytes t = Bytes::header(3, 2, 0).zeros(63);
  EXPECT_TRUE(refused_with(t.b, "tensor count 2 is impossible"));
}

TEST(GgufCorrupt, StringLengths) {
  // Key length beyond the key cap, then within the cap but past the end.
  Bytes f = Bytes::header(3, 0, 1).u64(1ull << 40).zeros(16);
  EXPECT_TRUE(refused_with(f.b, "metadata key at offset 24 is 1099511627776 bytes long"));
  f = Bytes::header(3, 0, 1).u64(100).zeros(16);
  EXPECT_TRUE(refused_with(f.b, "truncated at offset 32 reading metadata key (needs 100 bytes"));
  // String value longer than the file.
  f = Bytes::header(3, 0, 1).str("k").type(ValueType::STRING).u64(UINT64_MAX).zeros(8);
  EXPECT_TRUE(refused_with(f.b, "reading string value (needs 18446744073709551615 bytes"));
  f = Bytes::header(3, 0, 1).str("k").type(ValueType::STRING).u64(9).raw("12345678", 8);
  EXPECT_TRUE(refused_with(f.b, "reading string value (needs 9 bytes, file has 8 left)"));
  // A string inside a string array.
  f = Bytes::header(3, 0, 1).str("k").type(ValueType::ARRAY).type(ValueType::STRING).u64(2);
  f.str("ok").u64(1ull << 50).zeros(8);
  EXPECT_TRUE(refused_with(f.b, "reading string (needs 1125899906842624 bytes"));
  // Tensor name: too long for a name, then past the end.
  f = Bytes::header(3, 1, 0).u64(5000).zeros(64);
  EXPECT_TRUE(refused_with(f.b, "tensor name at offset 24 is 5000 bytes long"));
  f = Bytes::header(3, 1, 0).u64(100).zeros(40);
  EXPECT_TRUE(refused_with(f.b, "reading tensor name (needs 100 bytes"));
}

Bytes array_header(ValueType elem, uint64_t count) {
  Bytes f = Bytes::header(3, 0, 1);
  f.str("arr").type(ValueType::ARRAY).type(elem).u64(count);
  return f;
}

TEST(GgufCorrupt, AbsurdArrayLengths) {
  Bytes f = array_header(ValueType::U32, 1ull << 62).zeros(64);
  EXPECT_TRUE(refused_with(f.b, "'arr' array of 4611686018427387904 u32 at offset 43 exceeds"));
  f = array_header(ValueType::F64, UINT64_MAX).zeros(64);
  EXPECT_TRUE(refused_with(f.b, "array of 18446744073709551615 f64"));
  f = array_header(ValueType::U8, 65).zeros(64);  // one element short
  EXPECT_TRUE(refused_with(f.b, "array of 65 u8 at offset 43 exceeds the file"));
  f = array_header(ValueType::STRING, 1ull << 40).zeros(64);
  EXPECT_TRUE(refused_with(f.b, "'arr' array length 1099511627776 at offset 43 exceeds"));
  f = array_header(ValueType::STRING, 9).zeros(64);  // 9 empty strings need 72 bytes
  EXPECT_TRUE(refused_with(f.b, "array length 9 at offset 43 exceeds the file"));
  f = array_header(ValueType::ARRAY, 1ull << 40).zeros(64);
  EXPECT_TRUE(refused_with(f.b, "array length 1099511627776 at offset 43 exceeds"));
  // An inner array's length.
  f = array_header(ValueType::ARRAY, 1).type(ValueType::I16).u64(1ull << 62).zeros(8);
  EXPECT_TRUE(refused_with(f.b, "array of 4611686018427387904 i16 at offset 55 exceeds"));
}

TEST(GgufCorrupt, InvalidValueTypeIds) {
  for (uint32_t id : {13u, 14u, 255u, 0x80000000u, UINT32_MAX}) {
    Bytes f = Bytes::header(3, 0, 1).str("k").u32(id).zeros(16);
    EXPECT_TRUE(refused_with(f.b, "'k' has invalid value type id " + std::to_string(id))) << id;
    Bytes a = Bytes::header(3, 0, 1).str("k").type(ValueType::ARRAY).u32(id).u64(0);
    EXPECT_TRUE(refused_with(a.b, "'k' has array element type id " + std::to_string(id))) << id;
  }
  // Inside a nested array.
  Bytes n = array_header(ValueType::ARRAY, 1).u32(13).u64(0);
  EXPECT_TRUE(refused_with(n.b, "'arr' has array element type id 13"));
}

// `levels` arrays nested inside each other, the innermost an empty u8 array.
Bytes nested(uint32_t levels) {
  Bytes f = Bytes::header(3, 0, 1);
  f.str("deep").type(ValueType::ARRAY);
  for (uint32_t k = 1; k < levels; ++k) f.type(ValueType::ARRAY).u64(1);
  f.type(ValueType::U8).u64(0);
  return f;
}

TEST(GgufCorrupt, NestingDeeperThanTheLimit) {
  File ok = parse_bytes(nested(8).b);
  EXPECT_EQ(ok.find("deep")->to_string(), "[[[[[[[[]]]]]]]]");
  EXPECT_TRUE(refused_with(nested(9).b, "'deep' nests arrays deeper than 8"));
  EXPECT_TRUE(refused_with(nested(100000).b, "'deep' nests arrays deeper than 8"));
}

TEST(GgufCorrupt, BoolValuesOtherThanZeroOrOne) {
  Bytes f = Bytes::header(3, 0, 1).str("flag").type(ValueType::BOOL).u8(2);
  EXPECT_TRUE(refused_with(f.b, "'flag' has bool value 2"));
  f = Bytes::header(3, 0, 1).str("flag").type(ValueType::BOOL).u8(255);
  EXPECT_TRUE(refused_with(f.b, "'flag' has bool value 255"));
  f = array_header(ValueType::BOOL, 3).u8(0).u8(1).u8(2);
  EXPECT_TRUE(refused_with(f.b, "'arr' has bool array value 2"));
  f = Bytes::header(3, 0, 1).str("flag").type(ValueType::BOOL).u8(1);
  EXPECT_TRUE(parse_bytes(f.b).get_bool("flag", false));
}

TEST(GgufCorrupt, TruncatedScalars) {
  for (ValueType t : {ValueType::U8, ValueType::U16, ValueType::I32, ValueType::F32, ValueType::U64,
                      ValueType::F64, ValueType::BOOL}) {
    Bytes f = Bytes::header(3, 0, 1).str("k").type(t).zeros(scalar_size(t) - 1);
    EXPECT_TRUE(refused_with(
        f.b, "reading scalar value (needs " + std::to_string(scalar_size(t)) + " bytes"))
        << value_type_name(t);
  }
  Bytes f = Bytes::header(3, 0, 1).str("kkkk").u16(0);
  EXPECT_TRUE(refused_with(f.b, "reading metadata value type"));
}

TEST(GgufCorrupt, DuplicateKeys) {
  Bytes f = Bytes::header(3, 0, 3);
  f.kv_u32("a", 1).kv_u32("b", 2);
  size_t at = f.size();
  f.kv_str("a", "again");
  EXPECT_TRUE(refused_with(f.b, "duplicate metadata key 'a' at offset " + std::to_string(at)));
}

TEST(GgufCorrupt, GeneralAlignment) {
  auto with_alignment = [](ValueType t, uint64_t v) {
    Bytes f = Bytes::header(3, 0, 1).str("general.alignment").type(t);
    if (scalar_size(t) == 8) {
      f.u64(v);
    } else {
      f.u32(static_cast<uint32_t>(v));
    }
    return f;
  };
  EXPECT_TRUE(
      refused_with(with_alignment(ValueType::U64, 32).b, "general.alignment must be u32, not u64"));
  EXPECT_TRUE(
      refused_with(with_alignment(ValueType::I32, 32).b, "general.alignment must be u32, not i32"));
  Bytes s = Bytes::header(3, 0, 1).kv_str("general.alignment", "32");
  EXPECT_TRUE(refused_with(s.b, "general.alignment must be u32, not string"));
  EXPECT_TRUE(refused_with(with_alignment(ValueType::U32, 0).b,
                           "general.alignment 0 is not a power of two"));
  EXPECT_TRUE(refused_with(with_alignment(ValueType::U32, 48).b,
                           "general.alignment 48 is not a power of two"));
  EXPECT_TRUE(refused_with(with_alignment(ValueType::U32, 1u << 31).b,
                           "general.alignment 2147483648 is not a power of two up to"));
  EXPECT_EQ(parse_bytes(with_alignment(ValueType::U32, 1).b).alignment(), 1u);
  EXPECT_EQ(parse_bytes(with_alignment(ValueType::U32, 4096).b).alignment(), 4096u);
}

TEST(GgufCorrupt, CountsOverTheLimits) {
  // Enough bytes for the counts, but more keys, tensors or nested arrays than
  // any real file has.
  Bytes kv = Bytes::header(3, 0, 65537).zeros(65537 * 13);
  EXPECT_TRUE(refused_with(kv.b, "metadata count 65537 exceeds the limit of 65536"));
  Bytes t = Bytes::header(3, (1u << 20) + 1, 0).zeros(((1u << 20) + 1) * 32);
  EXPECT_TRUE(refused_with(t.b, "tensor count 1048577 exceeds the limit of 1048576"));
  Bytes n = array_header(ValueType::ARRAY, 65537).zeros(65537 * 12);
  EXPECT_TRUE(refused_with(n.b, "metadata has more than 65536 nested arrays"));
  // The nested-array cap counts across keys and levels.
  Bytes m = Bytes::header(3, 0, 2);
  m.str("a").type(ValueType::ARRAY).type(ValueType::ARRAY).u64(40000).zeros(40000 * 12);
  m.str("b").type(ValueType::ARRAY).type(ValueType::ARRAY).u64(30000).zeros(30000 * 12);
  EXPECT_TRUE(refused_with(m.b, "metadata has more than 65536 nested arrays"));
  // Exactly at the limit is fine.
  Bytes ok = array_header(ValueType::ARRAY, 65536).zeros(65536 * 12);
  EXPECT_EQ(parse_bytes(ok.b).find("arr")->array_size(), 65536u);
}

// --- corrupt tensor infos ----------------------------------------------------

// One tensor after no metadata; `data_bytes` of data after the aligned header.
Bytes one_tensor(const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset,
                 size_t data_bytes, std::string_view name = "w") {
  Bytes f = Bytes::header(3, 1, 0);
  f.tensor(name, dims, type, offset).pad_to(32).zeros(data_bytes);
  return f;
}

TEST(GgufCorrupt, TensorDimensions) {
  EXPECT_EQ(parse_bytes(one_tensor({4, 2}, kF32, 0, 32).b).tensor("w").n_bytes, 32u);
  EXPECT_TRUE(
      refused_with(one_tensor({}, kF32, 0, 32).b, "tensor 'w' has 0 dimensions (1 to 4 allowed)"));
  EXPECT_TRUE(
      refused_with(one_tensor({1, 1, 1, 1, 1}, kF32, 0, 32).b, "tensor 'w' has 5 dimensions"));
  Bytes huge = Bytes::header(3, 1, 0).str("w").u32(UINT32_MAX).zeros(64);
  EXPECT_TRUE(refused_with(huge.b, "tensor 'w' has 4294967295 dimensions"));
  EXPECT_TRUE(refused_with(one_tensor({4, 0}, kF32, 0, 32).b, "tensor 'w' dimension 1 is 0"));
  EXPECT_TRUE(refused_with(one_tensor({0}, kF32, 0, 32).b, "tensor 'w' dimension 0 is 0"));
  EXPECT_TRUE(refused_with(one_tensor({1ull << 63}, kF32, 0, 32).b,
                           "tensor 'w' dimension 0 is 9223372036854775808"));
}

TEST(GgufCorrupt, ElementCountOverflow) {
  // Products of 2^64 (wraps to 0), 2^63 (over INT64_MAX) and far beyond.
  EXPECT_TRUE(refused_with(one_tensor({1ull << 32, 1ull << 32}, kF32, 0, 32).b,
                           "tensor 'w' element count overflows"));
  EXPECT_TRUE(
      refused_with(one_tensor({1ull << 31, 1ull << 32}, kF32, 0, 32).b, "element count overflows"));
  EXPECT_TRUE(refused_with(one_tensor({3, 1ull << 62}, kF32, 0, 32).b, "element count overflows"));
  EXPECT_TRUE(refused_with(one_tensor({65536, 65536, 65536, 65536}, kF32, 0, 32).b,
                           "element count overflows"));
}

TEST(GgufCorrupt, ByteSizeOverflow) {
  // Element counts fit in int64 but the byte sizes wrap 64 bits (to exactly 0
  // for the first two), which must not pass as an empty tensor.
  EXPECT_TRUE(
      refused_with(one_tensor({1ull << 62}, kF32, 0, 32).b, "tensor 'w' size in bytes overflows"));
  EXPECT_TRUE(
      refused_with(one_tensor({1ull << 61, 2}, 28 /* f64 */, 0, 32).b, "size in bytes overflows"));
  EXPECT_TRUE(
      refused_with(one_tensor({(1ull << 62) + 1}, kF32, 0, 32).b, "size in bytes overflows"));
  // No wrap, just far too big for the file.
  EXPECT_TRUE(refused_with(one_tensor({1ull << 61}, kF32, 0, 32).b,
                           "(9223372036854775808 bytes at data offset 0) lies outside"));
}

TEST(GgufCorrupt, TensorTypes) {
  EXPECT_TRUE(refused_with(one_tensor({16}, kQ4_0, 0, 32).b,
                           "tensor 'w' row length 16 is not a multiple of q4_0's block size 32"));
  EXPECT_TRUE(refused_with(one_tensor({300, 1}, 12 /* q4_k */, 0, 4096).b,
                           "row length 300 is not a multiple of q4_k's block size 256"));
  for (uint32_t id : {4u, 5u, 31u, 36u, 40u, 1000u, UINT32_MAX}) {
    EXPECT_TRUE(refused_with(one_tensor({4}, id, 0, 32).b,
                             "tensor 'w' has unknown type id " + std::to_string(id)))
        << id;
  }
  EXPECT_EQ(parse_bytes(one_tensor({32, 2}, kQ4_0, 0, 36).b).tensor("w").n_bytes, 36u);
}

TEST(GgufCorrupt, TensorOffsetsAndSizes) {
  EXPECT_TRUE(
      refused_with(one_tensor({4}, kF32, 4, 64).b, "tensor 'w' offset 4 is not aligned to 32"));
  EXPECT_TRUE(refused_with(one_tensor({4}, kF32, 32, 47).b,
                           "tensor 'w' (16 bytes at data offset 32) lies outside the file's 47 "
                           "bytes of tensor data"));
  EXPECT_EQ(parse_bytes(one_tensor({4}, kF32, 32, 48).b).tensor("w").offset, 32u);
  EXPECT_TRUE(refused_with(one_tensor({8}, kF32, 0, 31).b, "lies outside"));
  // offset + size overflows 64 bits: must not wrap into the file.
  EXPECT_TRUE(refused_with(one_tensor({8}, kF32, UINT64_MAX - 31, 64).b,
                           "(32 bytes at data offset 18446744073709551584) lies outside"));
  EXPECT_TRUE(refused_with(one_tensor({1ull << 60}, 24 /* i8 */, (1ull << 63) + (1ull << 62), 64).b,
                           "lies outside"));
  // The file ends inside the tensor-info section's padding.
  Bytes f = Bytes::header(3, 1, 0).tensor("w", {4}, kF32, 0);
  EXPECT_TRUE(
      refused_with(f.b, "file is truncated before its tensor data (needs 64 bytes, has 57)"));
  // A custom alignment applies to offsets.
  Bytes g = Bytes::header(3, 1, 1).kv_u32("general.alignment", 64);
  g.tensor("w", {4}, kF32, 32).pad_to(64).zeros(128);
  EXPECT_TRUE(refused_with(g.b, "tensor 'w' offset 32 is not aligned to 64"));
}

TEST(GgufCorrupt, TensorNames) {
  Bytes f = Bytes::header(3, 3, 0);
  f.tensor("a", {4}, kF32, 0).tensor("b", {4}, kF32, 32).tensor("a", {4}, kF32, 64);
  f.pad_to(32).zeros(96);
  EXPECT_TRUE(refused_with(f.b, "duplicate tensor name 'a'"));
  EXPECT_TRUE(refused_with(one_tensor({4}, kF32, 0, 32, "").b, "a tensor has an empty name"));
  // A tensor name of 1024 bytes is accepted, one more is not.
  EXPECT_EQ(parse_bytes(one_tensor({4}, kF32, 0, 32, std::string(1024, 'n')).b).tensors().size(),
            1u);
  EXPECT_TRUE(refused_with(one_tensor({4}, kF32, 0, 32, std::string(1025, 'n')).b,
                           "tensor name at offset 24 is 1025 bytes long"));
}

// Names from the file go into messages escaped and shortened, so a hostile
// name cannot make the error span lines or run for kilobytes.
TEST(GgufCorrupt, MessagesStayOnOneLine) {
  Bytes f = Bytes::header(3, 0, 1).str("evil\nkey\r\x1b[31m").u32(99);
  std::string msg = parse_error(f.b);
  EXPECT_NE(msg.find("'evil\\nkey\\r\\x1b[31m' has invalid value type id 99"), std::string::npos)
      << msg;
  std::string long_key(60000, 'k');
  f = Bytes::header(3, 0, 1).str(long_key).u32(99);
  msg = parse_error(f.b);
  EXPECT_NE(msg.find("has invalid value type id 99"), std::string::npos);
  EXPECT_LT(msg.size(), 400u) << msg;
  EXPECT_TRUE(refused_with(one_tensor({0}, kF32, 0, 32, "a\nb").b, "tensor 'a\\nb' dimension 0"));
  f = Bytes::header(3, 0, 2).kv_u32("a\tb", 1).kv_u32("a\tb", 1);
  EXPECT_TRUE(refused_with(f.b, "duplicate metadata key 'a\\tb'"));
}

// --- truncation ----------------------------------------------------------------

bool looks_like_truncation(const std::string& msg) {
  for (const char* part :
       {"truncated", "lies outside the file", "is impossible for a file of", "exceeds the file"}) {
    if (msg.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(GgufTruncated, EveryPrefixOfASmallFileIsRefused) {
  for (uint64_t align : {32u, 64u}) {
    std::vector<uint8_t> full = small_valid_file(align);
    ASSERT_NO_THROW(parse_bytes(full));
    for (size_t n = 0; n < full.size(); ++n) {
      // An exact-size copy, so ASan catches any read past the end.
      std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
      std::string msg = parse_error(prefix);
      ASSERT_TRUE(looks_like_truncation(msg)) << "prefix of " << n << " bytes: " << msg;
      ASSERT_EQ(msg.find('\n'), std::string::npos);
    }
  }
}

// Prefixes of a big file: every length in the first 4 KiB and a spread after.
void check_prefixes_of(const std::string& path, size_t samples) {
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  MappedFile map(path);
  File whole = File::parse(map.data(), map.size(), path);
  size_t meta_end = std::min<size_t>(whole.data_offset(), map.size());
  std::vector<size_t> lengths;
  for (size_t n = 0; n < 4096; ++n) lengths.push_back(n);
  std::mt19937_64 rng(42);
  for (size_t k = 0; k < samples; ++k) lengths.push_back(rng() % meta_end);
  for (size_t k = 0; k < samples / 4; ++k) lengths.push_back(rng() % map.size());
  lengths.push_back(meta_end - 1);
  lengths.push_back(map.size() - 1);
  for (size_t n : lengths) {
    std::string msg;
    if (n <= meta_end) {
      std::vector<uint8_t> prefix(map.data(), map.data() + n);  // exact size for ASan
      msg = parse_error(prefix);
    } else {
      // Too big to copy each time; tensor data is never read, only bounds-checked.
      msg = error_of([&] { File::parse(map.data(), n, path); });
    }
    ASSERT_TRUE(looks_like_truncation(msg)) << "prefix of " << n << " bytes: " << msg;
  }
}

TEST(GgufTruncated, PrefixesOfTheLlamaVocab) {
  check_prefixes_of(test::shared_data("tokenizer-vectors/ggml-vocab-llama-spm.gguf"), 100);
}

TEST(GgufTruncated, PrefixesOfSmolLM2) {
  check_prefixes_of(smollm2_path(), 150);
}

// --- memory and time bounds -------------------------------------------------

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

size_t current_vm_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  }
  return 0;
}

// Runs f in a child process whose address space may grow by at most `budget`
// bytes and returns what f returned, or a description of how the child died.
std::string run_with_memory_cap(size_t budget, const std::function<std::string()>& f) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    size_t vm = current_vm_bytes();
    rlimit lim{vm + budget, vm + budget};
    if (vm == 0 || setrlimit(RLIMIT_AS, &lim) != 0) {
      out = "cannot set RLIMIT_AS";
    } else {
      try {
        out = f();
      } catch (const std::bad_alloc&) {
        out = "bad_alloc: allocated more than the budget";
      }
    }
    ssize_t unused = write(fds[1], out.data(), out.size());
    (void)unused;
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "child died, status " + std::to_string(status);
  return out;
}

struct Hostile {
  const char* what;
  std::vector<uint8_t> bytes;
  const char* expected;  // part of the error message
};

// Files of about `size` bytes whose counts promise far more than the bytes
// hold, or exactly as much at the smallest size per element, failing at the
// end. Messages are checked for the 1 MiB ones; bigger ones may trip a limit.
std::vector<Hostile> hostile_files(size_t size) {
  const bool small = size <= (1 << 20);
  std::vector<Hostile> out;
  auto finish = [&](const char* what, Bytes f, const char* expected, bool pad = true) {
    if (pad && f.size() < size) f.b.resize(size, 0);
    out.push_back({what, std::move(f.b), small ? expected : ""});
  };
  finish("huge string array", array_header(ValueType::STRING, 1ull << 40), "exceeds the file");
  finish("huge nested array", array_header(ValueType::ARRAY, 1ull << 40), "exceeds the file");
  finish("huge u8 array", array_header(ValueType::U8, 1ull << 40), "exceeds the file");
  finish("huge kv count", Bytes::header(3, 0, 1ull << 40), "impossible");
  finish("huge tensor count", Bytes::header(3, 1ull << 40, 0), "impossible");
  finish("kv count the file could hold", Bytes::header(3, 0, (size - 24) / 13),
         "exceeds the limit");
  {
    // As many empty strings as fit, the last one claiming more than is left.
    uint64_t n = (size - 51) / 8;
    Bytes f = array_header(ValueType::STRING, n).zeros(8 * (n - 1)).u64(100);
    finish("empty strings to the end", f, "reading string (needs 100 bytes");
  }
  {
    // Empty nested arrays, the last one claiming more than is left.
    uint64_t n = std::min<uint64_t>((size - 51) / 12, 60000);
    Bytes f = array_header(ValueType::ARRAY, n);
    for (uint64_t k = 1; k < n; ++k) f.type(ValueType::U8).u64(0);
    f.type(ValueType::U8).u64(100);
    finish("empty nested arrays to the end", f, "array of 100 u8", false);
    finish("more nested arrays than the limit", array_header(ValueType::ARRAY, (size - 51) / 12),
           "more than 65536 nested arrays");
  }
  {
    // Small distinct keys until the file ends, the last key cut short.
    Bytes body;
    uint64_t n = 0;
    while (body.size() + 16 + 8 <= size - 24) {
      uint32_t k = static_cast<uint32_t>(n++);
      body.u64(3).raw(&k, 3).type(ValueType::U8).u8(0);
    }
    body.u64(1000);
    Bytes f = Bytes::header(3, 0, n + 1);
    f.raw(body.b.data(), body.size());
    finish("many tiny keys", f, "reading metadata key (needs 1000 bytes");
  }
  {
    // Many short tokens, as in a vocabulary, the last one cut short.
    uint64_t n = (size - 51) / 24;
    Bytes f = array_header(ValueType::STRING, n);
    for (uint64_t k = 1; k < n; ++k) f.str("0123456789abcdef");
    f.u64(100);
    finish("many 16-byte strings", f, "reading string (needs 100 bytes");
  }
  {
    // Many tensor infos, one short.
    uint64_t n = (size - 24) / 39;
    Bytes f = Bytes::header(3, n + 1, 0);
    for (uint64_t k = 0; k < n; ++k) {
      char name[24];
      std::snprintf(name, sizeof name, "%07llu", static_cast<unsigned long long>(k));
      f.tensor(name, {1}, 24, 0);
    }
    finish("many tensor infos", f, "a tensor has an empty name");
  }
  return out;
}

TEST(GgufHostile, BadFilesAllocateAFewTimesTheirSizeAtMost) {
  if (kSanitized) GTEST_SKIP() << "sanitizer allocators reserve address space of their own";
  for (size_t size : {size_t{1} << 20, size_t{8} << 20}) {
    for (const Hostile& h : hostile_files(size)) {
      SCOPED_TRACE(std::string(h.what) + ", " + std::to_string(size) + " bytes");
      // Densest metadata costs ~5x its bytes (tensor infos; strings 4x);
      // keys and nested arrays cost ~15x but have absolute caps (~17 MB, ~10 MB).
      // Anything proportional to a claimed count would need gigabytes.
      size_t budget = 6 * h.bytes.size() + (32 << 20);
      std::string msg = run_with_memory_cap(budget, [&] { return parse_error(h.bytes); });
      EXPECT_EQ(msg.find("bad_alloc"), std::string::npos) << msg;
      EXPECT_NE(msg.find(h.expected), std::string::npos) << msg;
      EXPECT_NE(msg, "<parsed>");
    }
  }
}

TEST(GgufHostile, BadFilesFailFast) {
  for (const Hostile& h : hostile_files(1 << 20)) {
    auto start = std::chrono::steady_clock::now();
    std::string msg = parse_error(h.bytes);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_NE(msg, "<parsed>") << h.what;
    EXPECT_LT(seconds, 2.0) << h.what;
  }
}

}  // namespace
}  // namespace memwall::gguf
