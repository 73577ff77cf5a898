// ActivationStats: what a calibration run learns about each matrix's input,
// per input column: the mean square (llama.cpp's importance matrix, which
// importance-aware quantizers weigh errors by) and the largest magnitude
// (SmoothQuant's migration strength). Matrices that read the same input
// (Q, K, V; gate, up) share one record.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/forward.h"

namespace memwall::quant {

class ActivationStats final : public ActivationObserver {
 public:
  void observe(const std::vector<std::string>& readers, const float* x, int64_t T,
               int64_t cols) override;

  // Mean x^2 per input column of tensor `name`, or null if no run fed it.
  const std::vector<float>* importance(const std::string& name) const;
  // Largest |x| per input column of tensor `name`, or null if no run fed it
  // (imatrix files do not carry it: only a --calib run has it).
  const std::vector<float>* max_abs(const std::string& name) const;
  int64_t tokens(const std::string& name) const;  // rows observed
  size_t tensors() const { return by_name_.size(); }

  // A GGUF of two tensors per matrix, as llama.cpp's GGUF imatrix files:
  // "<name>.in_sum2" (sum of x^2 per input column) and "<name>.counts" (rows
  // summed). Written atomically; load validates every entry.
  void save(const std::string& path) const;
  static ActivationStats load(const std::string& path);

 private:
  struct Record {
    std::vector<double> sum_sq;
    std::vector<float> max_abs;
    int64_t count = 0;
    std::vector<float> mean_sq;  // made on first importance() call after a change
    bool dirty = true;
  };
  std::map<std::string, std::shared_ptr<Record>> by_name_;
};

}  // namespace memwall::quant
