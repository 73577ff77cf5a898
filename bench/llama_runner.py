#!/usr/bin/env python3
"""llama.cpp side of bench/e2e_kernels.py: the same measurement as `memwall bench`
through llama-cpp-python's low-level API (no high-level Llama wrapper, whose
per-position logits array would inflate RSS and time).

Loads the model once (mmap, llama.cpp's default, or --no-mmap), one context of --ctx tokens
with n_batch = n_ubatch = --batch, n_threads = n_threads_batch = --threads.
Each repetition clears the KV cache, prefills -p pseudo-random token ids (the
same splitmix64 sequence as memwall bench, end-of-generation ids excluded)
with logits for the last token only, then decodes -n tokens one at a time,
feeding back the argmax of the logits. Prefill and decode are timed separately
with a monotonic clock.

Protocol (--harness): after --warmup repetitions print {"ready": true}; then one
repetition per line read from stdin, each answered by one JSON line; at EOF
(or after --reps) print the summary JSON on one line. Without --harness: runs
--reps repetitions and prints the summary. Peak RSS is VmHWM of this process;
rss_before_load_bytes is what the interpreter, numpy and libllama held before
the model was loaded."""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time


def status_bytes(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


RSS_START = status_bytes("VmRSS")

import numpy as np  # noqa: E402
import llama_cpp as L  # noqa: E402

MASK = (1 << 64) - 1


def splitmix_prompt(n, n_vocab, skip, seed):
    """memwall bench's make_prompt(): splitmix64 ids in [0, n_vocab) minus skip."""
    out, state = [], seed
    while len(out) < n:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        tok = z % n_vocab
        if tok not in skip:
            out.append(tok)
    return out


@L.llama_log_callback
def _quiet_log(level, text, user_data):  # llama.cpp logs go nowhere unless --verbose
    pass


KV_TYPES = {"f32": L.GGML_TYPE_F32, "f16": L.GGML_TYPE_F16, "q8_0": L.GGML_TYPE_Q8_0,
            "q4_0": L.GGML_TYPE_Q4_0}
FLASH = {"auto": L.LLAMA_FLASH_ATTN_TYPE_AUTO, "on": L.LLAMA_FLASH_ATTN_TYPE_ENABLED,
         "off": L.LLAMA_FLASH_ATTN_TYPE_DISABLED}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("-w", "--warmup", type=int, default=1)
    ap.add_argument("-b", "--batch", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=0, help="0: prompt + generation")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--flash-attn", choices=sorted(FLASH), default="auto",
                    help="llama.cpp's flash attention setting (auto is its default)")
    ap.add_argument("--kv-type", default="f16",
                    help="KV cache type_k[,type_v]: f32, f16 (llama.cpp's default), q8_0, q4_0 "
                         "(a quantized V cache needs flash attention)")
    ap.add_argument("--no-mmap", action="store_true",
                    help="read the weights into RAM (use_mmap=False) instead of mapping the file")
    ap.add_argument("--harness", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    if not args.verbose:
        L.llama_log_set(_quiet_log, ctypes.c_void_p(0))
    L.llama_backend_init()
    rss_before_load = status_bytes("VmRSS")
    mparams = L.llama_model_default_params()
    mparams.use_mmap = not args.no_mmap
    t_load = time.monotonic()
    model = L.llama_model_load_from_file(args.model.encode(), mparams)
    if not model:
        sys.exit(f"error: llama.cpp cannot load {args.model}")
    load_seconds = time.monotonic() - t_load
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    eog = {t for t in range(n_vocab) if L.llama_vocab_is_eog(vocab, t)}
    prompt = splitmix_prompt(args.n_prompt, n_vocab, eog, args.seed)

    ctx_size = args.ctx or (args.n_prompt + args.n_gen)
    cparams = L.llama_context_default_params()
    cparams.n_ctx = ctx_size
    cparams.n_batch = args.batch
    cparams.n_ubatch = args.batch
    cparams.n_threads = args.threads
    cparams.n_threads_batch = args.threads
    cparams.flash_attn_type = FLASH[args.flash_attn]
    k_name, _, v_name = args.kv_type.partition(",")
    v_name = v_name or k_name
    if k_name not in KV_TYPES or v_name not in KV_TYPES:
        sys.exit(f"error: unknown --kv-type {args.kv_type} (expected {', '.join(KV_TYPES)})")
    cparams.type_k = KV_TYPES[k_name]
    cparams.type_v = KV_TYPES[v_name]
    cparams.no_perf = True
    ctx = L.llama_init_from_model(model, cparams)
    if not ctx:
        sys.exit("error: llama.cpp cannot create a context")
    mem = L.llama_get_memory(ctx)
    batch = L.llama_batch_init(max(args.batch, 1), 0, 1)

    def fill(tokens, pos0, last_logits):
        for i, tok in enumerate(tokens):
            batch.token[i] = tok
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if (last_logits and i == len(tokens) - 1) else 0
        batch.n_tokens = len(tokens)

    def decode():
        rc = L.llama_decode(ctx, batch)
        if rc != 0:
            sys.exit(f"error: llama_decode returned {rc}")

    def argmax_last():
        ptr = L.llama_get_logits_ith(ctx, -1)
        return int(np.ctypeslib.as_array(ptr, shape=(n_vocab,)).argmax())

    def one_rep():
        L.llama_memory_clear(mem, True)
        t0 = time.monotonic()
        for at in range(0, len(prompt), args.batch):
            chunk = prompt[at:at + args.batch]
            fill(chunk, at, at + len(chunk) == len(prompt))
            decode()
        L.llama_synchronize(ctx)
        tok = argmax_last()
        t1 = time.monotonic()
        pos = len(prompt)
        for _ in range(args.n_gen):
            fill([tok], pos, True)
            decode()
            tok = argmax_last()
            pos += 1
        L.llama_synchronize(ctx)
        t2 = time.monotonic()
        return t1 - t0, t2 - t1

    def emit(obj):
        print(json.dumps(obj), flush=True)

    for _ in range(args.warmup):
        one_rep()
    if args.harness:
        emit({"ready": True, "warmup": args.warmup})
    pp, tg, pp_s, tg_s = [], [], [], []
    for rep in range(args.reps):
        if args.harness and not sys.stdin.readline():
            break
        sp, sd = one_rep()
        pp_s.append(sp)
        tg_s.append(sd)
        pp.append(args.n_prompt / sp if sp > 0 else 0.0)
        tg.append(args.n_gen / sd if sd > 0 else 0.0)
        if args.harness:
            emit({"rep": rep, "prefill_seconds": sp, "decode_seconds": sd,
                  "prefill_tokens_per_s": pp[-1], "decode_tokens_per_s": tg[-1],
                  "peak_rss_bytes": status_bytes("VmHWM")})
    if not pp:
        sys.exit("error: no repetition was measured")

    def spread(v):
        return {"median": statistics.median(v), "min": min(v), "max": max(v),
                "mean": statistics.fmean(v), "stddev": statistics.stdev(v) if len(v) > 1 else 0.0,
                "samples": v}

    L.llama_batch_free(batch)
    summary = {
        "engine": "llama.cpp",
        "llama_cpp_python": L.__version__,
        "system_info": L.llama_print_system_info().decode(errors="replace").strip(),
        "flash_attn": args.flash_attn,
        "kv_type": args.kv_type,
        "model": args.model,
        "threads": args.threads,
        "n_prompt": args.n_prompt,
        "n_gen": args.n_gen,
        "batch": args.batch,
        "ctx": ctx_size,
        "reps": len(pp),
        "warmup": args.warmup,
        "n_vocab": n_vocab,
        "prefill_tokens_per_s": statistics.median(pp),
        "decode_tokens_per_s": statistics.median(tg),
        "prefill_tokens_per_s_spread": spread(pp),
        "decode_tokens_per_s_spread": spread(tg),
        "prefill_seconds": pp_s,
        "decode_seconds": tg_s,
        "load_seconds": load_seconds,
        "peak_rss_bytes": status_bytes("VmHWM"),
        "rss_interpreter_start_bytes": RSS_START,
        "rss_before_load_bytes": rss_before_load,
    }
    L.llama_free(ctx)
    L.llama_model_free(model)
    print(json.dumps(summary) if args.harness else json.dumps(summary, indent=2), flush=True)


if __name__ == "__main__":
    main()
