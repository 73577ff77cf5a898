#include "quant/quantize_model.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <vector>

#include "base/error.h"
#include "format/gguf_writer.h"
#include "kernels/weight_format.h"
#include "quant/quantize_tensor.h"

namespace memwall::quant {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
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
      TensorQuantOptions o;
      o.importance = weighted ? imp->data() : nullptr;
      o.ternary_absmean = options.ternary_absmean;
      const QuantError e = quantize_tensor(source, i, choice.type, o, out.data(), pool);
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
        r.rel_rms_error = e.rel_rms();
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
