// Writes the fuzz seeds that come from memwall's own GGUF writer. Skipped
// unless MEMWALL_SEED_DIR is set; tests/fuzz/make_corpus.py sets it and runs
// only this test, next to the seeds it makes with the `gguf` Python package.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "format/gguf_writer.h"
#include "gguf_test_util.h"

namespace memwall::gguf {
namespace {

Value array_raw(ValueType elem, std::vector<uint8_t> raw) {
  Value v;
  v.type = ValueType::ARRAY;
  v.element_type = elem;
  v.raw = std::move(raw);
  return v;
}

Value scalar(ValueType t, uint64_t u, int64_t i = 0) {
  Value v;
  v.type = t;
  v.u = u;
  v.i = i;
  return v;
}

std::vector<uint8_t> ramp(size_t n) {
  std::vector<uint8_t> out(n);
  for (size_t k = 0; k < n; ++k) out[k] = static_cast<uint8_t>(k * 37 + 11);
  return out;
}

void add_tensor(Writer& w, const std::string& name, TensorType type, std::vector<uint64_t> dims) {
  const TensorTypeInfo& info = tensor_type_info(type);
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  w.add_tensor(name, type, std::move(dims), ramp(n / info.block_elements * info.block_bytes));
}

Writer tiny_vocab() {
  Writer w(32);
  w.set("general.architecture", Value::string("llama"));
  w.set("tokenizer.ggml.model", Value::string("llama"));
  w.set("tokenizer.ggml.tokens",
        Value::string_array({"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "ab", "<0x0A>"}));
  w.set("tokenizer.ggml.scores", Value::f32_array({0, 0, 0, -1, -2, -3, -4, -5}));
  w.set("tokenizer.ggml.token_type", Value::i32_array({2, 3, 3, 1, 1, 1, 1, 6}));
  w.set("tokenizer.ggml.bos_token_id", Value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", Value::u32(2));
  w.set("tokenizer.ggml.add_bos_token", Value::boolean(true));
  return w;
}

TEST(GgufSeedCorpus, WriteOwnWriterSeeds) {
  const char* dir_env = std::getenv("MEMWALL_SEED_DIR");
  if (!dir_env || !*dir_env) GTEST_SKIP() << "MEMWALL_SEED_DIR is not set";
  std::filesystem::path dir(dir_env);
  std::filesystem::create_directories(dir);
  auto save = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    ASSERT_NO_THROW(test::parse_bytes(bytes)) << name;  // seeds start valid
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
  };

  save("mw_empty.gguf", Writer(32).to_bytes());
  save("mw_vocab.gguf", tiny_vocab().to_bytes());
  {
    std::vector<uint8_t> v2 = tiny_vocab().to_bytes();
    v2[test::kVersionAt] = 2;
    save("mw_vocab_v2.gguf", v2);
  }
  {
    Writer w(32);
    w.set("u8", scalar(ValueType::U8, 200));
    w.set("i8", scalar(ValueType::I8, 0, -100));
    w.set("u16", scalar(ValueType::U16, 60000));
    w.set("i16", scalar(ValueType::I16, 0, -30000));
    w.set("u32", Value::u32(4000000000u));
    w.set("i32", Value::i32(-2000000000));
    w.set("f32", Value::f32(1.5f));
    w.set("bool", Value::boolean(true));
    w.set("string", Value::string("text"));
    w.set("u64", Value::u64(UINT64_MAX));
    w.set("i64", Value::i64(INT64_MIN));
    w.set("f64", Value::f64(-2.25));
    w.set("string.empty", Value::string(""));
    save("mw_scalars.gguf", w.to_bytes());
  }
  {
    Writer w(32);
    w.set("a.u8", array_raw(ValueType::U8, {1, 2, 3}));
    w.set("a.i8", array_raw(ValueType::I8, {0xff, 0x80}));
    w.set("a.u16", array_raw(ValueType::U16, {1, 0, 0xff, 0xff}));
    w.set("a.i16", array_raw(ValueType::I16, {0, 0x80}));
    w.set("a.u32", array_raw(ValueType::U32, {1, 0, 0, 0}));
    w.set("a.i32", Value::i32_array({-1, 7}));
    w.set("a.f32", Value::f32_array({0.25f, -8}));
    w.set("a.bool", array_raw(ValueType::BOOL, {0, 1, 1}));
    w.set("a.string", Value::string_array({"x", "", "yz"}));
    w.set("a.u64", array_raw(ValueType::U64, std::vector<uint8_t>(16, 0xff)));
    w.set("a.i64", array_raw(ValueType::I64, std::vector<uint8_t>(8, 0x80)));
    w.set("a.f64", array_raw(ValueType::F64, std::vector<uint8_t>(8, 0x3f)));
    w.set("a.empty", Value::i32_array({}));
    w.set("a.empty_strings", Value::string_array({}));
    save("mw_arrays.gguf", w.to_bytes());
  }
  {
    Writer w(32);
    Value inner =
        Value::array_of_arrays(ValueType::I32, {Value::i32_array({1, 2}), Value::i32_array({})});
    w.set("nested.ints", inner);
    w.set("nested.deep", Value::array_of_arrays(ValueType::ARRAY, {inner, inner}));
    w.set("nested.strings",
          Value::array_of_arrays(ValueType::STRING, {Value::string_array({"a", "bc"})}));
    w.set("nested.empty", Value::array_of_arrays(ValueType::F32, {}));
    save("mw_nested.gguf", w.to_bytes());
  }
  for (uint64_t align : {16u, 32u, 64u}) {
    Writer w(align);
    w.set("general.architecture", Value::string("llama"));
    add_tensor(w, "f32", TensorType::F32, {3});
    add_tensor(w, "f16", TensorType::F16, {2, 3});
    add_tensor(w, "bf16", TensorType::BF16, {1, 2, 2});
    add_tensor(w, "q4_0", TensorType::Q4_0, {32, 2});
    add_tensor(w, "q8_0", TensorType::Q8_0, {32, 1, 1, 2});
    add_tensor(w, "q4_k", TensorType::Q4_K, {256});
    add_tensor(w, "i32", TensorType::I32, {2});
    save("mw_tensors_align" + std::to_string(align) + ".gguf", w.to_bytes());
  }
  {
    Writer w = tiny_vocab();
    add_tensor(w, "token_embd.weight", TensorType::Q8_0, {32, 8});
    add_tensor(w, "output_norm.weight", TensorType::F32, {32});
    save("mw_model.gguf", w.to_bytes());
  }
}

}  // namespace
}  // namespace memwall::gguf
