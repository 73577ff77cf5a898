#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "base/error.h"

namespace memwall {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerateStats generate(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                       const std::vector<int32_t>& prompt, const GenerateOptions& options,
                       const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) fail("the prompt is empty and the model adds no BOS token: give a prompt");
  GenerateStats stats;
  // Reuse the cached prefix; recompute at least the last prompt token for its logits.
  const auto& cached = session.tokens();
  size_t common = 0;
  while (common < cached.size() && common < prompt.size() && cached[common] == prompt[common]) {
    ++common;
  }
  if (common == prompt.size()) --common;
  session.truncate(int64_t(common));
  std::vector<int32_t> rest(prompt.begin() + long(common), prompt.end());
  stats.reused_tokens = int64_t(common);
  stats.prompt_tokens = int64_t(rest.size());

  for (int32_t t : prompt) sampler.accept(t);
  auto t0 = std::chrono::steady_clock::now();
  session.feed(rest);
  stats.prefill_seconds = seconds_since(t0);

  // A model may pad its output beyond the tokenizer's vocabulary: never sample those.
  const int64_t n_vocab = std::min<int64_t>(session.n_vocab(), int64_t(tokenizer.vocab_size()));
  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < options.n_predict; ++i) {
    int32_t token = sampler.sample(session.logits(), n_vocab);
    sampler.accept(token);
    if (!options.ignore_eos && tokenizer.is_end_of_generation(token)) {
      stats.stopped_at_eog = true;
      break;
    }
    ++stats.generated_tokens;
    if (!on_token(token)) break;
    // Fed even after the last token (when there is room), so the cache holds
    // the whole reply for the next turn of a conversation.
    if (session.position() < session.max_ctx()) session.feed({token});
  }
  stats.decode_seconds = seconds_since(t0);
  return stats;
}

}  // namespace memwall
