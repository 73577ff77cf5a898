// GGUF writer -> reader round trips: every metadata value type, nested arrays,
// tensors of several types and shapes under several alignments, and the
// writer's own argument checks.
#include "format/gguf_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include "format/gguf_reader.h"
#include "gguf_test_util.h"

namespace memwall::gguf {
namespace {

using test::error_of;
using test::parse_bytes;

Value scalar_u(ValueType t, uint64_t v) {
  Value out;
  out.type = t;
  out.u = v;
  return out;
}

Value scalar_i(ValueType t, int64_t v) {
  Value out;
  out.type = t;
  out.i = v;
  return out;
}

// A numeric or bool array from values of the element's C++ type.
template <typename T>
Value array_of(ValueType elem, const std::vector<T>& items) {
  Value out;
  out.type = ValueType::ARRAY;
  out.element_type = elem;
  out.raw.resize(items.size() * sizeof(T));
  if (!items.empty()) std::memcpy(out.raw.data(), items.data(), out.raw.size());
  return out;
}

File round_trip(const Writer& w) {
  return parse_bytes(w.to_bytes());
}

// Deep equality of two values, reporting the first difference.
::testing::AssertionResult same_value(const Value& a, const Value& b) {
  if (a.type != b.type) return ::testing::AssertionFailure() << "type differs";
  switch (a.type) {
    case ValueType::STRING:
      if (a.s != b.s) return ::testing::AssertionFailure() << a.s << " != " << b.s;
      return ::testing::AssertionSuccess();
    case ValueType::F32:
    case ValueType::F64:
      if (std::memcmp(&a.f, &b.f, sizeof a.f) != 0 && !(std::isnan(a.f) && std::isnan(b.f))) {
        return ::testing::AssertionFailure() << a.f << " != " << b.f;
      }
      return ::testing::AssertionSuccess();
    case ValueType::I8:
    case ValueType::I16:
    case ValueType::I32:
    case ValueType::I64:
      if (a.i != b.i) return ::testing::AssertionFailure() << a.i << " != " << b.i;
      return ::testing::AssertionSuccess();
    case ValueType::ARRAY:
      if (a.element_type != b.element_type) {
        return ::testing::AssertionFailure() << "element type differs";
      }
      if (a.array_size() != b.array_size()) {
        return ::testing::AssertionFailure() << a.array_size() << " != " << b.array_size();
      }
      if (a.raw != b.raw || a.strings != b.strings) {
        return ::testing::AssertionFailure() << "elements differ";
      }
      for (size_t k = 0; k < a.arrays.size(); ++k) {
        auto r = same_value(a.arrays[k], b.arrays[k]);
        if (!r) return r << " (in nested element " << k << ")";
      }
      return ::testing::AssertionSuccess();
    default:
      if (a.u != b.u) return ::testing::AssertionFailure() << a.u << " != " << b.u;
      return ::testing::AssertionSuccess();
  }
}

TEST(GgufWriter, RoundTripsEveryScalarType) {
  std::vector<std::pair<std::string, Value>> cases = {
      {"u8.min", scalar_u(ValueType::U8, 0)},
      {"u8.max", scalar_u(ValueType::U8, 255)},
      {"i8.min", scalar_i(ValueType::I8, -128)},
      {"i8.max", scalar_i(ValueType::I8, 127)},
      {"u16.max", scalar_u(ValueType::U16, 65535)},
      {"i16.min", scalar_i(ValueType::I16, -32768)},
      {"i16.max", scalar_i(ValueType::I16, 32767)},
      {"u32.max", Value::u32(UINT32_MAX)},
      {"i32.min", Value::i32(INT32_MIN)},
      {"i32.neg", Value::i32(-7)},
      {"f32.pi", Value::f32(3.14159265f)},
      {"f32.tiny", Value::f32(std::numeric_limits<float>::denorm_min())},
      {"f32.inf", Value::f32(-std::numeric_limits<float>::infinity())},
      {"bool.true", Value::boolean(true)},
      {"bool.false", Value::boolean(false)},
      {"string", Value::string("héllo, \"wörld\"\n")},
      {"string.empty", Value::string("")},
      {"string.nul", Value::string(std::string("a\0b", 3))},
      {"u64.max", Value::u64(UINT64_MAX)},
      {"i64.min", Value::i64(INT64_MIN)},
      {"i64.max", Value::i64(INT64_MAX)},
      {"f64.e", Value::f64(2.718281828459045)},
      {"f64.max", Value::f64(std::numeric_limits<double>::max())},
  };
  Writer w(32);
  for (const auto& [k, v] : cases) w.set(k, v);
  File f = round_trip(w);
  ASSERT_EQ(f.metadata().size(), cases.size());  // alignment 32 writes no general.alignment
  for (size_t k = 0; k < cases.size(); ++k) {
    EXPECT_EQ(f.metadata()[k].first, cases[k].first);  // order is kept
    EXPECT_TRUE(same_value(f.metadata()[k].second, cases[k].second)) << cases[k].first;
  }
  EXPECT_EQ(f.get_int("u8.max"), 255);
  EXPECT_EQ(f.get_int("i8.min"), -128);
  EXPECT_EQ(f.get_int("i16.min"), -32768);
  EXPECT_EQ(f.get_int("u32.max"), UINT32_MAX);
  EXPECT_EQ(f.get_int("i64.min"), INT64_MIN);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("f32.pi")), 3.14159265f);
  EXPECT_DOUBLE_EQ(f.get_float("f64.e"), 2.718281828459045);
  EXPECT_TRUE(f.get_bool("bool.true", false));
  EXPECT_FALSE(f.get_bool("bool.false", true));
  EXPECT_EQ(f.get_string("string.nul"), std::string("a\0b", 3));
  EXPECT_EQ(f.find("u64.max")->u, UINT64_MAX);
  EXPECT_EQ(f.find("u64.max")->to_string(), "18446744073709551615");
}

