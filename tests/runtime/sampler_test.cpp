#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "base/error.h"

namespace memwall {
namespace {

TEST(Sampler, GreedyPicksArgmaxAndLowestIdOnTies) {
  SamplerConfig c;
  c.temperature = 0;
  Sampler s(c);
  std::vector<float> logits = {0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(s.sample(logits.data(), 4), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[size_t(i)] = float(i % 7) * 0.3f;
  SamplerConfig c;
  c.temperature = 1.0f;
  c.top_k = 0;
  c.top_p = 1.0f;
  c.min_p = 0;
  c.seed = 42;
  Sampler a(c), b(c);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 200; ++i) {
    ta.push_back(a.sample(logits.data(), 100));
    tb.push_back(b.sample(logits.data(), 100));
  }
  EXPECT_EQ(ta, tb);
  c.seed = 43;
  Sampler other(c);
  std::vector<int32_t> tc;
  for (int i = 0; i < 200; ++i) tc.push_back(other.sample(logits.data(), 100));
  EXPECT_NE(ta, tc);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  std::vector<float> logits = {0.0f, std::log(2.0f), std::log(7.0f)};  // p = 0.1, 0.2, 0.7
  SamplerConfig c;
  c.temperature = 1.0f;
  c.top_k = 0;
  c.top_p = 1.0f;
  c.min_p = 0;
  c.seed = 7;
  Sampler s(c);
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) counts[s.sample(logits.data(), 3)]++;
  EXPECT_NEAR(counts[0] / double(n), 0.1, 0.01);
  EXPECT_NEAR(counts[1] / double(n), 0.2, 0.015);
  EXPECT_NEAR(counts[2] / double(n), 0.7, 0.015);
}

TEST(Sampler, TopKOneTopPAndMinPCutTheTail) {
  std::vector<float> logits = {0.0f, std::log(2.0f), std::log(7.0f)};
  for (int variant = 0; variant < 3; ++variant) {
    SamplerConfig c;
    c.temperature = 1.0f;
    c.top_k = variant == 0 ? 1 : 0;
    c.top_p = variant == 1 ? 0.5f : 1.0f;  // 0.7 alone covers 0.5
    c.min_p = variant == 2 ? 0.5f : 0.0f;  // 0.2 < 0.5 * 0.7
    Sampler s(c);
    for (int i = 0; i < 200; ++i) ASSERT_EQ(s.sample(logits.data(), 3), 2) << variant;
  }
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
  SamplerConfig c;
  c.temperature = 0;
  c.repeat_penalty = 2.0f;
  Sampler s(c);
  std::vector<float> logits = {1.5f, 1.0f};
  EXPECT_EQ(s.sample(logits.data(), 2), 0);
  s.accept(0);  // 1.5 / 2 = 0.75 < 1.0
  EXPECT_EQ(s.sample(logits.data(), 2), 1);
}

TEST(Sampler, RejectsNonsenseSettings) {
  SamplerConfig c;
  c.top_p = 0;
  EXPECT_THROW(Sampler{c}, Error);
  c = {};
  c.temperature = -1;
  EXPECT_THROW(Sampler{c}, Error);
  c = {};
  c.repeat_penalty = 0;
  EXPECT_THROW(Sampler{c}, Error);
}

}  // namespace
}  // namespace memwall
