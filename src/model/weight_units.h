// The weights of a model as the units a WeightStore holds or streams, in the
// order a forward pass reads them: one unit per layer (its seven matrices),
// then the output head in row parts no larger than a layer (the head of a
// 1B model with a 128k vocabulary is four layers' worth of bytes, and a
// streaming ring holds whole units). Both the planner (sizes) and the
// weight store (what to read where) work from this one description.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "model/weights.h"

namespace memwall {

// One matrix, or a range of rows of one (the output head's parts).
struct UnitMatrix {
  const kernels::MatrixView* source;  // the file's view
  int64_t first_row = 0, rows = 0;    // first_row is a multiple of 16
  bool packed = false;                // held repacked for the packed kernels
  size_t offset = 0;                  // where it starts in its unit's buffer (64-aligned)
  size_t bytes = 0;                   // bytes held: packed or GGUF rows
  size_t file_bytes() const { return size_t(rows) * source->row_bytes; }
};

struct WeightUnit {
  int64_t layer = -1;                // layer index, or -1 for an output-head part
  std::vector<UnitMatrix> matrices;  // layers: wq, wk, wv, wo, w_gate, w_up, w_down
  size_t bytes = 0;                  // sum of matrices' bytes with alignment
};

struct WeightUnits {
  std::vector<WeightUnit> units;
  size_t total_bytes = 0;     // all units
  size_t max_unit_bytes = 0;  // the largest unit: a streaming slot
  int64_t n_layer = 0;
  int64_t output_parts() const { return int64_t(units.size()) - n_layer; }
};

// The precision that will actually run: kFast when no matrix of the model
// has a SIMD kernel for it on `isa` (q4_0/q4_1/q8_0's 16-bit ones need
// AVX-512 VNNI) runs kExact; `note` then says so.
kernels::Precision effective_precision(kernels::Precision requested, kernels::Isa isa,
                                       const ModelWeights& w, std::string* note = nullptr);

// The quantized forms of their inputs the model's matrices (layers' and the
// output head) read under `precision`: sizes MatmulInput's buffers.
kernels::InputForms input_forms(const ModelWeights& w, kernels::Precision precision);

// Whether a matrix is repacked for `precision` on `isa` (only when a packed
// kernel exists for its format and the precision's activations).
bool uses_packed(const kernels::MatrixView& m, kernels::Precision precision, kernels::Isa isa);

// `packed`: repack where uses_packed says so (resident and streamed weights);
// false: GGUF rows as in the file (memory-mapped weights).
WeightUnits weight_units(const ModelWeights& w, kernels::Precision precision, kernels::Isa isa,
                         bool packed);

}  // namespace memwall