TEST(GgufWriter, RoundTripsArraysOfEveryType) {
  Writer w;
  w.set("a.u8", array_of<uint8_t>(ValueType::U8, {0, 1, 255}));
  w.set("a.i8", array_of<int8_t>(ValueType::I8, {-128, 0, 127}));
  w.set("a.u16", array_of<uint16_t>(ValueType::U16, {0, 65535}));
  w.set("a.i16", array_of<int16_t>(ValueType::I16, {-32768, 32767}));
  w.set("a.u32", array_of<uint32_t>(ValueType::U32, {0, UINT32_MAX}));
  w.set("a.i32", Value::i32_array({-1, 0, 1, INT32_MAX}));
  w.set("a.f32", Value::f32_array({0.5f, -1.25f, 1e30f}));
  w.set("a.bool", array_of<uint8_t>(ValueType::BOOL, {1, 0, 1}));
  w.set("a.string", Value::string_array({"<s>", "", "▁the", std::string(300, 'x')}));
  w.set("a.u64", array_of<uint64_t>(ValueType::U64, {0, uint64_t(INT64_MAX), UINT64_MAX}));
  w.set("a.i64", array_of<int64_t>(ValueType::I64, {INT64_MIN, -1, INT64_MAX}));
  w.set("a.f64", array_of<double>(ValueType::F64, {1e-300, -0.0, 1e300}));
  for (ValueType t : {ValueType::U8, ValueType::I8, ValueType::U16, ValueType::I16, ValueType::U32,
                      ValueType::I32, ValueType::F32, ValueType::BOOL, ValueType::U64,
                      ValueType::I64, ValueType::F64}) {
    w.set("empty." + std::string(value_type_name(t)), array_of<uint8_t>(t, {}));
  }
  w.set("empty.string", Value::string_array({}));
  w.set("empty.array", Value::array_of_arrays(ValueType::U8, {}));

  std::vector<uint8_t> bytes = w.to_bytes();
  File f = parse_bytes(bytes);
  for (const auto& [key, value] : f.metadata()) {
    if (key == "general.alignment") continue;
    ASSERT_EQ(value.type, ValueType::ARRAY) << key;
  }
  EXPECT_EQ(f.get_ints("a.u8"), (std::vector<int64_t>{0, 1, 255}));
  EXPECT_EQ(f.get_ints("a.i8"), (std::vector<int64_t>{-128, 0, 127}));
  EXPECT_EQ(f.get_ints("a.u16"), (std::vector<int64_t>{0, 65535}));
  EXPECT_EQ(f.get_ints("a.i16"), (std::vector<int64_t>{-32768, 32767}));
  EXPECT_EQ(f.get_ints("a.u32"), (std::vector<int64_t>{0, UINT32_MAX}));
  EXPECT_EQ(f.get_ints("a.i32"), (std::vector<int64_t>{-1, 0, 1, INT32_MAX}));
  EXPECT_EQ(f.get_floats("a.f32"), (std::vector<float>{0.5f, -1.25f, 1e30f}));
  EXPECT_EQ(f.find("a.bool")->int_at(0), 1);
  EXPECT_EQ(f.find("a.bool")->int_at(1), 0);
  EXPECT_EQ(f.find("a.bool")->array_size(), 3u);
  EXPECT_EQ(f.get_strings("a.string"),
            (std::vector<std::string>{"<s>", "", "▁the", std::string(300, 'x')}));
  EXPECT_EQ(f.get_ints("a.i64"), (std::vector<int64_t>{INT64_MIN, -1, INT64_MAX}));
  EXPECT_EQ(f.find("a.u64")->float_at(2), 18446744073709551615.0);
  EXPECT_EQ(f.find("a.f64")->float_at(0), 1e-300);
  EXPECT_TRUE(std::signbit(f.find("a.f64")->float_at(1)));
  // u64 elements above INT64_MAX are refused as integers but still render.
  EXPECT_NE(error_of([&] { f.get_ints("a.u64"); }).find("out of range"), std::string::npos);
  EXPECT_EQ(f.find("a.u64")->to_string(), "[0, 9223372036854775807, 18446744073709551615]");
  for (const auto& [key, value] : f.metadata()) {
    if (key.rfind("empty.", 0) == 0) {
      EXPECT_EQ(value.array_size(), 0u) << key;
      EXPECT_EQ(value.to_string(), "[]") << key;
    }
  }
  EXPECT_EQ(f.find("empty.string")->element_type, ValueType::STRING);
  EXPECT_EQ(f.find("empty.array")->element_type, ValueType::ARRAY);
  EXPECT_TRUE(f.get_strings("empty.string").empty());
  EXPECT_TRUE(f.get_floats("empty.f64").empty());
  // Writing what was read gives the same bytes.
  Writer again;
  for (const auto& [key, value] : f.metadata()) again.set(key, value);
  EXPECT_EQ(again.to_bytes(), bytes);
}

