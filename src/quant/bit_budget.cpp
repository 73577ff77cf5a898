#include "quant/bit_budget.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <queue>
#include <tuple>

#include "base/error.h"
#include "quant/quantize_tensor.h"

namespace memwall::quant {
namespace {

// Indices of an item's options on its lower convex hull of (bytes, loss),
// cheapest first: each step costs more bytes for less loss, at a falling rate.
std::vector<size_t> lower_hull(const std::vector<MixOption>& options) {
  std::vector<size_t> order(options.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(options[a].bytes, options[a].loss) <
           std::tie(options[b].bytes, options[b].loss);
  });
  std::vector<size_t> hull;
  for (size_t j : order) {
    const MixOption& c = options[j];
    if (!hull.empty() && c.loss >= options[hull.back()].loss) continue;  // dominated
    while (hull.size() >= 2) {
      const MixOption& a = options[hull[hull.size() - 2]];
      const MixOption& b = options[hull.back()];
      // b is above the segment a-c (saves less per byte than the step after it): drop it.
      const double left = (b.loss - a.loss) * double(c.bytes - b.bytes);
      const double right = (c.loss - b.loss) * double(b.bytes - a.bytes);
      if (left <= right) break;
      hull.pop_back();
    }
    hull.push_back(j);
  }
  return hull;
}

}  // namespace

std::vector<size_t> choose_within_budget(const std::vector<std::vector<MixOption>>& items,
                                         uint64_t budget) {
  std::vector<std::vector<size_t>> hulls;
  std::vector<size_t> at(items.size(), 0);
  uint64_t total = 0;
  for (const auto& options : items) {
    if (options.empty()) fail("bit budget: a matrix has no type to choose from");
    hulls.push_back(lower_hull(options));
    total += options[hulls.back()[0]].bytes;
  }
  if (total > budget) {
    fail("bit budget: the smallest choice of every matrix takes ", total, " bytes, over the ",
         budget, " allowed");
  }
  // Upgrades by loss saved per byte, best first; one that no longer fits ends its matrix.
  using Step = std::pair<double, size_t>;  // (loss change per byte, item): most negative first
  std::priority_queue<Step, std::vector<Step>, std::greater<>> steps;
  auto push = [&](size_t i) {
    const std::vector<size_t>& h = hulls[i];
    if (at[i] + 1 >= h.size()) return;
    const MixOption& cur = items[i][h[at[i]]];
    const MixOption& next = items[i][h[at[i] + 1]];
    steps.push({(next.loss - cur.loss) / double(next.bytes - cur.bytes), i});
  };
  for (size_t i = 0; i < items.size(); ++i) push(i);
  while (!steps.empty()) {
    const size_t i = steps.top().second;
    steps.pop();
    const uint64_t extra = items[i][hulls[i][at[i] + 1]].bytes - items[i][hulls[i][at[i]]].bytes;
    if (total + extra > budget) continue;
    total += extra;
    ++at[i];
    push(i);
  }
  std::vector<size_t> pick(items.size());
  for (size_t i = 0; i < items.size(); ++i) pick[i] = hulls[i][at[i]];
  return pick;
}

