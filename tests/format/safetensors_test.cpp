// safetensors reader: a valid file, each kind of corruption refused with a
// message naming the file and tensor, and random corruptions that must end in
// either a valid parse or memwall::Error, never a crash or another exception.
#include "format/safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "format/hf_model.h"

namespace memwall::safetensors {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes file_from(const std::string& header, const Bytes& data) {
  Bytes out(8 + header.size() + data.size());
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(n >> (8 * i));
  std::copy(header.begin(), header.end(), out.begin() + 8);
  std::copy(data.begin(), data.end(), out.begin() + 8 + long(header.size()));
  return out;
}

// Three tensors of the three float dtypes, in a data section of 40 bytes.
const std::string kHeader = R"({"__metadata__":{"format":"pt"},)"
                            R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                            R"("b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},)"
                            R"("c":{"dtype":"BF16","shape":[2,2],"data_offsets":[32,40]}})";

Bytes valid_file() {
  Bytes data(40);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7 + 1);
  float a[6] = {1, 2, 3, 4, 5, 6};
  std::memcpy(data.data(), a, sizeof a);
  return file_from(kHeader, data);
}

std::string error_of(const Bytes& file) {
  try {
    parse(file.data(), file.size(), "m.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string with_header(const std::string& header, size_t data_bytes = 40) {
  return error_of(file_from(header, Bytes(data_bytes)));
}

TEST(Safetensors, ParsesAValidFile) {
  const Bytes f = valid_file();
  const std::vector<TensorInfo> t = parse(f.data(), f.size(), "m.safetensors");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].name, "a");
  EXPECT_EQ(t[0].dtype, DType::F32);
  EXPECT_EQ(t[0].shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(t[0].elements(), 6u);
  float x;
  std::memcpy(&x, t[0].data + 4 * 5, 4);
  EXPECT_EQ(x, 6.0f);
  EXPECT_EQ(t[1].name, "b");
  EXPECT_EQ(t[1].bytes(), 8u);
  EXPECT_EQ(t[2].dtype, DType::BF16);
  EXPECT_EQ(t[2].data, f.data() + 8 + kHeader.size() + 32);
}

TEST(Safetensors, OpensAFileFromDisk) {
  const auto path = std::filesystem::temp_directory_path() / "memwall_safetensors_test.safetensors";
  const Bytes f = valid_file();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(f.data()), f.size());
  const File file = File::open(path.string());
  ASSERT_NE(file.find("c"), nullptr);
  EXPECT_EQ(file.find("c")->shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(file.find("zzz"), nullptr);
  std::filesystem::remove(path);
}

TEST(Safetensors, RefusesEachKindOfCorruption) {
  EXPECT_NE(error_of(Bytes{1, 2, 3}).find("shorter than the 8-byte header"), std::string::npos);
  Bytes long_header = valid_file();
  long_header[0] = 0xff;
  long_header[3] = 0x7f;
  EXPECT_NE(error_of(long_header).find("runs past the end"), std::string::npos);
  EXPECT_NE(with_header("[1,2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(with_header(R"({"a":{"dtype":"F32")").find("not valid JSON"), std::string::npos);
  EXPECT_NE(with_header(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})")
                .find("tensor 'a': unknown dtype 'Q4'"),
            std::string::npos);
  EXPECT_NE(with_header(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})")
                .find("needs 24 bytes"),
            std::string::npos);
  EXPECT_NE(with_header(R"({"a":{"dtype":"F32","shape":[20],"data_offsets":[0,80]}})")
                .find("run past the data section"),
            std::string::npos);
  EXPECT_NE(with_header(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})")
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})")
                .find("tensor 'a' appears twice"),
            std::string::npos);
  EXPECT_NE(with_header(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],)"
                        R"("data_offsets":[0,0]}})")
                .find("overflows"),
            std::string::npos);
  EXPECT_NE(
      with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})").find("not a size"),
      std::string::npos);
  EXPECT_NE(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})")
                .find("end before begin"),
            std::string::npos);
  EXPECT_NE(with_header(R"({"a":{"dtype":"F32","shape":[1]}})").find("'data_offsets'"),
            std::string::npos);
  EXPECT_NE(with_header(R"({"a":7})").find("tensor 'a': header entry"), std::string::npos);
  // Every message names the file.
  EXPECT_EQ(with_header("[]").rfind("m.safetensors", 0), 0u);
}

TEST(Safetensors, ZeroSizedTensorsAreValid) {
  const Bytes f = file_from(R"({"e":{"dtype":"F16","shape":[0,5],"data_offsets":[0,0]}})", {});
  const auto t = parse(f.data(), f.size(), "m.safetensors");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].bytes(), 0u);
}

