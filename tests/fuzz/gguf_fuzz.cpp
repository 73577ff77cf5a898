// libFuzzer target for the GGUF reader: any input must parse or be refused
// with a one-line memwall::Error; see gguf_fuzz_body.h for the properties.
// Run with scripts/run-fuzz.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gguf_fuzz_body.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A private copy with no slack after it, so ASan sees any read past the end.
  std::vector<uint8_t> bytes(data, data + size);
  std::string violation = memwall::gguf::fuzz::exercise(bytes.data(), bytes.size());
  if (!violation.empty()) {
    std::fprintf(stderr, "gguf_fuzz: property violated: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
