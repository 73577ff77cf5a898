// quantize_tensor: one tensor of a TensorSource written in one type, on every
// thread of a pool, with the error of what was written measured on the way
// (the writer reports it; the bit-budget mixer ranks types by it).
#pragma once

#include <cmath>
#include <cstdint>

#include "base/thread_pool.h"
#include "format/tensor_type.h"
#include "quant/tensor_source.h"

namespace memwall::quant {

struct QuantError {
  double err2 = 0, ref2 = 0;    // sum (w' - w)^2, sum w^2
  double werr2 = 0, wref2 = 0;  // the same weighted by error_weights (= above without)
  double rel_rms() const { return ref2 > 0 ? std::sqrt(err2 / ref2) : 0; }
  // Relative squared error of the matrix's output on the calibration inputs
  // (diagonal approximation): E|(W'-W)x|^2 / E|Wx|^2.
  double rel_output_err2() const { return wref2 > 0 ? werr2 / wref2 : 0; }
};

struct TensorQuantOptions {
  // cols() floats: the per-column importance the type's weighted quantizer
  // uses (types without one ignore it), and the weights of the error measure.
  const float* importance = nullptr;
  const float* error_weights = nullptr;
  bool ternary_absmean = false;  // BitNet b1.58's scaling when the type is TQ1_0 / TQ2_0
};

// Quantizes tensor `index` of `source` as `type` into `out` (rows * row_bytes
// bytes) and measures what was lost.
QuantError quantize_tensor(const TensorSource& source, size_t index, TensorType type,
                           const TensorQuantOptions& options, uint8_t* out, ThreadPool& pool);

}  // namespace memwall::quant