TEST(GgufWriter, RoundTripsNestedArrays) {
  Value ints = Value::array_of_arrays(
      ValueType::I32, {Value::i32_array({1, 2}), Value::i32_array({}), Value::i32_array({3})});
  Value strs = Value::array_of_arrays(ValueType::STRING,
                                      {Value::string_array({"a", ""}), Value::string_array({})});
  // Three levels: [[[1.5], []], []].
  Value inner =
      Value::array_of_arrays(ValueType::F32, {Value::f32_array({1.5f}), Value::f32_array({})});
  Value deep =
      Value::array_of_arrays(ValueType::ARRAY, {inner, Value::array_of_arrays(ValueType::F32, {})});
  Writer w;
  w.set("nested.ints", ints);
  w.set("nested.strings", strs);
  w.set("nested.deep", deep);
  w.set("nested.empty_inner",
        Value::array_of_arrays(ValueType::U8, {array_of<uint8_t>(ValueType::U8, {})}));
  File f = round_trip(w);
  EXPECT_TRUE(same_value(*f.find("nested.ints"), ints));
  EXPECT_TRUE(same_value(*f.find("nested.strings"), strs));
  EXPECT_TRUE(same_value(*f.find("nested.deep"), deep));
  EXPECT_EQ(f.find("nested.empty_inner")->arrays.at(0).array_size(), 0u);
  EXPECT_EQ(f.find("nested.ints")->to_string(), "[[1, 2], [], [3]]");
  EXPECT_EQ(f.find("nested.strings")->to_string(), "[[\"a\", \"\"], []]");
  EXPECT_EQ(f.find("nested.deep")->to_string(), "[[[1.5], []], []]");
  // A nested array is not a flat array of anything.
  EXPECT_NE(error_of([&] { f.get_ints("nested.ints"); }).find("expected an array of integers"),
            std::string::npos);
}

