#!/usr/bin/env python3
"""llama.cpp side of bench/attention.py: decode speed at long context, one KV type per process.

Loads the model once (llama-cpp-python low-level API, as bench/llama_runner.py) with one
context of --ctx cells, flash attention --flash-attn, K and V cache types from --kv-type,
n_threads = n_threads_batch = --threads. The prompt is memwall bench's (splitmix64 ids,
seed --seed, end-of-generation ids excluded), so both engines decode after the same tokens.

Protocol: prints {"ready": true, ...}; then reads one command per line on stdin and answers
each with one JSON line:
  prefill P   extends the cached prompt to its first P tokens (chunks of --batch, logits for
              the last token only): a long context is prefilled once, not once per repetition;
  fill P      the same cache extent at linear cost, for decode-speed runs: the prompt's
              tokens up to P in chunks of --batch, each chunk its own sequence id (so it
              attends only to itself: no quadratic prefill), then every chunk's cells are
              given to sequence 0 (llama_memory_seq_cp) and the chunk ids removed. A decode
              step then reads all P cells exactly as after `prefill P`; only their values
              differ, which a flash-attention decode's cost does not depend on;
  decode N    decodes N tokens one at a time from the end of the prompt (argmax fed back),
              timed, then removes them from the cache (llama_memory_seq_rm), so every decode
              repetition starts at the same position;
  logits IDS OUT FIRST
              clears the cache and runs the token ids in file IDS (whitespace separated) as
              one batch, writing the logits of positions FIRST.. to OUT (.npy, float32
              [rows, V]): the perplexity protocol's scored half of a window.
At EOF prints a summary (peak RSS = VmHWM of this process) and exits."""
import argparse
import ctypes
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_runner import FLASH, KV_TYPES, L, _quiet_log, np, splitmix_prompt, status_bytes  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--kv-type", default="f16", help="type_k[,type_v]: f32, f16, q8_0, q4_0")
    ap.add_argument("--ctx", type=int, default=8192)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-b", "--batch", type=int, default=512)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--flash-attn", choices=sorted(FLASH), default="on")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    if not args.verbose:
        L.llama_log_set(_quiet_log, ctypes.c_void_p(0))
    L.llama_backend_init()
    model = L.llama_model_load_from_file(args.model.encode(), L.llama_model_default_params())
    if not model:
        sys.exit(f"error: llama.cpp cannot load {args.model}")
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    eog = {t for t in range(n_vocab) if L.llama_vocab_is_eog(vocab, t)}

    k_name, _, v_name = args.kv_type.partition(",")
    v_name = v_name or k_name
    if k_name not in KV_TYPES or v_name not in KV_TYPES:
        sys.exit(f"error: unknown --kv-type {args.kv_type} (expected {', '.join(KV_TYPES)})")
    cparams = L.llama_context_default_params()
    cparams.n_ctx = args.ctx
    cparams.n_batch = args.batch
    cparams.n_ubatch = args.batch
    cparams.n_threads = args.threads
    cparams.n_threads_batch = args.threads
    cparams.flash_attn_type = FLASH[args.flash_attn]
    cparams.type_k = KV_TYPES[k_name]
    cparams.type_v = KV_TYPES[v_name]
    cparams.no_perf = True
    # `fill` puts each chunk in its own sequence of one unified cache.
    cparams.n_seq_max = min(256, (args.ctx + args.batch - 1) // args.batch + 1)
    cparams.kv_unified = True
    ctx = L.llama_init_from_model(model, cparams)
    if not ctx:
        sys.exit(f"error: llama.cpp cannot create a context with KV {args.kv_type} and flash "
                 f"attention {args.flash_attn}")
    mem = L.llama_get_memory(ctx)
    batch = L.llama_batch_init(max(args.batch, 1), 0, 1)
    prompt = []
    state = {"pos": 0, "next": None}

    def emit(obj):
        print(json.dumps(obj), flush=True)

    def fill(tokens, pos0, last_logits, logits_from=None, seq=0):
        for i, tok in enumerate(tokens):
            batch.token[i] = tok
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            if logits_from is not None:
                batch.logits[i] = 1 if i >= logits_from else 0
            else:
                batch.logits[i] = 1 if (last_logits and i == len(tokens) - 1) else 0
        batch.n_tokens = len(tokens)

    def decode():
        rc = L.llama_decode(ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def argmax_last():
        ptr = L.llama_get_logits_ith(ctx, -1)
        return int(np.ctypeslib.as_array(ptr, shape=(n_vocab,)).argmax())

    def prefill(to):
        if to < state["pos"] or to > args.ctx:
            raise RuntimeError(f"cannot prefill to {to} from {state['pos']} (ctx {args.ctx})")
        if len(prompt) < to:
            prompt[:] = splitmix_prompt(to, n_vocab, eog, args.seed)
        t0 = time.monotonic()
        for at in range(state["pos"], to, args.batch):
            chunk = prompt[at:min(at + args.batch, to)]
            fill(chunk, at, at + len(chunk) == to)
            decode()
        L.llama_synchronize(ctx)
        seconds = time.monotonic() - t0
        n = to - state["pos"]
        state["pos"] = to
        state["next"] = argmax_last()
        return {"cmd": "prefill", "position": to, "prefill_tokens": n,
                "prefill_seconds": seconds, "prefill_tokens_per_s": n / seconds if seconds else 0.0}

    def fill_to(to):
        if to < state["pos"] or to > args.ctx:
            raise RuntimeError(f"cannot fill to {to} from {state['pos']} (ctx {args.ctx})")
        if len(prompt) < to:
            prompt[:] = splitmix_prompt(to, n_vocab, eog, args.seed)
        t0 = time.monotonic()
        chunks = []
        for k, at in enumerate(range(state["pos"], to, args.batch)):
            chunk = prompt[at:min(at + args.batch, to)]
            fill(chunk, at, at + len(chunk) == to, seq=k + 1)
            decode()
            chunks.append(k + 1)
        L.llama_synchronize(ctx)
        state["next"] = argmax_last()
        for seq in chunks:
            L.llama_memory_seq_cp(mem, seq, 0, -1, -1)
            L.llama_memory_seq_rm(mem, seq, -1, -1)
        seconds = time.monotonic() - t0
        n = to - state["pos"]
        state["pos"] = to
        lo, hi = L.llama_memory_seq_pos_min(mem, 0), L.llama_memory_seq_pos_max(mem, 0)
        if lo != 0 or hi != to - 1:
            raise RuntimeError(f"fill: sequence 0 holds positions {lo}..{hi}, expected 0..{to - 1}")
        return {"cmd": "fill", "position": to, "filled_tokens": n, "fill_seconds": seconds}

    def decode_n(n):
        if state["next"] is None:
            raise RuntimeError("decode before prefill")
        p0, tok = state["pos"], state["next"]
        t0 = time.monotonic()
        for i in range(n):
            fill([tok], p0 + i, True)
            decode()
            tok = argmax_last()
        L.llama_synchronize(ctx)
        seconds = time.monotonic() - t0
        if not L.llama_memory_seq_rm(mem, 0, p0, -1):
            raise RuntimeError("llama_memory_seq_rm refused to remove the decoded tokens")
        return {"cmd": "decode", "position": p0, "n_gen": n, "decode_seconds": seconds,
                "decode_tokens_per_s": n / seconds if seconds else 0.0,
                "peak_rss_bytes": status_bytes("VmHWM")}

    def logits(ids_path, out_path, first):
        with open(ids_path) as f:
            toks = [int(t) for t in f.read().split()]
        if len(toks) > min(args.batch, args.ctx) or not 0 <= first < len(toks):
            raise RuntimeError(f"logits: {len(toks)} tokens (batch {args.batch}, ctx "
                               f"{args.ctx}), first {first}")
        L.llama_memory_clear(mem, True)
        state["pos"], state["next"] = 0, None
        prompt.clear()
        fill(toks, 0, False, logits_from=first)
        t0 = time.monotonic()
        decode()
        L.llama_synchronize(ctx)
        seconds = time.monotonic() - t0
        rows = np.stack([np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(n_vocab,))
                         for i in range(first, len(toks))]).astype(np.float32)
        np.save(out_path, rows)
        L.llama_memory_clear(mem, True)
        return {"cmd": "logits", "rows": int(rows.shape[0]), "seconds": seconds}

    emit({"ready": True, "kv_type": args.kv_type, "ctx": args.ctx, "flash_attn": args.flash_attn})
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "prefill":
                emit(prefill(int(parts[1])))
            elif parts[0] == "fill":
                emit(fill_to(int(parts[1])))
            elif parts[0] == "decode":
                emit(decode_n(int(parts[1])))
            elif parts[0] == "logits":
                emit(logits(parts[1], parts[2], int(parts[3])))
            else:
                emit({"error": f"unknown command {parts[0]}"})
        except (RuntimeError, ValueError, IndexError) as e:
            emit({"error": str(e)})
    L.llama_batch_free(batch)
    emit({"engine": "llama.cpp", "llama_cpp_python": L.__version__, "kv_type": args.kv_type,
          "ctx": args.ctx, "flash_attn": args.flash_attn, "threads": args.threads,
          "batch": args.batch, "peak_rss_bytes": status_bytes("VmHWM"),
          "system_info": L.llama_print_system_info().decode(errors="replace").strip()})
    L.llama_free(ctx)
    L.llama_model_free(model)


if __name__ == "__main__":
    main()