BitBudgetResult apply_bit_budget(const TensorSource& source, QuantRecipe& recipe,
                                 const BitBudgetOptions& options, ThreadPool& pool) {
  if (!(options.max_bpw > 0) || !std::isfinite(options.max_bpw)) {
    fail("--max-bpw must be a positive number of bits per weight, not ", options.max_bpw);
  }
  std::vector<TensorType> types{recipe.target()};
  for (TensorType t : options.types) {
    if (!writable_type(t)) fail("--mix: memwall cannot write ", tensor_type_name(t));
    if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
  }
  const std::vector<SourceTensor>& tensors = source.tensors();
  uint64_t elements = 0, fixed = 0;
  std::vector<size_t> mixable;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SourceTensor& t = tensors[i];
    elements += t.elements();
    if (recipe.mixable(t)) {
      mixable.push_back(i);
    } else {
      fixed += row_bytes(recipe.choose(t).type, t.cols()) * t.rows();
    }
  }
  const uint64_t budget = uint64_t(std::floor(options.max_bpw * double(elements) / 8.0));

  // Each mixable matrix's candidate types (after the row-size fallback), and
  // whether the budget is reachable at all, before the long part.
  std::vector<std::vector<TensorChoice>> choices(mixable.size());
  std::vector<std::vector<MixOption>> items(mixable.size());
  uint64_t smallest = fixed;
  for (size_t k = 0; k < mixable.size(); ++k) {
    const SourceTensor& t = tensors[mixable[k]];
    uint64_t least = UINT64_MAX;
    for (TensorType type : types) {
      TensorChoice c = recipe.resolve(t, type, "--max-bpw");
      std::vector<TensorChoice>& ch = choices[k];
      if (std::any_of(ch.begin(), ch.end(),
                      [&](const TensorChoice& o) { return o.type == c.type; }))
        continue;
      items[k].push_back({row_bytes(c.type, t.cols()) * t.rows(), 0.0});
      least = std::min(least, items[k].back().bytes);
      ch.push_back(std::move(c));
    }
    smallest += least;
  }
  if (smallest > budget) {
    fail("--max-bpw ", options.max_bpw,
         " cannot be met: the smallest of the candidate types for "
         "every matrix makes ",
         8.0 * double(smallest) / double(elements),
         " bits per weight (1-D tensors in f32 and --keep'd tensors count too); give a larger "
         "budget or a smaller type to --mix");
  }

  std::vector<uint8_t> scratch;
  for (size_t k = 0; k < mixable.size(); ++k) {
    const SourceTensor& t = tensors[mixable[k]];
    const std::vector<float>* imp = options.importance ? options.importance(t.name) : nullptr;
    if (imp && imp->size() != t.cols()) {
      fail("calibration importance of '", t.name, "' has ", imp->size(), " columns, the tensor ",
           t.cols());
    }
    for (size_t j = 0; j < items[k].size(); ++j) {
      const TensorType type = choices[k][j].type;
      scratch.resize(items[k][j].bytes);
      TensorQuantOptions q;
      q.importance = imp ? imp->data() : nullptr;
      q.error_weights = q.importance;
      q.ternary_absmean = options.ternary_absmean;
      items[k][j].loss =
          quantize_tensor(source, mixable[k], type, q, scratch.data(), pool).rel_output_err2();
    }
    if (options.on_measured) options.on_measured(k + 1, mixable.size(), t);
  }
  const std::vector<size_t> pick = choose_within_budget(items, budget - fixed);

  BitBudgetResult r;
  uint64_t total = fixed, target_total = fixed;
  double target_loss = 0;
  for (size_t k = 0; k < mixable.size(); ++k) {
    const MixOption& o = items[k][pick[k]];
    total += o.bytes;
    r.loss += o.loss;
    target_total += items[k][0].bytes;  // types[0] is the target: option 0 is its type
    target_loss += items[k][0].loss;
    r.matrices_by_type[choices[k][pick[k]].type] += 1;
    recipe.assign(tensors[mixable[k]].name, choices[k][pick[k]]);
  }
  r.mixed = int(mixable.size());
  r.bits_per_weight = elements ? 8.0 * double(total) / double(elements) : 0;
  r.loss_target_only = target_total <= budget ? target_loss : -1;
  char bits[32];
  std::snprintf(bits, sizeof bits, "%g", options.max_bpw);
  std::string note = std::string("mixed to <= ") + bits + " bpw from ";
  for (size_t i = 0; i < types.size(); ++i) {
    if (i) note += '/';
    note += tensor_type_name(types[i]);
  }
  recipe.set_mix_note(note);
  return r;
}

}  // namespace memwall::quant
