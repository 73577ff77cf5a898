#include "quant/quantize_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <vector>

#include "base/error.h"
#include "format/gguf_writer.h"
#include "kernels/weight_format.h"

namespace memwall::quant {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct RowError {
  double err2 = 0, ref2 = 0;
};

// Quantizes tensor `index` into `out` on every thread, a few rows at a time,
// and measures the error of what was written. importance: cols floats, or null.
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

RowError quantize_tensor(const TensorSource& source, size_t index, TensorType type,
                         const float* importance, bool absmean, uint8_t* out, ThreadPool& pool) {
  const SourceTensor& t = source.tensors()[index];
  const kernels::WeightCodec& codec = kernels::codec_for(type, t.name);
  const uint64_t cols = t.cols(), rows = t.rows(), stride = row_bytes(type, cols);
  constexpr uint64_t kChunkRows = 16;
  std::vector<RowError> errors(size_t(pool.size()));
  std::vector<std::exception_ptr> failures(size_t(pool.size()));
  pool.parallel_for(
      int64_t(rows),
      [&](int64_t begin, int64_t end, int thread) {
        try {
          std::vector<float> src(kChunkRows * cols), back(cols), clipped;
          RowError& e = errors[size_t(thread)];
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
                const double d = double(back[c]) - x[c];
                e.err2 += d * d;
                e.ref2 += double(x[c]) * x[c];
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
  RowError total;
  for (const RowError& e : errors) {
    total.err2 += e.err2;
    total.ref2 += e.ref2;
  }
  return total;
}

}  // namespace

QuantizeSummary quantize_model(const TensorSource& source, const QuantRecipe& recipe,
                               const std::string& out_path, ThreadPool& pool,
                               const QuantizeOptions& options) {
  const Clock::time_point start = Clock::now();
  QuantizeSummary summary;
  summary.bytes_in = source.tensor_bytes();
  gguf::Writer writer;
  for (const auto& [key, value] : source.metadata()) writer.set(key, value);
  writer.set("general.quantization_version", gguf::Value::u32(2));
  const int file_type = llama_file_type(recipe.target());
  if (file_type >= 0) writer.set("general.file_type", gguf::Value::u32(uint32_t(file_type)));
  writer.set("memwall.quantize.recipe", gguf::Value::string(recipe.describe()));

  const std::vector<SourceTensor>& tensors = source.tensors();
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SourceTensor& t = tensors[i];
    const TensorChoice choice = recipe.choose(t);
    const uint64_t bytes = row_bytes(choice.type, t.cols()) * t.rows();
    summary.bytes_out += bytes;
    summary.elements += t.elements();
    TypeTotals& totals = summary.by_type[choice.type];
    totals.tensors += 1;
    totals.elements += t.elements();
    totals.bytes += bytes;
    writer.add_lazy_tensor(t.name, choice.type, t.dims, [&, i, choice, bytes] {
      const Clock::time_point t0 = Clock::now();
      std::vector<uint8_t> out(bytes);
      const std::vector<float>* imp =
          options.importance ? options.importance(tensors[i].name) : nullptr;
      const kernels::WeightCodec& codec = kernels::codec_for(choice.type, tensors[i].name);
      const bool weighted = imp != nullptr && codec.quantize_row_weighted != nullptr;
      if (weighted && imp->size() != tensors[i].cols()) {
        fail("calibration importance of '", tensors[i].name, "' has ", imp->size(),
             " columns, the tensor ", tensors[i].cols());
      }
      const bool absmean = options.ternary_absmean &&
                           (choice.type == TensorType::TQ1_0 || choice.type == TensorType::TQ2_0);
      const RowError e = quantize_tensor(source, i, choice.type, weighted ? imp->data() : nullptr,
                                         absmean, out.data(), pool);
      if (tensors[i].dims.size() >= 2) {
        err2 += e.err2;
        ref2 += e.ref2;
      }
      if (options.on_tensor) {
        TensorReport r;
        r.index = i;
        r.count = tensors.size();
        r.tensor = &tensors[i];
        r.choice = choice;
        r.bytes_out = bytes;
        r.weighted = weighted;
        r.rel_rms_error = e.ref2 > 0 ? std::sqrt(e.err2 / e.ref2) : 0;
        r.seconds = seconds_since(t0);
        options.on_tensor(r);
      }
      return out;
    });
  }
  writer.write(out_path);
  summary.weighted_rel_error = ref2 > 0 ? std::sqrt(err2 / ref2) : 0;
  summary.file_bytes = std::filesystem::file_size(out_path);
  summary.seconds = seconds_since(start);
  return summary;
}

}  // namespace memwall::quant
