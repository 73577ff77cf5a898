// A loaded model: the mapped GGUF file, its spec and its bound weights.
#pragma once

#include <string>

#include "base/aligned_buffer.h"
#include "format/gguf_reader.h"
#include "model/model_spec.h"
#include "model/weights.h"

namespace memwall {

// What repacking the weights for the fast kernels did (weight_packing.h).
struct PackStats {
  int matrices = 0;      // matrices packed (a tied output head counts once)
  size_t bytes = 0;      // bytes of packed weights held
  double seconds = 0.0;  // wall time spent packing
};

struct Model {
  gguf::File file;  // owns the mapping the weights point into
  ModelSpec spec;
  ModelWeights weights;
  // Matrices repacked for the fast kernels (weight_packing.h); empty until packed.
  AlignedBuffer packed;
  PackStats pack_stats;

  static Model load(const std::string& path);
};

}  // namespace memwall
