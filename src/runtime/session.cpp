#include "runtime/session.h"

#include <algorithm>

#include "base/error.h"

namespace memwall {

Session::Session(const Model& model, ThreadPool& pool, int64_t max_ctx, int64_t batch,
                 kernels::Precision precision)
    : model_(model),
      kv_(model.spec, max_ctx),
      forward_(model, pool, precision),
      batch_(std::max<int64_t>(1, batch)) {
  logits_.resize(size_t(model.spec.n_vocab));
}

void Session::feed(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) return;
  const int64_t needed = position() + int64_t(tokens.size());
  if (needed > kv_.max_ctx()) {
    fail("context is full: ", needed, " tokens needed, the context holds ", kv_.max_ctx(),
         " (raise --ctx, up to the model's ", model_.spec.n_ctx_train, ")");
  }
  for (size_t at = 0; at < tokens.size(); at += size_t(batch_)) {
    const int64_t n = std::min<int64_t>(batch_, int64_t(tokens.size() - at));
    forward_.run(tokens.data() + at, n, position(), kv_, logits_.data(), false);
    tokens_.insert(tokens_.end(), tokens.begin() + long(at), tokens.begin() + long(at) + n);
  }
}

void Session::truncate(int64_t n) {
  if (n < position()) tokens_.resize(size_t(std::max<int64_t>(0, n)));
}

}  // namespace memwall
