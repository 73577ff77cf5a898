#include "common.h"

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include "base/error.h"

namespace memwall::tools {

namespace fs = std::filesystem;
constexpr const char* kDefaultModel = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

std::string default_model_path() {
  if (const char* env = std::getenv("MEMWALL_MODEL"); env && *env) return env;
  std::vector<fs::path> candidates = {fs::path(kDefaultModel)};
  // The binary lives in <repo>/build*/; look in <repo>/models too.
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / kDefaultModel);
  for (const auto& c : candidates) {
    if (fs::exists(c, ec)) return c.string();
  }
  fail("no model given and the default model ", kDefaultModel,
       " is missing: pass -m MODEL.gguf or run scripts/fetch-model");
}

std::vector<int32_t> parse_token_ids(const std::string& text) {
  std::istringstream in(text);
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < 0 || v > INT32_MAX) fail("'", word, "' is not a token id");
    ids.push_back(int32_t(v));
  }
  return ids;
}

std::string resolve_model_path(const std::string& given) {
  return given.empty() ? default_model_path() : given;
}

std::string read_text_file(const std::string& path, const std::string& flag) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail(flag, " '", path, "': no such file");
  if (fs::is_directory(st)) fail(flag, " '", path, "' is a directory, not a text file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(flag, " '", path, "': cannot open it");
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) fail(flag, " '", path, "': cannot read it");
  return text;
}

}  // namespace memwall::tools
