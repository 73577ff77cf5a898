// SmoothedSource: a llama-layout model with SmoothQuant's migration folded
// into its weights (Xiao et al. 2022, arXiv:2211.10438). Per-token int8
// activations lose their small channels to a few outlier channels; the
// migration divides each input channel j of a matrix group by
//   s_j = max|X_j|^alpha / max|W_.j|^(1 - alpha)
// and multiplies the matrices' column j by s_j, so the product is unchanged
// and activations and weights share the range. 1/s_j is folded into what
// produced the input, so the engine runs no extra operation:
//   Q, K, V        <- attn_norm  (its weight g_j / s_j)
//   gate, up       <- ffn_norm
//   attn_output    <- attn_v's rows (attention mixes V's rows linearly; with
//                     grouped-query attention one s per (KV head, dim), the
//                     channels of the query heads sharing a KV head max'ed)
//   ffn_down       <- ffn_up's rows (silu(gate) * up is linear in up)
//   output         <- output_norm (untied models only: a tied output head
//                     is also the embedding table, and is left alone)
// X's maxima come from a calibration run of the unsmoothed model.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "quant/activation_stats.h"
#include "quant/tensor_source.h"

namespace memwall::quant {

class SmoothedSource final : public TensorSource {
 public:
  // alpha in (0, 1]: the share of the activations' range moved into the
  // weights. Throws Error when the model is not llama-layout or a matrix has
  // no calibration maxima.
  SmoothedSource(const TensorSource& base, const ActivationStats& stats, float alpha);

  const std::string& path() const override { return base_.path(); }
  const std::vector<std::pair<std::string, gguf::Value>>& metadata() const override {
    return metadata_;
  }
  const std::vector<SourceTensor>& tensors() const override { return base_.tensors(); }
  void read_rows(size_t index, uint64_t r0, uint64_t r1, float* dst) const override;
  uint64_t tensor_bytes() const override { return base_.tensor_bytes(); }

  // The calibration importance (mean x^2) of the smoothed input of `tensor`:
  // the original's divided by s_j^2. Null when the stats have none.
  const std::vector<float>* importance(const std::string& tensor) const;
  // The widest activation range over the smoothed groups, as
  // max_j m_j / median_j m_j with m_j = max|X_j| (before) or max|X_j| / s_j
  // (after): how far one token's int8 step is from its typical channel.
  double outlier_ratio_before() const { return ratio_before_; }
  double outlier_ratio_after() const { return ratio_after_; }

 private:
  // What happens to a tensor: its columns multiplied by col_scale (a
  // migration's s), its rows divided by row_scale (the next group's s).
  // A norm weight (1-D) is divided by its group's s instead.
  struct Plan {
    const std::vector<float>* col_scale = nullptr;
    const std::vector<float>* row_scale = nullptr;
    const std::vector<float>* divide = nullptr;
  };

  const TensorSource& base_;
  const ActivationStats& stats_;
  std::vector<std::pair<std::string, gguf::Value>> metadata_;
  std::vector<Plan> plans_;
  std::map<std::string, std::vector<float>> scales_;  // by the group's first matrix
  std::map<std::string, std::vector<float>> importance_;
  double ratio_before_ = 0, ratio_after_ = 0;
};

}  // namespace memwall::quant
