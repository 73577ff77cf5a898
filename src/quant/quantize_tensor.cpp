#include "quant/quantize_tensor.h"

#include <algorithm>
#include <exception>
#include <vector>

#include "kernels/weight_format.h"

namespace memwall::quant {
namespace {

// BitNet b1.58's absmean ternary scaling through the absmax quantizer: each
// 256-weight block clipped to +-mean|w| has absmax mean|w|, so the reference
// TQ quantizer then stores d = mean|w| and q = round(clip(w / d, -1, 1)).
void clip_to_absmean(float* x, uint64_t n) {
  constexpr uint64_t kBlock = 256;
  for (uint64_t b = 0; b + kBlock <= n; b += kBlock) {
    double sum = 0;
    for (uint64_t i = b; i < b + kBlock; ++i) sum += std::fabs(x[i]);
    const float g = float(sum / kBlock);
    for (uint64_t i = b; i < b + kBlock; ++i) x[i] = std::clamp(x[i], -g, g);
  }
}

}  // namespace

QuantError quantize_tensor(const TensorSource& source, size_t index, TensorType type,
                           const TensorQuantOptions& options, uint8_t* out, ThreadPool& pool) {
  const SourceTensor& t = source.tensors()[index];
  const kernels::WeightCodec& codec = kernels::codec_for(type, t.name);
  const uint64_t cols = t.cols(), rows = t.rows(), stride = row_bytes(type, cols);
  const float* importance = codec.quantize_row_weighted ? options.importance : nullptr;
  const float* error_weights = options.error_weights;
  const bool absmean =
      options.ternary_absmean && (type == TensorType::TQ1_0 || type == TensorType::TQ2_0);
  constexpr uint64_t kChunkRows = 16;
  std::vector<QuantError> errors(size_t(pool.size()));
  std::vector<std::exception_ptr> failures(size_t(pool.size()));
  pool.parallel_for(
      int64_t(rows),
      [&](int64_t begin, int64_t end, int thread) {
        try {
          std::vector<float> src(kChunkRows * cols), back(cols), clipped;
          QuantError& e = errors[size_t(thread)];
          for (uint64_t r0 = uint64_t(begin); r0 < uint64_t(end); r0 += kChunkRows) {
            const uint64_t r1 = std::min<uint64_t>(r0 + kChunkRows, uint64_t(end));
            source.read_rows(index, r0, r1, src.data());
            for (uint64_t r = r0; r < r1; ++r) {
              const float* x = src.data() + (r - r0) * cols;
              uint8_t* q = out + r * stride;
              if (absmean) {
                clipped.assign(x, x + cols);
                clip_to_absmean(clipped.data(), cols);
                codec.quantize_row(clipped.data(), q, int64_t(cols));
              } else if (importance) {
                codec.quantize_row_weighted(x, q, int64_t(cols), importance);
              } else {
                codec.quantize_row(x, q, int64_t(cols));
              }
              codec.dequantize_row(q, back.data(), int64_t(cols));
              for (uint64_t c = 0; c < cols; ++c) {
                const double d = double(back[c]) - x[c], d2 = d * d, x2 = double(x[c]) * x[c];
                const double w = error_weights ? double(error_weights[c]) : 1.0;
                e.err2 += d2;
                e.ref2 += x2;
                e.werr2 += w * d2;
                e.wref2 += w * x2;
              }
            }
          }
        } catch (...) {
          failures[size_t(thread)] = std::current_exception();
        }
      },
      int64_t(kChunkRows));
  for (auto& f : failures) {
    if (f) std::rethrow_exception(f);
  }
  QuantError total;
  for (const QuantError& e : errors) {
    total.err2 += e.err2;
    total.ref2 += e.ref2;
    total.werr2 += e.werr2;
    total.wref2 += e.wref2;
  }
  return total;
}

}  // namespace memwall::quant