TEST(GgufWriter, ArrayOfArraysRefusesMixedInnerTypes) {
  std::string msg = error_of([] {
    Value::array_of_arrays(ValueType::I32, {Value::i32_array({1}), Value::f32_array({1})});
  });
  EXPECT_NE(msg.find("must all be arrays of i32"), std::string::npos) << msg;
  msg = error_of([] { Value::array_of_arrays(ValueType::I32, {Value::i32(1)}); });
  EXPECT_NE(msg.find("must all be arrays of i32"), std::string::npos) << msg;
}

TEST(GgufWriter, SetReplacesAnExistingKey) {
  Writer w;
  w.set("k", Value::u32(1));
  w.set("other", Value::u32(2));
  w.set("k", Value::string("two"));
  File f = round_trip(w);
  ASSERT_EQ(f.metadata().size(), 3u);  // general.alignment, k, other
  EXPECT_EQ(f.metadata()[1].first, "k");
  EXPECT_EQ(f.get_string("k"), "two");
}

TEST(GgufWriter, WritesTheHeaderAndDefaultAlignment) {
  Writer w;  // 64 by default, recorded in general.alignment
  std::vector<uint8_t> b = w.to_bytes();
  ASSERT_GE(b.size(), test::kHeaderBytes);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "GGUF");
  uint32_t version;
  std::memcpy(&version, &b[test::kVersionAt], 4);
  EXPECT_EQ(version, 3u);
  File f = parse_bytes(b);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.find("general.alignment")->type, ValueType::U32);
  EXPECT_EQ(f.get_int("general.alignment"), 64);
  EXPECT_TRUE(f.tensors().empty());

  Writer w32(32);  // GGUF's default: no key needed
  File f32 = round_trip(w32);
  EXPECT_EQ(f32.alignment(), 32u);
  EXPECT_EQ(f32.find("general.alignment"), nullptr);
  EXPECT_EQ(w32.to_bytes().size(), 32u);  // the header, padded to the alignment
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  std::mt19937 rng(seed);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

struct TensorCase {
  std::string name;
  TensorType type;
  std::vector<uint64_t> dims;
};

const std::vector<TensorCase> kTensorCases = {
    {"f32.vec", TensorType::F32, {7}},        {"f16.mat", TensorType::F16, {3, 5}},
    {"bf16.3d", TensorType::BF16, {2, 3, 4}}, {"q4_0.mat", TensorType::Q4_0, {64, 3}},
    {"q4_1.mat", TensorType::Q4_1, {32, 2}},  {"q8_0.4d", TensorType::Q8_0, {32, 2, 1, 3}},
    {"q4_k.mat", TensorType::Q4_K, {256, 2}}, {"q6_k.vec", TensorType::Q6_K, {512}},
    {"i8.vec", TensorType::I8, {1}},          {"i32.mat", TensorType::I32, {1, 9}},
    {"f64.vec", TensorType::F64, {3}},        {"mxfp4.vec", TensorType::MXFP4, {32}},
};

class GgufWriterAlignment : public ::testing::TestWithParam<uint64_t> {};

