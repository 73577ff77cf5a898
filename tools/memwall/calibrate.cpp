#include "calibrate.h"

#include <chrono>
#include <cstdio>

#include "base/error.h"
#include "common.h"
#include "engine.h"

namespace memwall::tools {

int64_t run_calibration(const CalibrationOptions& opt, ActivationObserver& observer) {
  const std::string text = read_text_file(opt.text_path, "--calib");
  if (opt.ctx < 16) fail("--calib-ctx must be at least 16, got ", opt.ctx);
  if (opt.chunks < 1) fail("--calib-chunks must be at least 1, got ", opt.chunks);

  MemoryFlags memory;  // auto: a quantize run is not budgeted
  Engine engine({opt.model_path, memory, opt.threads, kernels::Precision::kExact, true});
  const ModelSpec& spec = engine.model().spec;
  if (opt.ctx > spec.n_ctx_train) {
    fail("--calib-ctx ", opt.ctx, " is beyond the model's context of ", spec.n_ctx_train);
  }
  const Tokenizer& tok = engine.tokenizer();
  std::vector<int32_t> tokens = tok.encode(text, /*add_special=*/false, false);
  const int64_t windows = std::min<int64_t>(opt.chunks, int64_t(tokens.size()) / opt.ctx);
  if (windows < 1) {
    fail("--calib '", opt.text_path, "' has ", tokens.size(), " tokens; one window needs ", opt.ctx,
         " (lower --calib-ctx or give more text)");
  }
  const int64_t T = opt.ctx, V = spec.n_vocab;
  // Every position's logits, so the output head sees every token too.
  engine.set_workload(T, 0);
  engine.set_extra_scratch(size_t(T * V) * sizeof(float));
  engine.plan_and_load(T, T, T);
  const plan::Plan& plan = engine.plan();
  const int64_t batch = std::min<int64_t>(plan.batch, T);
  KvPool kv(spec, {plan.kv, plan.kv_block, (T + plan.kv_block - 1) / plan.kv_block},
            engine.ledger());
  Forward forward(engine.model(), engine.store(), engine.pool(), engine.ledger(), batch, T,
                  {plan.attention, plan.kv_block});
  forward.set_observer(&observer);
  MemoryLedger::Reservation logits_booked =
      engine.ledger().reserve(MemCategory::kScratch, size_t(batch * V) * sizeof(float));
  std::vector<float> logits(size_t(batch * V));
  const auto start = std::chrono::steady_clock::now();
  for (int64_t w = 0; w < windows; ++w) {
    const KvPool::SeqId seq = kv.create();
    if (tok.add_bos() && tok.bos_id() >= 0) tokens[size_t(w * T)] = tok.bos_id();
    for (int64_t t = 0; t < T; t += batch) {
      const int64_t n = std::min(batch, T - t);
      forward.run(tokens.data() + w * T + t, n, kv, seq, logits.data(), true);
    }
    kv.release(seq);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\rcalibration: window %lld/%lld, %.1f s", (long long)(w + 1),
                 (long long)windows, s);
  }
  std::fputc('\n', stderr);
  return windows * T;
}

}  // namespace memwall::tools
