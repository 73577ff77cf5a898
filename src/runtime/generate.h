// The generation loop shared by `run`, `chat` and later the server: feed the
// prompt (reusing whatever prefix the session already holds), then sample
// token by token until n tokens or an end-of-generation token.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/sampler.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace memwall {

struct GenerateOptions {
  int64_t n_predict = 128;
  bool ignore_eos = false;
};

struct GenerateStats {
  int64_t prompt_tokens = 0;  // tokens actually computed (after prefix reuse)
  int64_t reused_tokens = 0;  // prompt tokens already in the cache
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  bool stopped_at_eog = false;
  double prefill_tokens_per_s() const {
    return prefill_seconds > 0 ? double(prompt_tokens) / prefill_seconds : 0.0;
  }
  double decode_tokens_per_s() const {
    return decode_seconds > 0 ? double(generated_tokens) / decode_seconds : 0.0;
  }
};

// on_token is called with each generated token, the end-of-generation token
// excluded; returning false stops generation.
GenerateStats generate(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                       const std::vector<int32_t>& prompt, const GenerateOptions& options,
                       const std::function<bool(int32_t)>& on_token);

}  // namespace memwall
