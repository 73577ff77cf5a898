// Token sampling: greedy, or repetition penalty -> top-k -> top-p -> min-p ->
// temperature -> a draw from a seeded generator (same seed, same tokens).
#pragma once

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace memwall {

struct SamplerConfig {
  float temperature = 0.8f;     // <= 0: greedy (argmax, lowest id on ties)
  int top_k = 40;               // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;       // tokens of history the penalty looks at
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerConfig& config);  // throws Error on out-of-range settings

  int32_t sample(const float* logits, int64_t n_vocab);
  // Adds a token (prompt or generated) to the history the penalty sees.
  void accept(int32_t token);

  // Uniform in [0, 1), from splitmix64: portable and reproducible.
  double next_uniform();

 private:
  SamplerConfig config_;
  uint64_t state_;
  std::deque<int32_t> history_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace memwall
