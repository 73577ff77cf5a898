#!/usr/bin/env python3
"""Attention and KV cache benchmarks (issue 5), in one run; writes bench/results/attention.md,
attention.png and attention.json.

(a) Scaling: build/memwall_kv_attention_bench --mode scaling. One layer of the default model's
    attention (H 9, Hkv 3, D 64, f16 KV in 16-token blocks) as the forward pass runs it, 2
    threads: a prefill of n tokens and one decode step at position n, n = 512..8192, flash and
    materialized. Attention scratch bytes (Forward::attention_bytes: materialized holds
    H x n x n scores for one n-token prefill; flash only per-thread tiles) and times.
(b) Per KV type (f32, f16, q8_0, q4_0):
    - bytes per token (memwall bench's kv_bytes_per_token);
    - decode tokens/s at about 1k, 4k and 8k context: `memwall bench -p P -n 32 -r R -w 0
      --ctx P+64 --attention flash --kv-type T --mem 4GiB --json --harness`, side by side with
      llama.cpp (see (d)); each repetition is a memwall repetition (prefill P, decode 32) and
      a llama.cpp decode of 32 tokens at the same position, in alternating order, after waiting
      (up to --quiet-wait s) for the machine to be quiet;
    - quality against f16 KV: `memwall logits` (precision fast, flash) on windows of 512
      tokens of WikiText-2 test (../shared/data), llama.cpp's perplexity protocol (each window
      on its own, no BOS since the model adds none; only the second half is scored: logits at
      positions 256..510 predict tokens 257..511). PPL = exp(mean NLL); mean KL(f16 || T) of
      the next-token distributions at the scored positions; top-1 agreement with f16.
(c) KV waste: build/memwall_kv_attention_bench --mode waste (>= 200 sequences of mixed length,
    forks, block sizes 8..64 and contiguous reservation).
(d) llama.cpp (llama-cpp-python, bench/llama_longctx.py): flash attention on, the same K/V
    cache type, n_ctx 8192, the same prompt tokens as memwall bench. Its long prompt is
    prefilled once per KV type and extended from one context to the next; every decode
    repetition starts at the same position (the decoded tokens are removed afterwards).

    .venv/bin/python bench/attention.py --memwall build/memwall \\
        --kvbench build/memwall_kv_attention_bench [--quick]
    .venv/bin/python bench/attention.py --from-json bench/results/attention.json  # report only"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from e2e_kernels import (cpu_jiffies, gguf_facts, machine, outside_load, show,  # noqa: E402
                         wait_for_quiet)

LONGCTX = os.path.join(ROOT, "bench", "llama_longctx.py")
DEFAULT_MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
TEXT = os.path.join(os.path.dirname(ROOT), "shared", "data", "text", "wikitext-2-raw",
                    "wiki.test.raw")
KV_TYPES = ["f32", "f16", "q8_0", "q4_0"]
# llama.cpp with its Hadamard rotation of Q/K/V for quantized caches switched off.
NOROT = "llama.cpp (no rotation)"
# Bytes per element of each cache type (ggml blocks of 32: q8_0 34 bytes, q4_0 18 bytes).
ELEMENT_BYTES = {"f32": 4.0, "f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
T0 = time.monotonic()


def log(*a):
    print(f"[attention {time.monotonic() - T0:6.0f}s]", *a, file=sys.stderr, flush=True)


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{show(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout)


def spread(v):
    return {"median": statistics.median(v), "min": min(v), "max": max(v),
            "stddev": statistics.stdev(v) if len(v) > 1 else 0.0, "samples": v}


class Proc:
    """A benchmark process: a JSON line per command on stdin, a ready line first."""

    def __init__(self, name, cmd, log_path, env=None):
        self.name, self.cmd, self.log_path = name, cmd, log_path
        self.err = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, bufsize=1,
                                     env=dict(os.environ, **env) if env else None)
        self.ready = self._line()
        if not self.ready.get("ready"):
            raise RuntimeError(f"{name}: expected a ready line, got {self.ready}")

    def _line(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.err.flush()
            with open(self.log_path) as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {tail.strip()}")
        return json.loads(line)

    def ask(self, text):
        before = cpu_jiffies(self.proc.pid)
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        r = self._line()
        if "error" in r:
            raise RuntimeError(f"{self.name}: {r['error']}")
        r["outside_load_cpus"] = outside_load(before, cpu_jiffies(self.proc.pid))
        return r

    def finish(self):
        self.proc.stdin.close()
        summary = self._line()
        self.proc.wait()
        self.err.close()
        return summary

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.err.closed:
            self.err.close()


# ---------------------------------------------------------------- (a), (c)

def scaling(a):
    cmd = [a.kvbench, "--mode", "scaling", "--threads", str(a.threads), "--reps",
           str(a.scaling_reps), "--max-n", str(a.scaling_max_n)]
    log("(a) scaling:", show(cmd))
    return {"cmd": cmd, "result": run_json(cmd)}


def waste(a):
    cmd = [a.kvbench, "--mode", "waste", "--requests", str(a.requests), "--seed", "42"]
    log("(c) waste:", show(cmd))
    return {"cmd": cmd, "result": run_json(cmd)}


# ---------------------------------------------------------------- (b), (d): decode speed

def decode_quietly(a, proc, pair, name):
    """One llama.cpp decode repetition, repeated (up to --retries times, after waiting for a
    quiet machine) while other processes used more than --quiet-threshold CPUs during it:
    llama.cpp's threads wait for each other spinning, so a core taken by anything else
    slows its decode many times over. Every attempt is kept in the pair."""
    r = proc.ask(f"decode {a.n_gen}")
    for _ in range(a.retries):
        if r["outside_load_cpus"] <= a.quiet_threshold:
            break
        pair.setdefault(f"{name}_discarded", []).append(r)
        wait_for_quiet(a.quiet_wait, a.quiet_threshold)
        r = proc.ask(f"decode {a.n_gen}")
    return r


def decode_speed(a, logdir):
    """Per KV type and context: memwall bench reps and llama.cpp decode reps, alternated.

    llama.cpp's cache is filled with `fill P` (linear cost, see bench/llama_longctx.py); at
    the first context a second llama.cpp process that really prefills the prompt (`prefill
    P`) is measured alongside, to show the fill does not change its decode speed."""
    out = {}
    for kv in a.kv_types:
        res = out[kv] = {"contexts": {}}
        ll = check = None
        if not a.no_llama:
            ll_cmd = [a.python, LONGCTX, "-m", a.model, "--kv-type", kv, "--ctx",
                      str(a.llama_ctx), "-t", str(a.threads), "--flash-attn", "on"]
            res["llama_cmd"] = ll_cmd
            try:
                ll = Proc("llama.cpp", ll_cmd, os.path.join(logdir, f"llama-{kv}.log"))
            except (RuntimeError, OSError) as e:
                res["llama_error"] = str(e)
                log(f"(d) llama.cpp KV {kv}: {e}")
        for i, P in enumerate(a.contexts):
            ctx = {"P": P}
            res["contexts"][str(P)] = ctx
            mw_cmd = [a.memwall, "bench", "-m", a.model, "-p", str(P), "-n", str(a.n_gen),
                      "-r", str(a.reps), "-w", "0", "-t", str(a.threads), "--ctx", str(P + 64),
                      "--attention", "flash", "--kv-type", kv, "--mem", a.mem, "--json",
                      "--harness"]
            ctx["memwall_cmd"] = mw_cmd
            mw = None
            try:
                mw = Proc("memwall", mw_cmd, os.path.join(logdir, f"memwall-{kv}-{P}.log"))
                if ll:
                    try:
                        ctx["llama_fill"] = ll.ask(f"{a.llama_fill} {P}")
                    except RuntimeError as e:
                        ctx["llama_error"] = str(e)
                        log(f"(d) llama.cpp KV {kv} {a.llama_fill} {P}: {e}")
                        ll.kill()
                        ll = None
                if ll and i == 0 and a.llama_fill == "fill":
                    try:
                        check = Proc("llama.cpp prefilled", ll_cmd,
                                     os.path.join(logdir, f"llama-{kv}-prefilled.log"))
                        ctx["llama_prefilled_prefill"] = check.ask(f"prefill {P}")
                    except RuntimeError as e:
                        ctx["llama_prefilled_error"] = str(e)
                        check = None
                pairs = []
                for rep in range(a.reps):
                    waited, load = wait_for_quiet(a.quiet_wait, a.quiet_threshold)
                    pair = {"quiet_wait_s": waited, "load_before": load}
                    names = ["memwall", "llama", "llama_prefilled"]
                    for name in (names if rep % 2 == 0 else names[::-1]):
                        if name == "memwall":
                            pair["memwall"] = mw.ask("go")
                        elif name == "llama" and ll:
                            try:
                                pair["llama"] = decode_quietly(a, ll, pair, "llama")
                            except RuntimeError as e:
                                ctx["llama_error"] = str(e)
                                ll.kill()
                                ll = None
                        elif name == "llama_prefilled" and check:
                            pair["llama_prefilled"] = decode_quietly(a, check, pair,
                                                                     "llama_prefilled")
                    pairs.append(pair)
                    msg = " | ".join(f"{n} {pair[n]['decode_tokens_per_s']:.1f}"
                                     for n in names if n in pair)
                    log(f"(b/d) KV {kv} ctx {P} rep {rep + 1}/{a.reps}: decode tok/s {msg} "
                        f"(waited {waited:.0f} s, load {load:.2f})")
                ctx["pairs"] = pairs
                ctx["memwall_summary"] = mw.finish()
            except (RuntimeError, OSError, ValueError) as e:
                ctx["memwall_error"] = str(e)
                log(f"(b) memwall KV {kv} ctx {P}: {e}")
            finally:
                if mw:
                    mw.kill()
                if check:
                    check.kill()
                    check = None
        if ll:
            try:
                res["llama_summary"] = ll.finish()
            except RuntimeError as e:
                res["llama_error"] = str(e)
            ll.kill()
    derive_decode(out)
    return out


def derive_decode(out):
    for kv, res in out.items():
        for ctx in res["contexts"].values():
            pairs = ctx.get("pairs", [])
            mw = [p["memwall"]["decode_tokens_per_s"] for p in pairs if "memwall" in p]
            ll = [p["llama"]["decode_tokens_per_s"] for p in pairs if "llama" in p]
            if mw:
                ctx["memwall"] = spread(mw)
                ctx["memwall_prefill"] = spread([p["memwall"]["prefill_tokens_per_s"]
                                                 for p in pairs if "memwall" in p])
            if ll:
                ctx["llama"] = spread(ll)
            lp = [p["llama_prefilled"]["decode_tokens_per_s"] for p in pairs
                  if "llama_prefilled" in p]
            if lp:
                ctx["llama_prefilled"] = spread(lp)
            if mw and ll:
                ctx["ratio"] = statistics.median(mw) / statistics.median(ll)
                ctx["pair_ratios"] = spread([p["memwall"]["decode_tokens_per_s"] /
                                             p["llama"]["decode_tokens_per_s"]
                                             for p in pairs if "memwall" in p and "llama" in p])
            loads = [p[e]["outside_load_cpus"] for p in pairs
                     for e in ("memwall", "llama", "llama_prefilled") if e in p]
            if loads:
                ctx["outside_load"] = spread(loads)


# ---------------------------------------------------------------- (b): quality

def tokenize_text(a):
    with open(TEXT, encoding="utf-8") as f:
        text = f.read(a.text_chars).replace("\r\n", "\n")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(text)
        path = f.name
    try:
        ids = subprocess.run([a.memwall, "tokenize", "-m", a.model, "--no-bos", "--file", path],
                             check=True, capture_output=True, text=True).stdout.split()
        with_bos = subprocess.run([a.memwall, "tokenize", "-m", a.model, "Hello"], check=True,
                                  capture_output=True, text=True).stdout.split()
        no_bos = subprocess.run([a.memwall, "tokenize", "-m", a.model, "--no-bos", "Hello"],
                                check=True, capture_output=True, text=True).stdout.split()
    finally:
        os.unlink(path)
    bos = int(with_bos[0]) if len(with_bos) > len(no_bos) else None
    return [int(t) for t in ids], bos


def log_softmax(x):
    import numpy as np
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def quality_stats(acc, ref_name):
    """PPL, and against the reference run: ΔPPL, KL(ref || run), top-1 agreement."""
    import numpy as np
    ref_nll = np.array(acc[ref_name]["nll"])
    out = {}
    for name, s in acc.items():
        nll = np.array(s["nll"])
        n = len(nll)
        if n == 0:
            continue
        mean = float(nll.mean())
        se = float(nll.std(ddof=1) / math.sqrt(n))
        r = {"positions": n, "ppl": math.exp(mean), "ppl_stderr": math.exp(mean) * se,
             "mean_nll": mean, "top1_accuracy": s["top1_correct"] / n}
        if name != ref_name and len(s["kl"]) == n and len(ref_nll) == n:
            d = nll - ref_nll
            r["delta_nll"] = float(d.mean())
            r["delta_nll_stderr"] = float(d.std(ddof=1) / math.sqrt(n))
            r["delta_ppl"] = r["ppl"] - math.exp(float(ref_nll.mean()))
            kl = np.array(s["kl"])
            r["kl_mean"] = float(kl.mean())
            r["kl_stderr"] = float(kl.std(ddof=1) / math.sqrt(n))
            r["kl_p99"] = float(np.percentile(kl, 99))
            r["kl_max"] = float(kl.max())
            r["top1_agreement"] = s["top1_agree"] / n
        out[name] = r
    return out


def quality(a, logdir):
    """memwall logits per KV type (and llama.cpp's, same windows and types) -> PPL, KL vs f16."""
    import numpy as np
    ids, bos = tokenize_text(a)
    W = a.window
    n_windows = min(a.windows, len(ids) // W)
    first = W // 2
    types = ["f16"] + [t for t in a.kv_types if t != "f16"]
    engines = ["memwall"] + ([] if a.no_llama else ["llama.cpp", NOROT])
    quantized = [t for t in types if t.startswith("q")]
    runs = [(e, t) for e in engines for t in (quantized if e == NOROT else types)]
    acc = {r: {"nll": [], "kl": [], "top1_agree": 0, "top1_correct": 0} for r in runs}
    acc[("llama.cpp f16 vs", "memwall f16")] = {"nll": [], "kl": [], "top1_agree": 0,
                                                 "top1_correct": 0}
    cmds = {}
    llama = {}
    log(f"(b) quality: {n_windows} windows x {W} tokens, scored positions {first}..{W - 2} "
        f"({n_windows * (W - 1 - first)} in all), {len(ids)} tokens of text, "
        f"engines {', '.join(engines)}")
    try:
        for eng, t in runs:
            if eng == "memwall":
                continue
            cmd = [a.python, LONGCTX, "-m", a.model, "--kv-type", t, "--ctx", str(W), "-b",
                   str(W), "-t", str(a.threads), "--flash-attn", "on"]
            env = {"LLAMA_ATTN_ROT_DISABLE": "1"} if eng == NOROT else None
            cmds[f"{eng} {t}"] = ("LLAMA_ATTN_ROT_DISABLE=1 " if env else "") + show(cmd)
            try:
                llama[(eng, t)] = Proc(eng, cmd, os.path.join(
                    logdir, f"llama-quality-{t}{'-norot' if env else ''}.log"), env=env)
            except (RuntimeError, OSError) as e:
                log(f"(b) quality: {eng} KV {t}: {e}")
        with tempfile.TemporaryDirectory(dir=logdir) as td:
            ids_path = os.path.join(td, "window.txt")
            for w in range(n_windows):
                toks = ids[w * W:(w + 1) * W]
                if bos is not None:
                    toks = [bos] + toks[1:]  # llama.cpp's perplexity: BOS at the window's start
                with open(ids_path, "w") as f:
                    f.write(" ".join(map(str, toks)))
                target = np.array(toks[first + 1:W])
                refs = {}
                for eng, t in runs:
                    out = os.path.join(td, f"logits-{t}.npy")
                    if eng == "memwall":
                        cmd = [a.memwall, "logits", "-m", a.model, "--tokens",
                               " ".join(map(str, toks)), "-o", out, "--kv-type", t,
                               "--attention", "flash", "--precision", "fast", "--mem", "2GiB",
                               "-t", str(a.threads)]
                        cmds[f"memwall {t}"] = show(cmd[:5] + ["<ids>", "-o", "OUT.npy"] +
                                                    cmd[8:])
                        r = subprocess.run(cmd, capture_output=True, text=True)
                        if r.returncode != 0:
                            raise RuntimeError(f"memwall logits --kv-type {t} failed: "
                                               f"{r.stderr[-2000:]}")
                        rows = np.load(out)[first:W - 1]
                    else:
                        if (eng, t) not in llama:
                            continue
                        llama[(eng, t)].ask(f"logits {ids_path} {out} {first}")
                        rows = np.load(out)[:W - 1 - first]
                    os.unlink(out)
                    lp = log_softmax(rows)
                    del rows
                    s = acc[(eng, t)]
                    s["nll"].extend((-lp[np.arange(len(target)), target]).tolist())
                    s["top1_correct"] += int((lp.argmax(axis=1) == target).sum())
                    if t == "f16":
                        refs[eng] = lp
                        if eng == "llama.cpp" and "memwall" in refs:
                            # memwall f16 against llama.cpp f16: the engines' own difference.
                            x = acc[("llama.cpp f16 vs", "memwall f16")]
                            x["nll"].extend(acc[("memwall", "f16")]["nll"][-len(target):])
                            x["kl"].extend((np.exp(lp) * (lp - refs["memwall"])).sum(axis=1)
                                           .tolist())
                            x["top1_agree"] += int((lp.argmax(axis=1) ==
                                                    refs["memwall"].argmax(axis=1)).sum())
                            x["top1_correct"] += int((refs["memwall"].argmax(axis=1) ==
                                                      target).sum())
                    elif eng in refs or (eng == NOROT and "llama.cpp" in refs):
                        ref = refs[eng if eng in refs else "llama.cpp"]
                        s["kl"].extend((np.exp(ref) * (ref - lp)).sum(axis=1).tolist())
                        s["top1_agree"] += int((lp.argmax(axis=1) == ref.argmax(axis=1)).sum())
                log(f"(b) quality window {w + 1}/{n_windows}: " + ", ".join(
                    f"{e} {t} ppl {math.exp(statistics.fmean(acc[(e, t)]['nll'])):.3f}"
                    for e, t in runs if acc[(e, t)]["nll"]))
    finally:
        for p in llama.values():
            p.kill()
    res = {"windows": n_windows, "window_tokens": W, "scored_per_window": W - 1 - first,
           "text": os.path.relpath(TEXT, os.path.dirname(ROOT)), "text_chars": a.text_chars,
           "bos": bos, "commands": cmds, "types": {}}
    for eng in engines:
        if eng == NOROT:
            runs_ = {"f16": acc[("llama.cpp", "f16")]}
            runs_.update({t: acc[(eng, t)] for t in quantized})
            stats = quality_stats(runs_, "f16")
            stats.pop("f16", None)
            res["llama_norot_types"] = stats
        else:
            stats = quality_stats({t: acc[(eng, t)] for t in types}, "f16")
            res["types" if eng == "memwall" else "llama_types"] = stats
    if "llama.cpp" in engines:
        # KL(llama.cpp f16 || memwall f16): memwall's f16 path against llama.cpp's.
        both = {"llama.cpp f16": acc[("llama.cpp", "f16")],
                "memwall f16": acc[("llama.cpp f16 vs", "memwall f16")]}
        res["memwall_vs_llama_f16"] = quality_stats(both, "llama.cpp f16").get("memwall f16")
    return res


# ---------------------------------------------------------------- report

def mib(b):
    return f"{b / 2**20:,.1f} MiB"


def human(b):
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= div:
            return f"{b / div:.1f} {unit}"
    return f"{b:.0f} B"


def fmt_s(s, scale=1.0, digits=1):
    return (f"{s['median'] * scale:.{digits}f} ({s['min'] * scale:.{digits}f}–"
            f"{s['max'] * scale:.{digits}f})")


def plot(path, data, n_gen):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    sc = data.get("scaling", {}).get("result")
    if sc:
        pts = sc["points"]
        n = [p["n"] for p in pts]
        ax = axes[0][0]
        for phase, ls in (("prefill", "-"), ("decode", "--")):
            for kind, color in (("flash", "tab:blue"), ("materialized", "tab:red")):
                ax.plot(n, [p[phase][kind]["planned_bytes"] for p in pts], ls, color=color,
                        marker="o", label=f"{kind}, {phase}")
        H = sc["shape"]["n_head"]
        ax.plot(n, [H * min(x, 512) * x * 4 for x in n], ":", color="tab:red",
                label="materialized scores, prefill in 512-token chunks (H x 512 x n)")
        ax.plot(n, [p["kv_bytes_model"] for p in pts], ":", color="gray", marker=".",
                label="KV cache of n tokens (30 layers, f16)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n (tokens)")
        ax.set_ylabel("attention scratch bytes (Forward::attention_bytes)")
        ax.set_title("(a) attention memory: materialized O(n²) prefill vs flash O(1)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax = axes[0][1]
        for phase, ls in (("prefill", "-"), ("decode", "--")):
            for kind, color in (("flash", "tab:blue"), ("materialized", "tab:red")):
                ax.plot(n, [p[phase][kind]["seconds"]["median"] * 1e3 for p in pts], ls,
                        color=color, marker="o", label=f"{kind}, {phase}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n (tokens)")
        ax.set_ylabel("ms per layer (median)")
        ax.set_title(f"(a) attention time, one layer, {sc['threads']} threads")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    dec = data.get("decode")
    if dec:
        ax = axes[1][0]
        colors = {"f32": "tab:purple", "f16": "tab:blue", "q8_0": "tab:green", "q4_0": "tab:orange"}
        for kv, res in dec.items():
            ctxs = [c for c in res["contexts"].values() if "memwall" in c]
            ax.plot([c["P"] for c in ctxs], [c["memwall"]["median"] for c in ctxs], "-o",
                    color=colors.get(kv), label=f"memwall {kv}")
            ctxs = [c for c in res["contexts"].values() if "llama" in c]
            if ctxs:
                ax.plot([c["P"] for c in ctxs], [c["llama"]["median"] for c in ctxs], "--s",
                        color=colors.get(kv), alpha=0.7, label=f"llama.cpp {kv}")
        ax.set_xlabel(f"context P (prompt tokens before the {n_gen} decoded)")
        ax.set_ylabel("decode tokens/s (median)")
        ax.set_yscale("log")
        ax.set_title("(b, d) decode speed vs context, flash attention")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    wr = data.get("waste", {}).get("result")
    if wr:
        ax = axes[1][1]
        runs = wr["runs"]
        labels = [r["label"] for r in runs]
        x = range(len(runs))
        avg = [100 * r["waste_time_avg"] for r in runs]
        peak = [100 * r["waste_at_peak_alloc"] for r in runs]
        ax.bar([i - 0.2 for i in x], avg, 0.4, label="time-averaged")
        ax.bar([i + 0.2 for i in x], peak, 0.4, label="at peak allocation")
        for i, v in enumerate(avg):
            ax.text(i - 0.2, v + 1, f"{v:.1f}%", ha="center", fontsize=8)
        ax.axhline(4, color="gray", ls=":", label="4% (vLLM's paged figure)")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels)
        ax.set_ylabel("KV waste = (allocated - used) / allocated, %")
        ax.set_title(f"(c) KV waste, {wr['sequences']} sequences, {wr['slots']} slots, f16")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(w, a, data):
    """The headline numbers, and what looked wrong, computed from this run's data."""
    w("## Summary")
    w("")
    sc = data.get("scaling", {}).get("result")
    if sc:
        last = sc["points"][-1]
        pm, pf = last["prefill"]["materialized"], last["prefill"]["flash"]
        w(f"- (a) One {last['n']}-token prefill, one layer: materialized attention holds "
          f"{human(pm['planned_bytes'])} of scores, flash {human(pf['planned_bytes'])} "
          f"whatever n; time {pm['seconds']['median'] * 1e3:.0f} vs "
          f"{pf['seconds']['median'] * 1e3:.0f} ms (flash/materialized "
          f"{pf['seconds']['median'] / pm['seconds']['median']:.2f}). Decode at position "
          f"{last['n']}: {human(last['decode']['materialized']['planned_bytes'])} vs "
          f"{human(last['decode']['flash']['planned_bytes'])}, "
          f"{last['decode']['materialized']['seconds']['median'] * 1e6:.0f} vs "
          f"{last['decode']['flash']['seconds']['median'] * 1e6:.0f} µs. The kernels agree "
          f"to {max(p['prefill']['max_abs_diff'] for p in sc['points']):.0e} (outputs of "
          "magnitude ~1).")
    dec, qual = data.get("decode"), data.get("quality")
    if dec:
        cells = []
        for kv, res in dec.items():
            r = [f"{c['P']}: {c['memwall']['median']:.1f} vs {c['llama']['median']:.1f} "
                 f"({c['ratio']:.2f}x)" for c in res["contexts"].values() if "ratio" in c]
            if r:
                cells.append(f"{kv} " + ", ".join(r))
        w("- (b, d) Decode tok/s, memwall vs llama.cpp (flash attention, same KV type), at "
          "context " + "; ".join(cells) + ".")
        slower = [(kv, c) for kv, res in dec.items() for c in res["contexts"].values()
                  if c.get("ratio", 9) < 1.0]
        for kv, c in slower:
            w(f"- **Looks wrong:** memwall decode with {kv} KV at {c['P']} tokens is slower than "
              f"llama.cpp's ({c['ratio']:.2f}x, every repetition pair "
              f"{c['pair_ratios']['min']:.2f}–{c['pair_ratios']['max']:.2f}x).")
        big = max(a.contexts)
        get = lambda kv: dec.get(kv, {}).get("contexts", {}).get(str(big), {}).get("memwall")  # noqa
        f16, f32 = get("f16"), get("f32")
        if f16 and f32 and f16["median"] < 1.1 * f32["median"]:
            w(f"- **Looks wrong:** at {big} tokens memwall decodes no faster with f16 KV "
              f"({f16['median']:.1f} tok/s) than with f32 ({f32['median']:.1f}), though f16 "
              "reads half the bytes and q8_0/q4_0 are faster ("
              + ", ".join(f"{t} {get(t)['median']:.1f}" for t in ("q8_0", "q4_0") if get(t))
              + "): the f16 path (f16 score tile, f16 value mix) looks compute-bound at long "
              "context, where llama.cpp's f16 is its fastest type.")
        pre = {kv: dec[kv]["contexts"].get(str(big), {}).get("memwall_prefill")
               for kv in dec}
        if pre.get("f16") and pre.get("q4_0"):
            w(f"- memwall prefill of {big} tokens (the bench's own, per repetition): "
              + ", ".join(f"{kv} {p['median']:.0f} tok/s" for kv, p in pre.items() if p)
              + "; quantized K/V prefill is slower than f16 at long context.")
    if qual:
        q = qual["types"]
        lt, ln = qual.get("llama_types", {}), qual.get("llama_norot_types", {})
        parts = [f"{t}: ΔPPL {q[t]['delta_ppl']:+.3f}, KL {q[t]['kl_mean']:.1e}, top-1 "
                 f"{q[t]['top1_agreement']:.1%}" for t in a.kv_types if t in q and "kl_mean" in q[t]]
        w(f"- (b) Quality vs f16 KV ({qual['types']['f16']['positions']} scored positions, "
          f"f16 PPL {q['f16']['ppl']:.3f}): " + "; ".join(parts) + ".")
        if "q4_0" in q and "q4_0" in lt and "q4_0" in ln:
            w(f"- 4-bit keys: memwall's q4_0 KL {q['q4_0']['kl_mean']:.3f} equals llama.cpp's "
              f"without its Hadamard rotation ({ln['q4_0']['kl_mean']:.3f}); with the rotation "
              f"(its default) llama.cpp gets {lt['q4_0']['kl_mean']:.3f}. A rotation of Q and K "
              "before a quantized cache (an orthogonal transform, scores unchanged) would cut "
              "memwall's 4-bit key error about threefold.")
        if "f32" in lt and lt["f32"].get("kl_mean", 1) == 0.0:
            w("- llama.cpp's f32 cache gives logits identical to its f16 cache (KL exactly 0): "
              "its CPU flash attention works at f16 precision, so f32 buys it nothing.")
    wr = data.get("waste", {}).get("result")
    if wr:
        p16 = next((r for r in wr["runs"] if r["block_tokens"] == 16), None)
        cont = next((r for r in wr["runs"] if r["label"] == "contiguous"), None)
        if p16 and cont:
            w(f"- (c) KV waste over {wr['sequences']} sequences: "
              + ", ".join(f"{r['label']} {r['waste_time_avg']:.1%}" for r in wr["runs"])
              + f" (time-averaged); blocks_in_use after the last sequence: "
              + ", ".join(str(r["blocks_in_use_at_end"]) for r in wr["runs"]) + ".")
    w(f"- Run time {data['seconds'] / 60:.1f} min ("
      + ", ".join(f"{k} {v / 60:.1f}" for k, v in data.get("timing", {}).items())
      + "): most of it is `memwall bench` prefilling its prompt again for every decode "
      "repetition (8000 tokens take 50-90 s).")
    w("")


def write_report(path, a, data):
    L = []
    w = L.append
    m = data["machine"]
    w("# Attention and KV cache: benchmarks (issue 5)")
    w("")
    w(f"Measured {m['date']} at commit {m['commit']}, in {data['seconds'] / 60:.1f} min"
      + (" (--quick: a smoke run, not the numbers to quote)" if a.quick else "") + ". "
      "Binaries (copied at the start, so a rebuild during the run cannot mix versions): "
      + ", ".join(f"`{k}` built {v}" for k, v in data.get("binary_mtimes", {}).items()) + ".")
    w("")
    w(f"Machine: {m['cpu']}, {m['physical_cores']} cores ({m['logical_cpus']} logical CPUs), "
      f"L3 {m['l3']}, {m['memory_bytes'] / 2**30:.0f} GiB, {m['kernel']}; "
      f"SIMD: {' '.join(m['flags'])}. The machine is shared with other jobs: the decode "
      "comparisons are measured side by side (alternating repetitions) and given as ratios "
      "with their spread; `outside load` is the CPUs' worth of work by other processes during "
      "a repetition.")
    w("")
    w("Command:")
    w("")
    w("    " + data["command"])
    w("")
    w(f"Model: `{os.path.relpath(a.model, ROOT)}` (SmolLM2-135M-Instruct, 30 layers, H 9, Hkv 3, "
      "D 64, trained context 8192), threads 2 for every engine.")
    w("")

    summary(w, a, data)

    # (a)
    sc = data.get("scaling", {}).get("result")
    if sc:
        w("## (a) Attention scratch memory and time vs sequence length")
        w("")
        w(f"`{show(data['scaling']['cmd'])}`: one layer of the default model's attention as "
          "`Forward::attention` runs it (f16 K/V in a KvPool of 16-token blocks, random values; "
          f"{sc['threads']} threads of memwall's ThreadPool; ISA {sc['isa']}). Prefill: one "
          "pass of n tokens at position 0, work items (16-token block, KV head) with each "
          "token's 3 query heads of that KV head gathered into one 48-query block (each K/V "
          "page read once per group); materialized scores H x n x n floats. Decode: one step at "
          "position n (n + 1 keys), the 3 query heads of each KV head as one block (flash "
          "splits each KV head's keys into "
          f"{max(p['decode']['flash_key_parts'] for p in sc['points'])} page-aligned parts "
          "once there are enough keys, merged afterwards, as the engine does). Bytes = `Forward::attention_bytes(spec, batch, ctx, 2, kind)` with "
          "batch = ctx = n for the prefill and batch 1, ctx n + 1 for the decode step; the "
          "bench allocated exactly these buffers (checked: allocated == planned). Time = "
          f"median of {sc['reps']} repetitions (decode: >= 9, each the mean of many calls), "
          "kernels alternated; ms per layer (the model has 30). The buffers are allocated "
          "once per n, as a Forward allocates them, so the first repetition also pays the "
          "page faults of the materialized score matrix (the maxima in the table).")
        w("")
        w("| n | prefill scratch, materialized | prefill scratch, flash | decode scratch, "
          "materialized | decode scratch, flash | KV cache of n tokens (30 layers, f16) | "
          "prefill ms, materialized | prefill ms, flash | flash / materialized time | "
          "decode µs, materialized | decode µs, flash | max abs diff (prefill, decode) |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for p in sc["points"]:
            pf, pm = p["prefill"]["flash"], p["prefill"]["materialized"]
            df, dm = p["decode"]["flash"], p["decode"]["materialized"]
            ok = all(e["planned_bytes"] == e["allocated_bytes"] for e in (pf, pm, df, dm))
            w(f"| {p['n']} | {human(pm['planned_bytes'])} | {human(pf['planned_bytes'])} | "
              f"{human(dm['planned_bytes'])} | {human(df['planned_bytes'])} | "
              f"{human(p['kv_bytes_model'])} | {fmt_s(pm['seconds'], 1e3)} | "
              f"{fmt_s(pf['seconds'], 1e3)} | "
              f"{pf['seconds']['median'] / pm['seconds']['median']:.2f} | "
              f"{fmt_s(dm['seconds'], 1e6)} | {fmt_s(df['seconds'], 1e6)} | "
              f"{p['prefill']['max_abs_diff']:.1e}, {p['decode']['max_abs_diff']:.1e}"
              + ("" if ok else " (allocated != planned!)") + " |")
        w("")
        first, last = sc["points"][0], sc["points"][-1]
        grow = lambda k, ph: last[ph][k]["planned_bytes"] / first[ph][k]["planned_bytes"]  # noqa
        ratio = last["n"] / first["n"]
        w(f"From n = {first['n']} to {last['n']} ({ratio:.0f}x): materialized prefill scratch "
          f"grows {grow('materialized', 'prefill'):,.0f}x (n², "
          f"{human(last['prefill']['materialized']['planned_bytes'])} at {last['n']}, "
          f"{last['prefill']['materialized']['planned_bytes'] / last['kv_bytes_model']:.1f}x "
          "the whole model's f16 KV cache for those tokens), flash prefill scratch "
          f"{grow('flash', 'prefill'):.0f}x (constant, "
          f"{human(last['prefill']['flash']['planned_bytes'])}); decode: materialized "
          f"{grow('materialized', 'decode'):.1f}x (n), flash {grow('flash', 'decode'):.0f}x. "
          "Prefill time grows about n² for both kernels "
          f"({last['prefill']['flash']['seconds']['median'] / first['prefill']['flash']['seconds']['median']:,.0f}x "
          f"flash, {last['prefill']['materialized']['seconds']['median'] / first['prefill']['materialized']['seconds']['median']:,.0f}x "
          "materialized): flash recomputes nothing here and saves the memory at no cost in "
          f"time. Attention arithmetic rate at n = {last['n']}: flash "
          f"{last['prefill']['flash']['gflops']:.0f} GFLOP/s, materialized "
          f"{last['prefill']['materialized']['gflops']:.0f} GFLOP/s (2 threads; causal "
          "multiply-adds of QK and PV x 2).")
        w("")
        w("In the engine the prefill runs in chunks of `-b` tokens (512 by default), so its "
          "materialized scores are H x 512 x ctx floats, linear in the context "
          f"({human(9 * 512 * 8064 * 4)} at ctx 8064) rather than H x n x n; the planner books "
          "whichever the run uses under the ledger's `attention` category.")
        w("")

    # (b)
    dec, qual = data.get("decode"), data.get("quality")
    w("## (b) Per KV type: bytes per token, decode speed at long context, quality")
    w("")
    f = data["facts"]
    w("| KV type | bytes/token (memwall bench) | bytes/token (llama.cpp, from ggml block sizes) "
      "| KV cache at 8192 tokens (memwall) |")
    w("| --- | ---: | ---: | ---: |")
    for kv in a.kv_types:
        bpt = None
        for c in (dec or {}).get(kv, {}).get("contexts", {}).values():
            if "memwall_summary" in c:
                bpt = c["memwall_summary"]["kv_bytes_per_token"]
        llb = f["n_layer"] * 2 * f["n_head_kv"] * f["head_dim"] * ELEMENT_BYTES[kv]
        w(f"| {kv} | {f'{bpt:,}' if bpt else '?'} | {llb:,.0f} | "
          f"{human(bpt * 8192) if bpt else '?'} |")
    w("")
    if qual:
        w("### Quality cost against f16 KV (perplexity protocol)")
        w("")
        w("| KV type | memwall PPL | memwall ΔPPL vs f16 (± s.e.) | memwall mean KL(f16 ‖ T) "
          "(± s.e.) | KL p99 | top-1 agreement with f16 | llama.cpp PPL | llama.cpp ΔPPL vs "
          "its f16 | llama.cpp mean KL(f16 ‖ T) | llama.cpp top-1 agreement | llama.cpp "
          "without rotation: PPL | ΔPPL | mean KL | top-1 agreement |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: | ---: |")
        for kv in a.kv_types:
            cells = [kv]
            for eng, key in (("memwall", "types"), ("llama.cpp", "llama_types"),
                             (NOROT, "llama_norot_types")):
                q = qual.get(key, {}).get(kv)
                n_cells = 5 if eng == "memwall" else 4
                if not q:
                    cells += ["" if eng == NOROT and not kv.startswith("q") else
                              "not measured"] + [""] * (n_cells - 1)
                    continue
                cells.append(f"{q['ppl']:.3f} ± {q['ppl_stderr']:.3f}")
                if "kl_mean" not in q:
                    cells += ["(reference)"] + [""] * (n_cells - 2)
                    continue
                se_ppl = q["ppl"] * q["delta_nll_stderr"]
                if eng == "memwall":
                    cells += [f"{q['delta_ppl']:+.4f} ± {se_ppl:.4f}",
                              f"{q['kl_mean']:.2e} ± {q['kl_stderr']:.1e}",
                              f"{q['kl_p99']:.2e}", f"{q['top1_agreement']:.2%}"]
                else:
                    cells += [f"{q['delta_ppl']:+.4f} ± {se_ppl:.4f}", f"{q['kl_mean']:.2e}",
                              f"{q['top1_agreement']:.2%}"]
            w("| " + " | ".join(cells) + " |")
        w("")
        mv = qual.get("memwall_vs_llama_f16")
        w(f"{qual['windows']} windows of {qual['window_tokens']} tokens of `{qual['text']}` "
          f"(first {qual['text_chars']:,} characters, tokenized by `memwall tokenize --no-bos`; "
          "the model adds no BOS"
          + (f", BOS {qual['bos']} put at each window's start" if qual["bos"] is not None else "")
          + f"), each window its own sequence; scored: the second half, "
          f"{qual['scored_per_window']} positions per window, "
          f"{qual['types']['f16']['positions']} in all. memwall: "
          f"`{qual['commands'].get('memwall f16', '')}` (and each --kv-type): one forward pass "
          "of the whole window, so every query reads K/V that went through the cache type. "
          "llama.cpp: the same windows as one batch through `bench/llama_longctx.py` "
          "(`logits` command; flash attention on, type_k = type_v = T), KL against its own f16 "
          "run. This llama.cpp rotates Q, K and V by a Hadamard transform before a quantized "
          "cache (llama.cpp PR #21038, on by default for quantized K/V types): the scores are "
          "unchanged in exact arithmetic, the outlier channels of K are spread over the block "
          "before 4-bit rounding. memwall does not rotate; `llama.cpp without rotation` is the "
          "same run with `LLAMA_ATTN_ROT_DISABLE=1`, the like-for-like comparison. KL in nats per position, mean over positions; s.e. = standard error over "
          "positions (paired for ΔPPL). Top-1 agreement: the argmax equals the f16 run's."
          + (f" memwall f16 against llama.cpp f16 on the same positions: mean KL(llama.cpp ‖ "
             f"memwall) {mv['kl_mean']:.2e}, top-1 agreement {mv['top1_agreement']:.2%}, "
             f"PPL {mv['ppl']:.3f} vs {qual['llama_types']['f16']['ppl']:.3f}."
             if mv and "kl_mean" in mv else ""))
        w("")
    if dec:
        w("### Decode tokens/s at long context (flash attention), memwall vs llama.cpp")
        w("")
        any_ctx = next(iter(next(iter(dec.values()))["contexts"].values()))
        if "memwall_cmd" in any_ctx:
            w(f"memwall: `{show(any_ctx['memwall_cmd'])}` (P and the KV type varied; each "
              f"repetition prefills the P-token prompt, then decodes {a.n_gen} tokens one at a "
              "time). "
              "llama.cpp: `" + show(next(iter(dec.values())).get("llama_cmd", ["(not run)"]))
              + f"` driven by `{a.llama_fill} P` / `decode {a.n_gen}` commands: one process per "
              "KV type, its cache extended from one P to the next; each repetition decodes "
              f"{a.n_gen} tokens from position P and removes them again, so all start at P. "
              "Same prompt tokens (memwall bench's splitmix64 ids, seed 42), argmax fed back. "
              "Values: median (min–max) over repetitions, memwall and llama.cpp alternating "
              "(memwall first on even repetitions).")
            w("")
            if a.llama_fill == "fill":
                chk = [(kv, c) for kv, r in dec.items() for c in r["contexts"].values()
                       if "llama_prefilled" in c and "llama" in c]
                w("A real llama.cpp prefill of 8000 tokens costs minutes per KV type on this "
                  "machine (its flash-attention prefill with a quantized cache runs at 25-90 "
                  "tok/s here), so the llama.cpp cache is filled with `fill P`: 512-token "
                  "chunks, each its own sequence (attending only to itself), whose cells are "
                  "then given to the decoding sequence. Every decode step reads all P cells of "
                  "type T as after a real prefill; only their values differ, which a decode's "
                  "cost does not depend on. Check in this run, at the first context, against a "
                  "second llama.cpp process that really prefilled the prompt (decode tok/s, "
                  "median over the same alternating repetitions): "
                  + "; ".join(f"{kv} at {c['P']}: filled {c['llama']['median']:.1f}, "
                              f"prefilled {c['llama_prefilled']['median']:.1f} "
                              f"({c['llama']['median'] / c['llama_prefilled']['median']:.2f}x)"
                              for kv, c in chk) + ".")
                w("")
        w("| KV type | context P | memwall decode tok/s | llama.cpp decode tok/s | memwall / "
          "llama.cpp (median) | per-pair ratio range | memwall prefill tok/s of P tokens | "
          "memwall peak RSS | llama.cpp peak RSS | outside load (median, max CPUs) |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kv, res in dec.items():
            for c in res["contexts"].values():
                if "memwall" not in c:
                    w(f"| {kv} | {c['P']} | error: {c.get('memwall_error', '?')[:200]} | | | | "
                      "| | | |")
                    continue
                ll = fmt_s(c["llama"]) if "llama" in c else (
                    "error" if "llama_error" in c or "llama_error" in res else "not run")
                ratio = f"{c['ratio']:.2f}x" if "ratio" in c else ""
                pr = (f"{c['pair_ratios']['min']:.2f}–{c['pair_ratios']['max']:.2f}"
                      if "pair_ratios" in c else "")
                ll_rss = ""
                lp = [p["llama"]["peak_rss_bytes"] for p in c["pairs"] if "llama" in p]
                if lp:
                    ll_rss = mib(max(lp))
                load = c.get("outside_load")
                w(f"| {kv} | {c['P']} | {fmt_s(c['memwall'])} | {ll} | {ratio} | {pr} | "
                  f"{fmt_s(c['memwall_prefill'], digits=0)} | "
                  f"{mib(c['memwall_summary']['peak_rss_bytes'])} | {ll_rss} | "
                  + (f"{load['median']:.2f}, {load['max']:.2f}" if load else "") + " |")
        w("")
        disc = [(kv, c["P"], d) for kv, r in dec.items() for c in r["contexts"].values()
                for p in c.get("pairs", []) for k in ("llama_discarded", "llama_prefilled_discarded")
                for d in p.get(k, [])]
        busy_mw = [(kv, c["P"], p["memwall"]) for kv, r in dec.items()
                   for c in r["contexts"].values() for p in c.get("pairs", [])
                   if "memwall" in p and p["memwall"]["outside_load_cpus"] > a.quiet_threshold]
        w(f"Before each repetition the harness waited (up to {a.quiet_wait:.0f} s) for other "
          f"processes to use less than {a.quiet_threshold} CPUs. A llama.cpp repetition during "
          f"which they used more was redone (up to {a.retries} times): {len(disc)} were redone"
          + (" (their speeds, tok/s at outside load in CPUs: " + ", ".join(
              f"{kv}@{P} {d['decode_tokens_per_s']:.1f} at {d['outside_load_cpus']:.2f}"
              for kv, P, d in disc[:12]) + ("…" if len(disc) > 12 else "") + ")"
             if disc else "")
          + ". memwall repetitions (a full prefill each) were not redone; "
          f"{len(busy_mw)} of them ran while other processes used more than "
          f"{a.quiet_threshold} CPUs"
          + (": " + ", ".join(f"{kv}@{P} ({m['outside_load_cpus']:.2f})"
                              for kv, P, m in busy_mw[:12]) if busy_mw else "") + ".")
        w("")
        notes = []
        for kv, res in dec.items():
            if "llama_error" in res:
                notes.append(f"- llama.cpp with KV {kv}: {res['llama_error'][:300]}")
            for c in res["contexts"].values():
                if "llama_error" in c:
                    notes.append(f"- llama.cpp with KV {kv} at {c['P']}: {c['llama_error'][:300]}")
        if notes:
            w("llama.cpp errors:")
            w("")
            L.extend(notes)
            w("")
        w("llama.cpp's context has n_ctx = "
          f"{a.llama_ctx} cells for every P (its flash attention reads the used cells, padded "
          "to 256, not all of them); memwall's has P + 64. llama.cpp peak RSS is the whole "
          "process's after its longest context, since one process serves every P of a type.")
        w("")

    # (c)
    wr = data.get("waste", {}).get("result")
    if wr:
        w("## (c) KV memory waste over a mixed-length workload")
        w("")
        pt, gt = wr["prompt_tokens"], wr["generated_tokens"]
        w(f"`{show(data['waste']['cmd'])}`: {wr['requests']} requests, {wr['sequences']} "
          f"sequences (a share {wr['fork_share']:.0%} of requests forked into 2 samples after "
          f"the prompt), seed {wr['seed']}: prompt tokens log-uniform in [16, 2048] (median "
          f"{pt['median']:.0f}, mean {pt['mean']:.0f}, max {pt['max']:.0f}), generated tokens "
          f"log-uniform in [16, 512] per sample (median {gt['median']:.0f}, mean "
          f"{gt['mean']:.0f}). KvPool of the default model's shape, f16 "
          f"({wr['bytes_per_token']:,} bytes per token), at most {wr['slots']} live sequences; "
          "a request starts when slots are free, its prompt is cached in one step, then every "
          "live sequence grows one token per step. After every step: allocated = blocks held "
          "by live sequences (`blocks_in_use`) x block bytes; used = distinct cached positions "
          "x bytes per token (a forked prompt counted once); waste = (allocated - used) / "
          f"allocated. Contiguous = one block of {wr['max_ctx']} tokens (the context limit) "
          "per sequence, reserved up front and copied whole on a fork's first write.")
        w("")
        w("| layout | block bytes | waste, time-averaged | waste at peak allocation | "
          "max per-step waste (>= half the slots live) | peak allocated | peak used | "
          "blocks shared by forks (at fork; peak at once) | COW copies | blocks_in_use "
          "after the last sequence | held incl. prefix cache, peak |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in wr["runs"]:
            w(f"| {r['label']} | {human(r['block_bytes'])} | {r['waste_time_avg']:.2%} | "
              f"{r['waste_at_peak_alloc']:.2%} | {r['waste_max_steady']:.2%} | "
              f"{mib(r['peak_alloc_bytes'])} | {mib(r['peak_used_bytes'])} | "
              f"{r['fork_shared_blocks_at_fork']:,}; {r['peak_shared_blocks']:,} | "
              f"{r['end']['cow_copies']} | {r['blocks_in_use_at_end']}"
              + (" (leak-free)" if r["leak_free"] else " (LEAK)") + " | "
              f"{mib(r['peak_held_incl_cache_bytes'])} |")
        w("")
        p16 = next((r for r in wr["runs"] if r["block_tokens"] == 16), None)
        cont = next((r for r in wr["runs"] if r["label"] == "contiguous"), None)
        if p16 and cont:
            w(f"With 16-token blocks (the engine's default) the waste is "
              f"{p16['waste_time_avg']:.1%} on average (target < 4%), against "
              f"{cont['waste_time_avg']:.1%} for contiguous reservation; the peak KV memory "
              f"is {mib(p16['peak_alloc_bytes'])} instead of {mib(cont['peak_alloc_bytes'])} "
              f"({cont['peak_alloc_bytes'] / p16['peak_alloc_bytes']:.1f}x less). Contiguous "
              "waste depends on the reservation against the lengths: here sequences average "
              f"~{pt['mean'] + gt['mean']:.0f} tokens of a {wr['max_ctx']}-token reservation, "
              "more than the 60-80% vLLM reports for its workloads.")
            w("")
        w("Every pool ended with `blocks_in_use` = 0, no live sequence and 0 positions; "
          "`held incl. prefix cache` counts in addition the full blocks of ended sequences that "
          "the LRU prefix cache keeps (unreferenced, evicted first whenever a block is needed; "
          "the pool's capacity here is the contiguous layout's memory, so the cache fills it "
          "over the run); the ledger's `kv` category returned to 0 when each pool was "
          "destroyed: "
          + ", ".join(f"{r['label']} {r['ledger_kv_bytes_after_pool']}" for r in wr["runs"])
          + " bytes.")
        w("")

    w("## Raw data")
    w("")
    w("`bench/results/attention.json` holds every sample; the plot is `attention.png`.")
    w("")
    w("![attention](attention.png)")
    w("")
    text = "\n".join(L)
    for copy, orig in data.get("snapshots", {}).items():
        text = text.replace(copy, orig)
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memwall", default=os.path.join(ROOT, "build", "memwall"))
    ap.add_argument("--kvbench", default=os.path.join(ROOT, "build", "memwall_kv_attention_bench"))
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--python", default=sys.executable, help="interpreter with llama_cpp")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: short contexts, 1 rep, 2 quality windows, n <= 1024")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--kv-types", default=",".join(KV_TYPES))
    ap.add_argument("--contexts", default="1000,4000,8000", help="prompt tokens P")
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("-n", "--n-gen", type=int, default=32)
    ap.add_argument("--mem", default="4GiB")
    ap.add_argument("--llama-ctx", type=int, default=8192)
    ap.add_argument("--llama-fill", choices=["fill", "prefill"], default="fill",
                    help="how llama.cpp's long prompt gets into its cache before the decode "
                         "repetitions (see bench/llama_longctx.py)")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--text-chars", type=int, default=120_000)
    ap.add_argument("--scaling-reps", type=int, default=5)
    ap.add_argument("--scaling-max-n", type=int, default=8192)
    ap.add_argument("--requests", type=int, default=224)
    ap.add_argument("--quiet-wait", type=float, default=45.0,
                    help="seconds to wait, before each repetition, for other processes to "
                         "use less than --quiet-threshold CPUs")
    ap.add_argument("--quiet-threshold", type=float, default=0.5)
    ap.add_argument("--retries", type=int, default=2,
                    help="llama.cpp decode repetitions redone when the machine was busy")
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--skip", default="", help="comma list of: scaling,decode,quality,waste")
    ap.add_argument("--out-dir", default=None,
                    help="default: bench/results (a --quick run: build-bench/attention-quick)")
    ap.add_argument("--logdir", default=os.path.join(ROOT, "build-bench", "logs", "attention"))
    ap.add_argument("--from-json", metavar="ATTENTION_JSON",
                    help="rewrite the report and plot from a previous run's JSON")
    a = ap.parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            data = json.load(f)
        out_dir = a.out_dir or os.path.dirname(os.path.abspath(a.from_json))
        src = a.from_json
        a = argparse.Namespace(**data["args"])
        plot(os.path.join(out_dir, "attention.png"), data, a.n_gen)
        write_report(os.path.join(out_dir, "attention.md"), a, data)
        log(f"rewrote {os.path.join(out_dir, 'attention.md')} from {src}")
        return
    if a.quick:
        a.contexts, a.reps, a.n_gen, a.windows = "300,600", 1, 8, 2
        a.scaling_reps, a.scaling_max_n, a.quiet_wait = 2, 1024, 0
        a.llama_ctx = 1024
    a.kv_types = [t for t in a.kv_types.split(",") if t]
    a.contexts = [int(x) for x in a.contexts.split(",") if x]
    if a.out_dir is None:
        a.out_dir = os.path.join(ROOT, "build-bench", "attention-quick") if a.quick else \
            os.path.join(ROOT, "bench", "results")
    skip = set(a.skip.split(","))
    for path in (a.memwall, a.kvbench, a.model):
        if not os.path.exists(path):
            sys.exit(f"error: {path} is missing (cmake --build build --target memwall "
                     "memwall_kv_attention_bench; make model)")
    os.makedirs(a.out_dir, exist_ok=True)
    os.makedirs(a.logdir, exist_ok=True)
    # Run copies of the binaries: a rebuild of build/ during the run must not mix versions.
    bindir = os.path.join(a.logdir, "bin")
    os.makedirs(bindir, exist_ok=True)
    snapshots = {}
    for attr in ("memwall", "kvbench"):
        src = getattr(a, attr)
        dst = os.path.join(bindir, os.path.basename(src))
        shutil.copy2(src, dst)
        snapshots[show([dst])] = show([src])
        setattr(a, attr, dst)
    data = {"machine": machine(), "facts": gguf_facts(a.model), "snapshots": snapshots,
            "binary_mtimes": {v: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(
                os.path.getmtime(os.path.join(ROOT, v)))) for v in snapshots.values()},
            "command": show([".venv/bin/python", "bench/attention.py"] +
                                                  sys.argv[1:]), "args": vars(a)}
    log("machine:", data["machine"]["cpu"], data["machine"]["date"])
    timing = {}
    for name, fn in (("scaling", lambda: scaling(a)), ("waste", lambda: waste(a)),
                     ("quality", lambda: quality(a, a.logdir)),
                     ("decode", lambda: decode_speed(a, a.logdir))):
        if name in skip:
            continue
        t = time.monotonic()
        try:
            data[name] = fn()
        except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as e:
            data[name + "_error"] = str(e)
            log(f"{name}: error: {e}")
        timing[name] = time.monotonic() - t
        log(f"{name} done in {timing[name]:.0f} s")
    data["timing"] = timing
    data["seconds"] = time.monotonic() - T0
    with open(os.path.join(a.out_dir, "attention.json"), "w") as f:
        json.dump(data, f, indent=1)
    plot(os.path.join(a.out_dir, "attention.png"), data, a.n_gen)
    write_report(os.path.join(a.out_dir, "attention.md"), a, data)
    log(f"wrote {os.path.join(a.out_dir, 'attention.md')} ({data['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