TEST_P(GgufWriterAlignment, TensorsRoundTripWithDataInPlace) {
  const uint64_t align = GetParam();
  Writer w(align);
  w.set("general.architecture", Value::string("test"));
  std::vector<std::vector<uint8_t>> datas;
  for (size_t k = 0; k < kTensorCases.size(); ++k) {
    const TensorCase& c = kTensorCases[k];
    uint64_t n = 1;
    for (uint64_t d : c.dims) n *= d;
    const TensorTypeInfo& info = tensor_type_info(c.type);
    datas.push_back(pattern(n / info.block_elements * info.block_bytes, uint32_t(k)));
    w.add_tensor(c.name, c.type, c.dims, datas.back());
  }
  std::vector<uint8_t> bytes = w.to_bytes();
  File f = parse_bytes(bytes);
  EXPECT_EQ(f.alignment(), align);
  EXPECT_EQ(f.data_offset() % align, 0u);
  ASSERT_EQ(f.tensors().size(), kTensorCases.size());
  uint64_t expected_offset = 0;
  for (size_t k = 0; k < kTensorCases.size(); ++k) {
    const TensorCase& c = kTensorCases[k];
    const TensorInfo& t = f.tensors()[k];
    SCOPED_TRACE(c.name);
    EXPECT_EQ(&f.tensor(c.name), &t);
    EXPECT_EQ(t.name, c.name);
    EXPECT_EQ(t.type, c.type);
    ASSERT_EQ(t.n_dims, c.dims.size());
    for (size_t d = 0; d < 4; ++d) EXPECT_EQ(t.ne[d], d < c.dims.size() ? c.dims[d] : 1u);
    EXPECT_EQ(t.n_bytes, datas[k].size());
    EXPECT_EQ(t.offset % align, 0u);
    expected_offset = (expected_offset + align - 1) / align * align;  // packed, in order
    EXPECT_EQ(t.offset, expected_offset);
    expected_offset += t.n_bytes;
    EXPECT_EQ(t.data, bytes.data() + f.data_offset() + t.offset);
    EXPECT_EQ(std::memcmp(t.data, datas[k].data(), datas[k].size()), 0);
    EXPECT_EQ(t.rows() * c.dims[0], t.n_elements);
  }
  EXPECT_EQ(f.tensor("q8_0.4d").shape_string(), "[32, 2, 1, 3]");
  EXPECT_EQ(f.tensor("q8_0.4d").n_elements, 192u);
  EXPECT_EQ(f.tensor("q8_0.4d").rows(), 6u);
  EXPECT_EQ(f.find_tensor("missing"), nullptr);
  EXPECT_NE(error_of([&] { f.tensor("missing"); }).find("tensor 'missing' is missing"),
            std::string::npos);
  // The file ends right after the last tensor's bytes.
  EXPECT_EQ(bytes.size(), f.data_offset() + expected_offset);
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufWriterAlignment, ::testing::Values(32, 64, 8, 128, 4096),
                         [](const auto& info) { return "align" + std::to_string(info.param); });

TEST(GgufWriter, RefusesBadArguments) {
  EXPECT_NE(error_of([] { Writer w(0); }).find("is not a power of two"), std::string::npos);
  EXPECT_NE(error_of([] { Writer w(48); }).find("48 is not a power of two"), std::string::npos);
  Writer w;
  std::vector<uint8_t> four(4);
  EXPECT_NE(
      error_of([&] { w.add_tensor("t", TensorType::F32, {}, four); }).find("has 0 dimensions"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              w.add_tensor("t", TensorType::F32, {1, 1, 1, 1, 1}, four);
            }).find("has 5 dimensions"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              w.add_tensor("t", TensorType::Q4_0, {16}, four);
            }).find("not a multiple of q4_0's block size 32"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              w.add_tensor("t", TensorType::F32, {2}, four);
            }).find("needs 8 bytes of f32 data, got 4"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              w.add_tensor("t", TensorType::F32, {1, 0}, {});
            }).find("dimension"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              w.add_tensor("t", TensorType::I8, {1ull << 32, 1ull << 32}, {});
            }).find("overflows"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              w.add_tensor("t", TensorType::F64, {1ull << 61, 2}, {});
            }).find("size in bytes overflows"),
            std::string::npos);
  w.add_tensor("t", TensorType::F32, {1}, four);
  EXPECT_NE(error_of([&] {
              w.add_tensor("t", TensorType::F32, {1}, four);
            }).find("tensor 't' was added twice"),
            std::string::npos);
  // The failed calls added nothing.
  EXPECT_EQ(round_trip(w).tensors().size(), 1u);
}

TEST(GgufWriter, WritesAFileAtomically) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("memwall_writer_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string path = (dir / "out.gguf").string();
  Writer w;
  w.set("general.name", Value::string("tiny"));
  w.add_tensor("w", TensorType::F32, {2, 2}, pattern(16, 1));
  w.write(path);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  File f = File::open(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.file_size(), fs::file_size(path));
  EXPECT_EQ(f.get_string("general.name"), "tiny");
  EXPECT_EQ(std::memcmp(f.tensor("w").data, pattern(16, 1).data(), 16), 0);
  // Same bytes as to_bytes().
  std::vector<uint8_t> bytes = w.to_bytes();
  EXPECT_EQ(std::vector<uint8_t>(f.tensor("w").data - f.data_offset() - f.tensor("w").offset,
                                 f.tensor("w").data + 16),
            bytes);

  std::string bad = (dir / "no_such_dir" / "out.gguf").string();
  EXPECT_NE(error_of([&] { w.write(bad); }).find("cannot create"), std::string::npos);
  EXPECT_FALSE(fs::exists(bad + ".tmp"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace memwall::gguf
