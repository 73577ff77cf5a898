// Bit budget (`memwall quantize --max-bpw BITS`): the file's size as the
// input. Every matrix the recipe would write in its target type may take one
// of several types instead; each is quantized in each, its loss measured, and
// the mix with the smallest total loss whose file (every tensor counted, as
// the summary's bits per weight) fits the budget is assigned to the recipe.
//
// The loss of a matrix in a type is its relative output error on the
// calibration inputs, E|(W'-W)x|^2 / E|Wx|^2 with the importance matrix as
// the diagonal of E[xx^T] (plain relative squared error without one): the
// noise power the type adds to that matrix's output, in units of its signal.
// The choice is a multiple-choice knapsack, solved greedily on each matrix's
// lower convex hull of (bytes, loss): its cost is within one step's loss of
// the optimum (the LP-relaxation bound), which the test checks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "quant/quant_recipe.h"
#include "quant/quantize_model.h"
#include "quant/tensor_source.h"

namespace memwall::quant {

struct MixOption {
  uint64_t bytes = 0;
  double loss = 0;
};

// One option index per item: the total bytes at most `budget` and the total
// loss near the least (see above). Throws Error when even the smallest
// option of every item exceeds the budget.
std::vector<size_t> choose_within_budget(const std::vector<std::vector<MixOption>>& items,
                                         uint64_t budget);

struct BitBudgetResult {
  double bits_per_weight = 0;                  // of the whole file, as planned
  double loss = 0;                             // summed over the mixed matrices
  double loss_target_only = -1;                // the same with the target type only; <0: over
  std::map<TensorType, int> matrices_by_type;  // the mixed matrices' choices
  int mixed = 0;                               // matrices the budget chose a type for
};

struct BitBudgetOptions {
  double max_bpw = 0;
  std::vector<TensorType> types;  // candidates besides the recipe's target
  // As QuantizeOptions: importance per column, ternary scaling.
  std::function<const std::vector<float>*(const std::string& tensor)> importance;
  bool ternary_absmean = false;
  // After each matrix has been measured in every type: (done, total).
  std::function<void(size_t, size_t, const SourceTensor&)> on_measured;
};

// Measures every mixable matrix of `source` in every candidate type, chooses,
// and assigns the choices to `recipe`. Throws Error for an unreachable budget.
BitBudgetResult apply_bit_budget(const TensorSource& source, QuantRecipe& recipe,
                                 const BitBudgetOptions& options, ThreadPool& pool);

}  // namespace memwall::quant