// Checks what parse promises of a file it accepted.
void expect_consistent(const std::vector<TensorInfo>& tensors, const Bytes& f) {
  const uint8_t* end = f.data() + f.size();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = tensors[i];
    ASSERT_LE(t.data + t.bytes(), end);
    ASSERT_GE(t.data, f.data() + 8);
    ASSERT_EQ(t.bytes(), t.elements() * dtype_size(t.dtype));
    if (i > 0) {
      ASSERT_GE(t.begin, tensors[i - 1].end);
    }
  }
}

// Random corruptions never crash and never throw anything but Error.
TEST(Safetensors, RandomCorruptionsThrowErrorOrParseConsistently) {
  const Bytes good = valid_file();
  const size_t header_end = 8 + kHeader.size();
  std::mt19937_64 rng(20240611);
  const std::string pieces[] = {"{",
                                "}",
                                "[",
                                "]",
                                ",",
                                ":",
                                "\"",
                                "0",
                                "-1",
                                "1e400",
                                "18446744073709551615",
                                "\"F16\"",
                                "\"shape\"",
                                "null",
                                "\"data_offsets\"",
                                "\\u0000",
                                "\xff",
                                "99999999999"};
  int errors = 0, parsed = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Bytes f = good;
    const int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 6) {
        case 0:  // flip a byte, mostly in the header
          if (!f.empty()) f[rng() % std::min(f.size(), header_end + 8)] ^= uint8_t(1 + rng() % 255);
          break;
        case 1:  // truncate
          f.resize(rng() % (f.size() + 1));
          break;
        case 2: {  // splice a JSON piece into the header
          if (f.size() <= 8) break;
          const std::string& p = pieces[rng() % std::size(pieces)];
          const size_t at = 8 + rng() % (f.size() - 8);
          f.insert(f.begin() + long(at), p.begin(), p.end());
          break;
        }
        case 3: {  // delete a run of bytes
          if (f.size() <= 8) break;
          const size_t at = 8 + rng() % (f.size() - 8);
          f.erase(f.begin() + long(at), f.begin() + long(std::min(f.size(), at + 1 + rng() % 6)));
          break;
        }
        case 4:  // a new header length
          if (f.size() >= 8) {
            const uint64_t n = rng() % 3 == 0 ? rng() : rng() % (f.size() + 16);
            for (int i = 0; i < 8; ++i) f[size_t(i)] = uint8_t(n >> (8 * i));
          }
          break;
        default:  // change a digit of an offset or shape
          for (size_t i = 8; i < std::min(f.size(), header_end); ++i) {
            if (f[i] >= '0' && f[i] <= '9' && rng() % 8 == 0) {
              f[i] = uint8_t('0' + rng() % 10);
              break;
            }
          }
      }
    }
    try {
      const auto t = parse(f.data(), f.size(), "fuzz.safetensors");
      expect_consistent(t, f);
      ++parsed;
    } catch (const Error& e) {
      ASSERT_EQ(std::string(e.what()).rfind("fuzz.safetensors", 0), 0u) << e.what();
      ++errors;
    } catch (const std::exception& e) {
      FAIL() << "not a memwall::Error: " << e.what();
    }
  }
  EXPECT_GT(errors, 10000);  // most corruptions are refused
  EXPECT_GT(parsed, 0);      // and some (a renamed tensor, a flipped data byte) are still valid
}

// A file cut anywhere is refused: the last tensor ends at the end of the file.
TEST(Safetensors, EveryTruncationIsAnError) {
  const Bytes good = valid_file();
  for (size_t n = 0; n < good.size(); ++n) {
    const Bytes cut(good.begin(), good.begin() + long(n));
    EXPECT_FALSE(error_of(cut).empty()) << n;
  }
}

// GGUF row h*D + 2j + s holds HF row h*D + s*D/2 + j (llama.cpp pairs adjacent
// RoPE elements, HF rotates halves), per head.
TEST(HfModel, QkRowPermutationMatchesTheConverter) {
  hf::ModelTensor t;
  t.dims = {5, 12};  // 12 rows: 2 heads of D = 6
  t.permute_heads = 2;
  const std::vector<uint64_t> want = {0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11};
  for (uint64_t r = 0; r < 12; ++r) EXPECT_EQ(t.source_row(r), want[r]) << r;
  t.permute_heads = 0;
  for (uint64_t r = 0; r < 12; ++r) EXPECT_EQ(t.source_row(r), r);
}

}  // namespace
}  // namespace memwall::safetensors
