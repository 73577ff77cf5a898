#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "base/error.h"

namespace memwall {

Sampler::Sampler(const SamplerConfig& c) : config_(c), state_(c.seed) {
  if (!(c.temperature >= 0) || !std::isfinite(c.temperature)) fail("--temp must be >= 0");
  if (!(c.top_p > 0 && c.top_p <= 1)) fail("--top-p must be in (0, 1]");
  if (!(c.min_p >= 0 && c.min_p <= 1)) fail("--min-p must be in [0, 1]");
  if (!(c.repeat_penalty > 0) || !std::isfinite(c.repeat_penalty)) {
    fail("--repeat-penalty must be positive");
  }
  if (c.repeat_last_n < 0) fail("--repeat-last-n must be >= 0");
}

double Sampler::next_uniform() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

void Sampler::accept(int32_t token) {
  if (config_.repeat_last_n == 0) return;
  history_.push_back(token);
  while (history_.size() > size_t(config_.repeat_last_n)) history_.pop_front();
}

int32_t Sampler::sample(const float* logits, int64_t n_vocab) {
  auto& cand = candidates_;
  cand.resize(size_t(n_vocab));
  for (int64_t i = 0; i < n_vocab; ++i) cand[size_t(i)] = {logits[i], int32_t(i)};

  if (config_.repeat_penalty != 1.0f && !history_.empty()) {
    std::unordered_set<int32_t> seen(history_.begin(), history_.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= n_vocab) continue;
      float& l = cand[size_t(id)].first;
      l = l > 0 ? l / config_.repeat_penalty : l * config_.repeat_penalty;
    }
  }

  // Descending by logit, ascending id on ties: greedy picks the lowest id.
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (config_.temperature <= 0) return std::min_element(cand.begin(), cand.end(), better)->second;

  size_t keep = cand.size();
  if (config_.top_k > 0 && size_t(config_.top_k) < keep) keep = size_t(config_.top_k);
  std::partial_sort(cand.begin(), cand.begin() + long(keep), cand.end(), better);
  cand.resize(keep);

  // Probabilities at temperature 1 decide what top-p and min-p keep.
  std::vector<double> p(cand.size());
  double sum = 0;
  for (size_t i = 0; i < cand.size(); ++i)
    sum += (p[i] = std::exp(double(cand[i].first - cand[0].first)));
  if (config_.top_p < 1) {
    double cum = 0;
    size_t n = 0;
    while (n < cand.size()) {
      cum += p[n++] / sum;
      if (cum >= config_.top_p) break;
    }
    cand.resize(n);
  }
  if (config_.min_p > 0) {
    size_t n = 1;
    while (n < cand.size() && p[n] >= config_.min_p * p[0]) ++n;
    cand.resize(n);
  }

  double total = 0;
  std::vector<double> w(cand.size());
  for (size_t i = 0; i < cand.size(); ++i) {
    total += (w[i] = std::exp(double(cand[i].first - cand[0].first) / config_.temperature));
  }
  double r = next_uniform() * total;
  for (size_t i = 0; i < cand.size(); ++i) {
    r -= w[i];
    if (r < 0) return cand[i].second;
  }
  return cand.back().second;
}

}  // namespace memwall
