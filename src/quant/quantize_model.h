// quantize_model: reads every tensor of a TensorSource, writes it in the type
// the recipe chooses, and measures what each tensor lost (relative RMS error
// of the written weights against the source's f32 values). The output GGUF is
// written one tensor at a time (see gguf::Writer's producers), so memory
// holds one tensor's output plus a few rows per thread, whatever the model.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "quant/quant_recipe.h"
#include "quant/tensor_source.h"

namespace memwall::quant {

struct TensorReport {
  size_t index = 0, count = 0;  // this is tensor index + 1 of count
  const SourceTensor* tensor = nullptr;
  TensorChoice choice;
  uint64_t bytes_out = 0;
  double rel_rms_error = 0;  // sqrt(sum (w' - w)^2 / sum w^2)
  bool weighted = false;     // quantized with calibration importance
  double seconds = 0;
};

struct TypeTotals {
  int tensors = 0;
  uint64_t elements = 0, bytes = 0;
};

struct QuantizeSummary {
  uint64_t bytes_in = 0;   // tensor bytes in the source
  uint64_t bytes_out = 0;  // tensor bytes written
  uint64_t file_bytes = 0;
  uint64_t elements = 0;
  std::map<TensorType, TypeTotals> by_type;
  double weighted_rel_error = 0;  // sqrt(sum err^2 / sum w^2) over all matrices
  double seconds = 0;
  double bits_per_weight() const { return elements ? 8.0 * double(bytes_out) / elements : 0; }
};

struct QuantizeOptions {
  std::function<void(const TensorReport&)> on_tensor;  // after each tensor is written
  // Importance per input column of a tensor (cols floats), or null: types
  // with an importance-weighted quantizer use it.
  std::function<const std::vector<float>*(const std::string& tensor)> importance;
  // Ternary types (TQ1_0, TQ2_0) scaled as BitNet b1.58 does: by the block's
  // mean |w|, with larger weights clipped to +-1 level, instead of llama.cpp's
  // absmax. Same layout; any engine reads the result.
  bool ternary_absmean = false;
};

QuantizeSummary quantize_model(const TensorSource& source, const QuantRecipe& recipe,
                               const std::string& out_path, ThreadPool& pool,
                               const QuantizeOptions& options = {});

}  // namespace memwall::quant
