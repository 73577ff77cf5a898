// A loaded model: the mapped GGUF file, its spec and its bound weights (views
// into the file, untouched until a WeightStore reads them).
#pragma once

#include <string>

#include "format/gguf_reader.h"
#include "model/model_spec.h"
#include "model/weights.h"

namespace memwall {

struct Model {
  gguf::File file;  // owns the mapping the weights point into
  ModelSpec spec;
  ModelWeights weights;  // views into the file; a WeightStore holds what runs

  static Model load(const std::string& path);
};

}  // namespace memwall
