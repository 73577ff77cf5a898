#include "common.h"

#include <cstdlib>
#include <filesystem>
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

std::string resolve_model_path(const std::string& given) {
  return given.empty() ? default_model_path() : given;
}

}  // namespace memwall::tools
