// Calibration: the model run over windows of a text, with an observer seeing
// every matrix input (memwall quantize --calib).
#pragma once

#include <cstdint>
#include <string>

#include "model/forward.h"

namespace memwall::tools {

struct CalibrationOptions {
  std::string model_path;  // a GGUF the engine runs
  std::string text_path;
  int64_t ctx = 512;    // tokens per window; each window starts from an empty cache
  int64_t chunks = 32;  // windows at most
  int threads = 0;
};

// Returns the number of tokens run. Throws Error on a missing or too short text.
int64_t run_calibration(const CalibrationOptions& options, ActivationObserver& observer);

}  // namespace memwall::tools
