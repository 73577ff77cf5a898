#!/usr/bin/env python3
"""Size / quality / speed frontier of memwall's quantization types (issue 6); writes
bench/results/quant.md, quant.png and quant.json.

Base: the default model (SmolLM2-135M-Instruct.Q4_1.gguf) decoded to f32 by `memwall quantize
--type f32`. No unquantized SmolLM2 GGUF ships on PyPI, so this is the only base at hand: its
matrices sit on a q4_1 grid (token_embd on q8_0), which makes requantizing to q4_1 nearly
lossless and favours q4_1 (and q4_1-shaped fallbacks).

Texts (WikiText-2 raw test, ../shared/data): calibration = the LAST --calib-bytes bytes of
wiki.test.raw; evaluation = the FIRST --eval-bytes bytes (disjoint from the calibration text).

Per variant:
  memwall quantize BASE VARIANT --type T [--calib CALIB --calib-chunks 16] [--rotate hadamard]
      --json                        -> bytes, bits per weight (all weights incl. embeddings)
  memwall perplexity -m VARIANT -f EVAL --ctx 512 --chunks N --precision exact
      --kl-base base.lp --json      -> PPL, mean KL(base || variant), top-1 agreement
      (w8a8: --precision fast, which runs its per-token int8 activations)
  memwall bench -m VARIANT -p 128 -n 32 -r 3 --json   -> decode/prefill tok/s, peak RSS
Recipes: plain; calib (importance matrix; skipped when the quantize output has no
"(imatrix)" line, i.e. the type has no weighted quantizer and calib == plain; the calibration
statistics of the base are computed once with --save-imatrix and reused with --imatrix, which
is the same thing as --calib); rotate (--rotate hadamard); rotate+calib (types of 4 bits and
below; --calib each time since the statistics are taken in the rotated basis); smooth
(w8a8 only: --smooth 0.5 --calib, SmoothQuant's migration before per-token int8).
llama.cpp: q4_0 and q4_1 made by llama.cpp's own quantizer (llama-cpp-python,
llama_model_quantize, default recipe: token_embd kept in a higher type) from the same base;
their bits per weight measured from the file; evaluated with memwall perplexity (same
protocol, same base logits, so KL is comparable). llama.cpp copies the base's
general.alignment (64) into its output but lays the data out at its default alignment (32);
the value is patched to 32 so that the file reads (noted in the report).

    .venv/bin/python bench/quant.py --memwall build/memwall [--chunks 8] [--speed subset]
    .venv/bin/python bench/quant.py --from-json bench/results/quant.json  # report only

--base stories260k: the frontier on a model that was never quantized, Karpathy's stories260K
(llama2.c f32 checkpoint in ../shared/data, converted with `memwall convert`), on TinyStories
text (../shared/data), context 256; writes quant-stories260k.{md,png,json}. The model is tiny
(dim 64, FFN 172: FFN down's rows are not a multiple of 32 and stay f16, and the f32 norms
weigh), so its files are far above 4.5 bits per weight; it is the fair check of memwall's
quantizers against llama.cpp's on the same types."""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from e2e_kernels import machine, show  # noqa: E402

DEFAULT_MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
BASES = {
    "default": {
        "tag": "", "title": "SmolLM2-135M (base: Q4_1 decoded to f32)",
        "base": "`models/SmolLM2-135M-Instruct.Q4_1.gguf` decoded to f32 (`memwall quantize "
                "MODEL base-f32.gguf --type f32`). No unquantized SmolLM2 model ships on PyPI "
                "(searched), so this is the base. **Caveat**: its matrices sit on a q4_1 grid "
                "(token_embd on q8_0), so requantizing to q4_1 is nearly lossless and favours "
                "q4_1 (and the types that fall back to q4_1).",
        "text": "WikiText-2 raw `wiki.test.raw`"},
    "stories260k": {
        "tag": "-stories260k", "title": "stories260K (f32, never quantized)",
        "llama2c": os.path.join(SHARED, "llama2c-stories260k", "stories260K.bin"),
        "tokenizer": os.path.join(SHARED, "llama2c-stories260k", "tok512.bin"),
        "text_path": os.path.join(SHARED, "text", "tinystories", "tinystories_sample.txt"),
        "base": "Karpathy's stories260K, an f32 llama2.c checkpoint never quantized "
                "(`../shared/data/llama2c-stories260k`, converted by `memwall convert`): dim "
                "64, FFN 172, 5 layers, 8 heads / 4 KV heads, vocabulary 512. FFN down's rows "
                "(172) are not a multiple of any block, so every type keeps them in f16, and "
                "the f32 norms are 0.3% of the weights: files are far above 4.5 bits per "
                "weight, and this base is the fair same-type comparison with llama.cpp's "
                "quantizer, not the 4.5-bit headline.",
        "text": "TinyStories (`tinystories_sample.txt`)"},
    "trained": {
        "tag": "-trained", "title": "TinyStories 3.3M (f32, trained here)",
        "train": os.path.join(ROOT, "bench", "train_tiny_llama.py"),
        "tokenizer": os.path.join(SHARED, "llama2c-stories260k", "tok512.bin"),
        "text_path": os.path.join(SHARED, "text", "tinystories", "tinystories_sample.txt"),
        "eval_bytes": 100_000,
        "base": "a Llama model trained from scratch in f32 for this benchmark "
                "(`bench/train_tiny_llama.py`, PyTorch, seed 1; never quantized): dim 256, "
                "FFN 768, 4 layers, 8 heads / 4 KV heads, stories260K's 512-token vocabulary, "
                "3.28M parameters, trained on the middle of the TinyStories sample (the "
                "evaluation and calibration text below are held out). Every row is a multiple "
                "of 256, so every type (k-quants included) and the Hadamard rotation apply to "
                "every matrix, and the tied embedding is 4% of the weights: the fair test of "
                "the 4.5-bit headline that the other two bases cannot give.",
        "text": "TinyStories (`tinystories_sample.txt`)"},
}
TEXT = os.path.join(os.path.dirname(ROOT), "shared", "data", "text", "wikitext-2-raw",
                    "wiki.test.raw")
TYPES = ["w8a8", "q8_0", "q6_k", "q5_k", "q4_k", "q4_1", "q4_0", "nf4", "nf4_dq", "q3_g64", "q2_g64",
         "tq2_0", "tq1_0"]
# Types of 4 bits and below: these also get rotate + calib.
LOW = {"q4_k", "q4_1", "q4_0", "nf4", "nf4_dq", "q3_g64", "q2_g64", "tq2_0", "tq1_0"}
RECIPES = ["plain", "calib", "rotate", "rotate+calib", "smooth", "calib+embd8", "smooth+embd8",
           "calib+bpw4.5", "calib+embd6+bpw4.5", "calib+embd6+bpw4"]
# calib+bpwB: `--max-bpw B` (the whole file within B bits per weight, each matrix's type chosen
# from the default --mix by its importance-weighted loss), for the k-quant target only;
# +embd6: the output head (the tied embedding) kept in q6_k first, llama.cpp's rule, since
# the mixer weighs every matrix's relative error alike and the head's reaches the logits whole.
BUDGET_TYPES = {"q4_k"}
# calib+embd8: llama.cpp's default recipe with memwall's quantizer (token_embd, the tied
# output head, kept in q8_0), for the types llama.cpp's files are compared with.
EMBD8_TYPES = {"q4_0", "q4_1", "nf4", "nf4_dq"}
# W8A8: int8 activations per token are the type's definition, so it is evaluated at the
# precision that runs them (fast); only it gets SmoothQuant's migration (smooth), and it
# gets rotation (QuaRot's other use: spreading activation outliers) but not importance.
ACTIVATION_TYPES = {"w8a8"}
SPEED_SUBSET = ["w8a8", "q8_0", "q4_0", "q4_k", "nf4", "q3_g64", "q2_g64", "tq2_0"]
LLAMA_TYPES = ["q4_0", "q4_1"]
# GGUF's own types: llama.cpp runs memwall's files of them, so their speed is compared on the
# same file (the kernels issue's standard).
GGUF_STANDARD = {"q8_0", "q6_k", "q5_k", "q4_k", "q4_1", "q4_0", "tq2_0", "tq1_0"}
EVAL_BYTES = 600_000
T0 = time.monotonic()


def log(*a):
    print(f"[quant {time.monotonic() - T0:6.0f}s]", *a, file=sys.stderr, flush=True)


def run(cmd, logf=None):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if logf:
        with open(logf, "a") as f:
            f.write(f"$ {show(cmd)}\n{r.stderr}\n")
    if r.returncode != 0:
        raise RuntimeError(f"{show(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def file_bpw(path):
    """Bits per weight of every tensor of a GGUF file (incl. embeddings and norms)."""
    from gguf import GGUFReader
    r = GGUFReader(path)
    nbytes = sum(int(t.n_bytes) for t in r.tensors)
    n = sum(int(t.n_elements) for t in r.tensors)
    types = {}
    for t in r.tensors:
        e = types.setdefault(t.tensor_type.name.lower(), {"tensors": 0, "weights": 0,
                                                         "bytes": 0})
        e["tensors"] += 1
        e["weights"] += int(t.n_elements)
        e["bytes"] += int(t.n_bytes)
    return {"tensor_bytes": nbytes, "weights": n, "bits_per_weight": 8 * nbytes / n,
            "types": types}


def fix_alignment(path):
    """llama.cpp's quantizer copies general.alignment from its input (memwall writes 64) but
    aligns its own output at 32 bytes; set the key to 32 so that the file is consistent."""
    from gguf import GGUFReader

    class Fields(GGUFReader):
        def _build_tensors(self, start_offs, fields):
            self.tensors = []

    r = Fields(path, "r+")
    f = r.fields.get("general.alignment")
    old = int(f.parts[-1][0]) if f else None
    if f and old != 32:
        f.parts[-1][0] = 32
        r.data.flush()
    del r
    return old


LLAMA_QUANTIZE = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + sys.argv[3].upper())
p.nthread = int(sys.argv[4])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(),
                                        ctypes.byref(p)))
"""


# ---------------------------------------------------------------- measurement

def evaluate(a, w, row, path):
    precision = "fast" if row.get("type") in ACTIVATION_TYPES else "exact"
    row["eval_precision"] = precision
    cmd = [a.memwall, "perplexity", "-m", path, "-f", w["eval"], "--ctx", str(a.ctx),
           "--chunks", str(a.chunks), "--precision", precision, "-t", str(a.threads),
           "--kl-base", w["base_lp"], "--json"]
    row["ppl_cmd"] = show(cmd)
    p = json.loads(run(cmd, w["log"]).stdout)
    kl = p["kl_divergence"]
    row.update(ppl=p["perplexity"], ppl_stderr=p["stderr"],
               dppl=kl["perplexity_difference"], dppl_stderr=kl["perplexity_difference_stderr"],
               kl=kl["mean"], kl_stderr=kl["stderr"], kl_p99=kl.get("p99"),
               top1=kl["top1_agreement"], top1_stderr=kl["top1_agreement_stderr"],
               tokens_scored=p["tokens_scored"], ppl_seconds=p["seconds"])


def speed(a, w, row, path):
    cmd = [a.memwall, "bench", "-m", path, "-p", str(a.n_prompt), "-n", str(a.n_gen), "-r",
           str(a.reps), "-t", str(a.threads), "--json"]
    row["bench_cmd"] = show(cmd)
    b = json.loads(run(cmd, w["log"]).stdout)
    row.update(decode_tps=b["decode_tokens_per_s"], prefill_tps=b["prefill_tokens_per_s"],
               peak_rss=b["peak_rss_bytes"], bench_precision=b.get("precision"),
               decode_spread=b.get("decode_tokens_per_s_spread", {}).get("samples"),
               prefill_spread=b.get("prefill_tokens_per_s_spread", {}).get("samples"))


def llama_speed(a, w, row, path):
    """llama.cpp's prefill/decode on the same file, same protocol (bench/llama_runner.py)."""
    cmd = [a.python, os.path.join(ROOT, "bench", "llama_runner.py"), "-m", path, "-p",
           str(a.n_prompt), "-n", str(a.n_gen), "-r", str(a.reps), "-t", str(a.threads)]
    row["llama_bench_cmd"] = show(cmd)
    b = json.loads(run(cmd, w["log"]).stdout)
    row.update(llama_decode_tps=b["decode_tokens_per_s"],
               llama_prefill_tps=b["prefill_tokens_per_s"])


def want_speed(a, typ, engine):
    if a.speed == "none":
        return False
    if a.speed == "all":
        return True
    return typ in a.speed_types


def binary_id(path):
    """sha256 prefix and mtime of the memwall binary: a rebuild during a run shows."""
    import hashlib
    with open(path, "rb") as fh:
        h = hashlib.sha256(fh.read()).hexdigest()[:12]
    return f"{h} ({time.strftime('%H:%M:%S', time.gmtime(os.path.getmtime(path)))} UTC)"


def memwall_variant(a, w, typ, recipe, data):
    name = typ if recipe == "plain" else f"{typ} {recipe}"
    row = {"name": name, "engine": "memwall", "type": typ, "recipe": recipe,
           "binary": binary_id(a.memwall)}
    path = os.path.join(w["dir"], f"v-{typ}-{recipe.replace('+', '-')}.gguf")
    cmd = [a.memwall, "quantize", w["base"], path, "--type", typ, "-t", str(a.threads),
           "--json"]
    if "rotate" in recipe:
        cmd += ["--rotate", "hadamard"]
    if recipe.endswith("+embd8"):
        cmd += ["--keep", r"token_embd\.weight=q8_0"]
    if "+bpw" in recipe:
        cmd += ["--max-bpw", recipe.split("+bpw")[1]]
    if "+embd6" in recipe:
        cmd += ["--keep", r"^(token_embd|output)\.weight$=q6_k"]
    if recipe == "calib" or recipe.startswith("calib+"):
        if os.path.exists(w["imatrix"]):
            cmd += ["--imatrix", w["imatrix"]]
        else:
            cmd += ["--calib", w["calib"], "--calib-chunks", str(a.calib_chunks),
                    "--calib-ctx", str(a.ctx), "--save-imatrix", w["imatrix"]]
    elif recipe in ("rotate+calib", "smooth", "smooth+embd8"):
        cmd += ["--calib", w["calib"], "--calib-chunks", str(a.calib_chunks),
                "--calib-ctx", str(a.ctx)]
    if recipe.startswith("smooth"):
        cmd += ["--smooth", str(a.smooth_alpha)]
    row["quantize_cmd"] = show(cmd)
    t = time.monotonic()
    r = run(cmd, w["log"])
    q = json.loads(r.stdout)
    row.update(quantize_seconds=time.monotonic() - t, file_bytes=q["file_bytes"],
               bpw=q["bits_per_weight"], weights=q["weights"], types=q.get("types"),
               rel_rms=q.get("relative_rms_error"))
    imatrix_lines = sum("(imatrix)" in ln for ln in r.stderr.splitlines())
    row["imatrix_tensors"] = imatrix_lines
    row["fallbacks"] = sorted({ln.split("(fallback:")[1].strip(" )") for ln in
                               r.stderr.splitlines() if "(fallback:" in ln})
    try:
        if "calib" in recipe and imatrix_lines == 0:
            row["skipped"] = "no weighted quantizer: same as " + (
                "plain" if recipe == "calib" else "rotate")
            log(f"{name}: no (imatrix) tensor, same as without calib; skipped")
            return row
        evaluate(a, w, row, path)
        if want_speed(a, typ, "memwall") and recipe == "plain":
            speed(a, w, row, path)
            if typ in GGUF_STANDARD and not a.no_llama:
                llama_speed(a, w, row, path)
        log(f"{name}: {row['bpw']:.3f} bpw, PPL {row['ppl']:.3f}, KL {row['kl']:.5f}, "
            f"top1 {100 * row['top1']:.1f}%" +
            (f", decode {row['decode_tps']:.1f} tok/s" if "decode_tps" in row else ""))
    finally:
        if os.path.exists(path):
            os.remove(path)
    return row


def llama_ppl(model_path, text_path, ctx, chunks, threads):
    """llama.cpp's own perplexity of a file (llama-cpp-python logits), by the protocol of
    llama.cpp's perplexity tool: windows of ctx tokens from the start of the text, no BOS
    (the model adds none), each scoring positions ctx/2 .. ctx-2."""
    import numpy as np
    from llama_cpp import Llama
    llm = Llama(model_path=model_path, n_ctx=ctx, n_batch=ctx, n_ubatch=ctx, logits_all=True,
                n_threads=threads, verbose=False)
    with open(text_path, "rb") as fh:
        toks = llm.tokenize(fh.read(), add_bos=False, special=False)
    nll = []
    t = time.monotonic()
    for c in range(chunks):
        win = toks[c * ctx:(c + 1) * ctx]
        llm.reset()
        llm.eval(win)
        lg = np.asarray(llm.scores[:ctx], dtype=np.float64)
        for i in range(ctx // 2, ctx - 1):
            x = lg[i] - lg[i].max()
            nll.append(-(x[win[i + 1]] - math.log(np.exp(x).sum())))
    nll = np.asarray(nll)
    ppl = math.exp(nll.mean())
    return {"perplexity": ppl, "stderr": ppl * nll.std(ddof=1) / math.sqrt(len(nll)),
            "tokens": len(toks), "tokens_scored": len(nll),
            "seconds": time.monotonic() - t}


def llama_variant(a, w, typ):
    row = {"name": f"llama.cpp {typ}", "engine": "llama.cpp", "type": typ,
           "recipe": "llama.cpp default", "binary": binary_id(a.memwall)}
    path = os.path.join(w["dir"], f"llama-{typ}.gguf")
    cmd = [a.python, "-c", LLAMA_QUANTIZE, w["base"], path, typ, str(a.threads)]
    row["quantize_cmd"] = (f"{show([a.python])} -c 'llama_cpp.llama_model_quantize(base, out, "
                           f"params(ftype=LLAMA_FTYPE_MOSTLY_{typ.upper()}))'")
    t = time.monotonic()
    run(cmd, w["log"])
    row["quantize_seconds"] = time.monotonic() - t
    try:
        row["alignment_patched_from"] = fix_alignment(path)
        fb = file_bpw(path)
        row.update(file_bytes=os.path.getsize(path), bpw=fb["bits_per_weight"],
                   weights=fb["weights"], types=fb["types"])
        evaluate(a, w, row, path)
        if a.llama_ppl:
            row["llama_cpp_ppl"] = llama_ppl(path, w["eval"], a.ctx, a.chunks, a.threads)
        if want_speed(a, typ, "llama.cpp"):
            speed(a, w, row, path)
        log(f"{row['name']}: {row['bpw']:.3f} bpw, PPL {row['ppl']:.3f}, KL {row['kl']:.5f}")
    finally:
        if os.path.exists(path):
            os.remove(path)
    return row


def measure(a):
    wd = tempfile.mkdtemp(prefix="memwall-quant-", dir="/tmp")
    os.makedirs(a.logdir, exist_ok=True)
    w = {"dir": wd, "base": os.path.join(wd, "base-f32.gguf"),
         "base_lp": os.path.join(wd, "base.lp"), "eval": os.path.join(wd, "eval.txt"),
         "calib": os.path.join(wd, "calib.txt"), "imatrix": os.path.join(wd, "imatrix.gguf"),
         "log": os.path.join(a.logdir, "quant.log")}
    open(w["log"], "w").close()
    log("work dir", wd, "| log", w["log"])
    preset = BASES[a.base]
    if "train" in preset:
        if not os.path.exists(a.trained):
            log("training the base (bench/train_tiny_llama.py, ~20 min) ->", a.trained)
            os.makedirs(os.path.dirname(os.path.abspath(a.trained)), exist_ok=True)
            tmp = a.trained + ".part"
            r = run([a.train_python, preset["train"], "--memwall", a.memwall, "-o", tmp],
                    w["log"])
            with open(a.trained + ".txt", "w") as fh:
                fh.write(r.stdout)
            os.replace(tmp, a.trained)
        if os.path.exists(a.trained + ".txt"):
            with open(a.trained + ".txt") as fh:
                a.trained_summary = fh.read().strip().split(": ", 1)[-1]
        preset = dict(preset, llama2c=a.trained)
    if "llama2c" in preset:
        a.model = os.path.join(wd, "model.gguf")
        run([a.memwall, "convert", "--llama2c", preset["llama2c"], "--tokenizer",
             preset["tokenizer"], "-o", a.model], w["log"])
    with open(a.text, "rb") as f:
        raw = f.read()
    with open(w["eval"], "wb") as f:
        f.write(raw[:a.eval_bytes])
    with open(w["calib"], "wb") as f:
        f.write(raw[-a.calib_bytes:])
    data = {"args": {k: v for k, v in vars(a).items()}, "machine": machine(), "rows": [],
            "errors": [], "command": "python " + show([os.path.abspath(sys.argv[0])]) + " " +
            " ".join(sys.argv[1:]), "text": {"file": show([a.text]), "bytes": len(raw)}}
    out_json = os.path.join(a.out_dir, f"quant{preset['tag']}.json")
    try:
        run([a.memwall, "quantize", a.model, w["base"], "--type", "f32", "--json"], w["log"])
        base = {"name": "base f32", "engine": "base", "type": "f32", "recipe": "base",
                "binary": binary_id(a.memwall)}
        cmd = [a.memwall, "perplexity", "-m", w["base"], "-f", w["eval"], "--ctx", str(a.ctx),
               "--chunks", str(a.chunks), "--precision", "exact", "-t", str(a.threads),
               "--save-logits", w["base_lp"], "--json"]
        p = json.loads(run(cmd, w["log"]).stdout)
        fb = file_bpw(w["base"])
        base.update(ppl_cmd=show(cmd), ppl=p["perplexity"], ppl_stderr=p["stderr"], dppl=0.0,
                    dppl_stderr=0.0, kl=0.0, kl_stderr=0.0, top1=1.0, top1_stderr=0.0,
                    tokens_scored=p["tokens_scored"], file_bytes=os.path.getsize(w["base"]),
                    bpw=fb["bits_per_weight"], weights=fb["weights"], types=fb["types"])
        if a.speed == "all":
            speed(a, w, base, w["base"])
        data["rows"].append(base)
        log(f"base: PPL {base['ppl']:.3f} ± {base['ppl_stderr']:.3f} over "
            f"{base['tokens_scored']} tokens")
        jobs = []
        if not a.no_llama:
            jobs += [("llama.cpp", t, None) for t in a.llama_types]
        for rec in a.recipes:  # recipe-major: a run cut by --deadline has whole columns
            for typ in a.types:
                if rec == "rotate+calib" and typ not in LOW:
                    continue
                if rec.startswith("smooth") and typ not in ACTIVATION_TYPES:
                    continue
                if rec == "calib+embd8" and typ not in EMBD8_TYPES:
                    continue
                if "+bpw" in rec and typ not in BUDGET_TYPES:
                    continue
                if typ in ACTIVATION_TYPES and rec in ("calib", "rotate+calib"):
                    continue
                jobs.append(("memwall", typ, rec))
        for engine, typ, rec in jobs:
            if a.deadline and time.time() > a.deadline:
                data["errors"].append("stopped at --deadline before " +
                                      (f"{typ} {rec}" if rec else f"llama.cpp {typ}"))
                log("deadline reached; stopping")
                break
            try:
                row = llama_variant(a, w, typ) if engine == "llama.cpp" else \
                    memwall_variant(a, w, typ, rec, data)
                data["rows"].append(row)
            except (RuntimeError, OSError, ValueError, KeyError) as e:
                data["errors"].append(f"{engine} {typ} {rec or ''}: {e}")
                log(f"{engine} {typ} {rec or ''}: FAILED {e}")
            finalize(data)
            with open(out_json, "w") as f:
                json.dump(data, f, indent=1)
    finally:
        if a.keep_workdir:
            log("kept", wd)
        else:
            shutil.rmtree(wd, ignore_errors=True)
    finalize(data)
    return data


# ---------------------------------------------------------------- report

def measured(data):
    return [r for r in data["rows"] if "kl" in r and not r.get("skipped")]


def finalize(data):
    """Pareto frontier of (file bytes, KL): no other row is at most as big and at most as
    divergent, and better in one."""
    rows = measured(data)
    for r in rows:
        r["pareto"] = not any(o is not r and o["file_bytes"] <= r["file_bytes"] and
                              o["kl"] <= r["kl"] and (o["file_bytes"] < r["file_bytes"] or
                                                      o["kl"] < r["kl"]) for o in rows)


def mib(b):
    return b / 2**20


def f(x, fmt, dash="–"):
    return dash if x is None else format(x, fmt)


def headline(data, max_bpw=4.5):
    rows = measured(data)
    mw = [r for r in rows if r["engine"] == "memwall" and r["bpw"] <= max_bpw]
    ll = {r["type"]: r for r in rows if r["engine"] == "llama.cpp"}
    best = min(mw, key=lambda r: r["kl"]) if mw else None
    return best, ll


def plot(path, data):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in measured(data) if r["engine"] != "base"]
    floor = 3e-4  # KL below this (a lossless requantization) is drawn on the floor

    def y(r):
        return max(r["kl"], floor)

    fig, ax = plt.subplots(figsize=(10, 6.5))
    markers = {"plain": "o", "calib": "s", "rotate": "^", "rotate+calib": "D", "smooth": "P",
               "calib+embd8": "v", "smooth+embd8": "X",
               "calib+bpw4.5": "*", "calib+embd6+bpw4.5": "p", "calib+embd6+bpw4": "h"}
    for rec, m in markers.items():
        rs = [r for r in rows if r["engine"] == "memwall" and r["recipe"] == rec]
        if rs:
            ax.scatter([r["bpw"] for r in rs], [y(r) for r in rs], marker=m, s=40,
                       label=f"memwall {rec}", alpha=0.85)
    ll = [r for r in rows if r["engine"] == "llama.cpp"]
    if ll:
        ax.scatter([r["bpw"] for r in ll], [y(r) for r in ll], marker="*", s=220,
                   color="red", label="llama.cpp quantizer (default recipe)", zorder=5)
    for r in rows:
        ax.annotate(r["name"] + (f" (KL {r['kl']:.0e}, on the floor)" if r["kl"] < floor
                                 else ""), (r["bpw"], y(r)), fontsize=6.5, xytext=(4, 3),
                    textcoords="offset points")
    front = sorted([r for r in rows if r.get("pareto")], key=lambda r: r["bpw"])
    if front:
        ax.plot([r["bpw"] for r in front], [y(r) for r in front], "k--", lw=1,
                label="Pareto frontier (file bytes, KL)")
    ax.axvline(4.5, color="grey", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor / 1.5)
    ax.set_xlabel("bits per weight (all tensors, incl. embeddings)")
    ax.set_ylabel("mean KL(base || variant), nats/token (log)")
    a = data["args"]
    preset = BASES[a.get("base", "default")]
    ax.set_title(f"{preset['title']} quantization frontier ({preset['text']}, "
                 f"{a['chunks']} x {a['ctx']} tokens)".replace("`", ""), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_report(path, data):
    a = data["args"]
    m = data["machine"]
    rows = [r for r in data["rows"] if "kl" in r or r.get("skipped")]
    base = next((r for r in data["rows"] if r["engine"] == "base"), None)
    L = []
    w = L.append
    w("# Quantization frontier: size, quality, speed (issue 6)\n")
    w(f"Command: `{data['command']}`  ")
    w(f"Machine: {m['cpu']}, {m['physical_cores']} physical cores / {m['logical_cpus']} "
      f"logical CPUs, {m['memory_bytes'] / 2**30:.1f} GiB, {m['kernel']}; "
      f"commit {m['commit']}; {m['date']}. Shared, noisy machine: speeds are indicative.\n")
    w("## Protocol\n")
    preset = BASES[a.get("base", "default")]
    w(f"- **Base**: {preset['base']}")
    w(f"- **Evaluation**: `memwall perplexity -f EVAL --ctx {a['ctx']} --chunks {a['chunks']} "
      f"--precision exact` on the first {a['eval_bytes']:,} bytes of {preset['text']} "
      f"({base['tokens_scored'] if base else '?'} scored tokens); the base "
      "writes `--save-logits base.lp`, every variant runs with `--kl-base base.lp --json`: "
      "PPL ± stderr, ΔPPL vs base ± stderr (paired), mean KL(base ‖ variant) ± stderr, "
      "top-1 agreement with the base.")
    w(f"- **Calibration** (importance matrix): the last {a['calib_bytes']:,} bytes of "
      f"the same text (disjoint from the evaluation text), `--calib-chunks "
      f"{a['calib_chunks']}` windows of {a['ctx']} tokens. The base's statistics are computed "
      "once (`--calib ... --save-imatrix`) and reused (`--imatrix`) for the other plain+calib "
      "variants; rotate+calib runs `--calib` each time (statistics in the rotated basis). A "
      "calib recipe whose quantize output has no `(imatrix)` tensor (no weighted quantizer "
      "for that type) is identical to the recipe without calib and is skipped.")
    w("- **Rotation**: `--rotate hadamard` (QuaRot-style randomized Hadamard, seed 1); "
      "rotate+calib only for the types of 4 bits and below.")
    w(f"- **W8A8**: `w8a8` (int8 weights per output channel) is evaluated with `--precision "
      f"fast`, which runs its int8 activations with one scale per token, the type's "
      f"definition (every other type: `--precision exact`, weights only). Its recipes: plain, "
      f"rotate, and smooth = `--smooth {a.get('smooth_alpha', 0.5)} --calib CALIB` "
      f"(SmoothQuant's migration folded into norms, V and FFN up).")
    w("- **calib+embd8**: calib with `--keep 'token_embd\\.weight=q8_0'`, llama.cpp's default "
      "recipe (it keeps the tied embedding / output head in q8_0) with memwall's quantizers, "
      "for " + ", ".join(sorted(EMBD8_TYPES)) + "; smooth+embd8 likewise for w8a8 (the tied "
      "output head cannot be smoothed: it is also the embedding table).")
    w("- **calib+bpwB**: calib with `--max-bpw B`: the whole file within B bits per weight, "
      "each matrix's type chosen from `--mix`'s default (q3_g64, nf4_dq, q4_k, q5_k, q6_k, "
      "q8_0) by its importance-weighted output error (docs/quantize.md), for " +
      ", ".join(sorted(BUDGET_TYPES)) + "; the mix of each file is in the last table. "
      "+embd6: the output head (tied embedding) kept in q6_k before mixing the rest "
      "(`--keep '^(token_embd|output)\\.weight$=q6_k'`), llama.cpp's rule for its head: the "
      "mixer's loss weighs every matrix's relative output error alike, and the head's reaches "
      "the logits undiluted.")
    w("- **llama.cpp**: q4_0 and q4_1 made by llama.cpp's own quantizer "
      "(llama-cpp-python `llama_model_quantize`, `LLAMA_FTYPE_MOSTLY_Q4_0/Q4_1`, default "
      "recipe: it keeps the output head (here the tied token_embd) in q6_k, or q8_0 when its rows "
      "do not split into 256-blocks) from the same "
      "base; bits per weight measured from the file. Evaluated with the same memwall "
      "perplexity protocol and the same base logits, so KL is comparable. llama.cpp copies "
      "the base's `general.alignment` = 64 into its output but lays the data out at 32 bytes; "
      "the key is patched to 32 so that the file reads (gguf-py fails on it too otherwise).")
    w(f"- **Speed / memory**: `memwall bench -m VARIANT -p {a['n_prompt']} -n {a['n_gen']} "
      f"-r {a['reps']} --json` (median tok/s, precision fast, {a['threads']} threads), "
      + ("for every variant" if a["speed"] == "all" else
         "for the plain variants of " + ", ".join(a["speed_types"]) +
         " and llama.cpp's files only" if a["speed"] == "subset" else "not measured") +
      ". Peak RSS from the same run.")
    rows_note = {
        "default": "Matrices whose rows (576) are not a multiple of a k-quant's 256-block fall "
                   "back to another type (listed per row below), so q4_k/q5_k/q6_k are mixed "
                   "files on this model.",
        "stories260k": "FFN down's rows (172) fit no block and stay f16 in every file.",
        "trained": "Every row is a multiple of 256: no type falls back to another.",
    }[a.get("base", "default")]
    w(f"- **bits per weight** counts every tensor (embeddings, norms) over every weight. "
      f"{rows_note}")
    if a.get("trained_summary"):
        w(f"- **Trained base**: {a['trained_summary']} (PyTorch's own evaluation, before "
          f"conversion; the base row below is memwall's on the converted GGUF).")
    for n in data.get("notes", []):
        w(f"- **Note**: {n}")
    ids = sorted({r["binary"] for r in data["rows"] if r.get("binary")})
    if len(ids) > 1:
        w("- **Mixed binaries**: build/memwall changed during the run (" + ", ".join(ids) +
          "); the binary of each row is in the last table.")
    w("")

    best, ll = headline(data)
    w("## Summary (acceptance of issue 6)\n")
    w("> At 4.5 bits per weight or fewer, memwall's best recipe has lower KL-divergence than "
      "llama.cpp's q4_0 and q4_1 on the same model; say by how much.\n")
    if not best and ll:
        w("No memwall variant at ≤ 4.5 bpw was measured.\n")
    if best and ll:
        w(f"Best memwall recipe at ≤ 4.5 bpw: **{best['name']}**, {best['bpw']:.3f} bpw, "
          f"{mib(best['file_bytes']):.1f} MiB, KL {best['kl']:.5f} ± {best['kl_stderr']:.5f}, "
          f"PPL {best['ppl']:.3f} (Δ {best['dppl']:+.3f} ± {best['dppl_stderr']:.3f}), top-1 "
          f"{100 * best['top1']:.1f} %.\n")
        for t in LLAMA_TYPES:
            r = ll.get(t)
            if not r:
                continue
            ratio = r["kl"] / best["kl"] if best["kl"] > 0 else float("inf")
            se = math.hypot(r["kl_stderr"], best["kl_stderr"])
            verdict = "lower" if best["kl"] < r["kl"] else "HIGHER"
            w(f"- vs llama.cpp {t} ({r['bpw']:.3f} bpw, {mib(r['file_bytes']):.1f} MiB, KL "
              f"{r['kl']:.5f} ± {r['kl_stderr']:.5f}, PPL {r['ppl']:.3f}): memwall's KL is "
              f"**{verdict}**, by {abs(r['kl'] - best['kl']):.5f} nats/token (≈ {se:.5f} "
              f"combined stderr, unpaired), i.e. llama.cpp's KL is {ratio:.2f}x memwall's — "
              f"with memwall's file {abs(r['bpw'] - best['bpw']):.3f} bpw "
              f"{'smaller' if best['bpw'] < r['bpw'] else 'larger'} "
              f"({best['bpw']:.3f} vs {r['bpw']:.3f}).")
        w("")
    if best and ll and a.get("base", "default") == "default":
        w("Caveat: the base is itself q4_1-quantized, so any q4_1-grid recipe (memwall q4_1, "
          "llama.cpp q4_1, and k-quant fallbacks to q4_1) is close to lossless here; the "
          "comparison at ≤ 4.5 bpw is between memwall recipes that do not have that advantage "
          "and llama.cpp files that are above 4.5 bpw (llama.cpp keeps token_embd, 21 % of "
          "the weights, in q8_0). The fair test, on a base that was never quantized and whose "
          "rows fit every block, is `bench/results/quant-trained.md` (`--base trained`).\n")
    if ll:
        b2, _ = headline(data, 4.51)
        if b2 and b2 is not best:
            w(f"Note: memwall's 4.5-bit types (q4_0, nf4, ...) make files of {b2['bpw']:.3f} bpw (the f32 norms add "
              f"0.007 bpw), just above the 4.5 line; the best of them, **{b2['name']}**, has KL "
              f"{b2['kl']:.5f} ± {b2['kl_stderr']:.5f} (PPL {b2['ppl']:.3f}); llama.cpp's KL is " +
              ", ".join(f"{ll[t]['kl'] / b2['kl']:.2f}x ({t})" for t in LLAMA_TYPES if t in ll)
              + " that.\n")
    else:
        w("Not enough rows measured for the comparison.\n")
    if ll:
        w("Same type, memwall's best recipe vs llama.cpp's quantizer (its default recipe):\n")
        w("| type | memwall recipe | bpw | KL ± se | llama.cpp bpw | llama.cpp KL ± se | "
          "llama.cpp KL / memwall KL |")
        w("|---|---|--:|--:|--:|--:|--:|")
        for t in LLAMA_TYPES:
            mine = [r for r in measured(data) if r["engine"] == "memwall" and r["type"] == t]
            if t not in ll or not mine:
                continue
            m, r = min(mine, key=lambda r: r["kl"]), ll[t]
            w(f"| {t} | {m['name']} | {m['bpw']:.3f} | {m['kl']:.5f} ± {m['kl_stderr']:.5f} | "
              f"{r['bpw']:.3f} | {r['kl']:.5f} ± {r['kl_stderr']:.5f} | "
              f"{r['kl'] / m['kl'] if m['kl'] > 0 else float('inf'):.2f}x |")
        w("")

    w("## Results\n")
    w("★ = on the Pareto frontier of (file bytes, mean KL): no other variant is both at most "
      "as big and at most as divergent. Sorted by bits per weight.\n")
    w("| variant | bpw | file MiB | PPL ± se | ΔPPL ± se | mean KL ± se | top-1 % | "
      "decode tok/s | prefill tok/s | peak RSS MiB |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in sorted(rows, key=lambda r: (-(r.get("bpw") or 0), r["name"]), reverse=True):
        if r.get("skipped"):
            continue
        star = " ★" if r.get("pareto") else ""
        nm = f"**{r['name']}**" if r["engine"] == "llama.cpp" else r["name"]
        w(f"| {nm}{star} | {r['bpw']:.3f} | {mib(r['file_bytes']):.1f} | "
          f"{r['ppl']:.3f} ± {r['ppl_stderr']:.3f} | {r['dppl']:+.3f} ± {r['dppl_stderr']:.3f} | "
          f"{r['kl']:.5f} ± {r['kl_stderr']:.5f} | {100 * r['top1']:.1f} | "
          f"{f(r.get('decode_tps'), '.1f')} | {f(r.get('prefill_tps'), '.0f')} | "
          f"{f(r.get('peak_rss') and mib(r['peak_rss']), '.0f')} |")
    same = [r for r in rows if r.get("llama_decode_tps")]
    if same:
        w("\nSpeed on the same file (GGUF's own types, which llama.cpp runs too; "
          "`bench/llama_runner.py`, the same prompt/generation/repetitions, run right after "
          "memwall's):\n")
        w("| file | memwall decode | llama.cpp decode | ratio | memwall prefill | "
          "llama.cpp prefill | ratio |")
        w("|---|--:|--:|--:|--:|--:|--:|")
        for r in sorted(same, key=lambda r: -r["bpw"]):
            w(f"| {r['name']} | {r['decode_tps']:.1f} | {r['llama_decode_tps']:.1f} | "
              f"{r['decode_tps'] / r['llama_decode_tps']:.2f}x | {r['prefill_tps']:.0f} | "
              f"{r['llama_prefill_tps']:.0f} | "
              f"{r['prefill_tps'] / r['llama_prefill_tps']:.2f}x |")
    xc = [r for r in rows if r.get("llama_cpp_ppl")]
    if xc:
        w("\nCross-check, llama.cpp's own perplexity of its files (llama-cpp-python logits, "
          "same windows and scored positions): " + "; ".join(
              f"{r['name']}: llama.cpp {r['llama_cpp_ppl']['perplexity']:.3f} ± "
              f"{r['llama_cpp_ppl']['stderr']:.3f} vs memwall {r['ppl']:.3f} "
              f"({r['llama_cpp_ppl']['tokens_scored']} tokens, text {r['llama_cpp_ppl']['tokens']}"
              " tokens)" for r in xc) + ".")
    sk = [r for r in rows if r.get("skipped")]
    if sk:
        w("\nSkipped (identical to another row): " +
          "; ".join(f"{r['name']} ({r['skipped']})" for r in sk) + ".")
    w(f"\n![quantization frontier](quant{preset['tag']}.png)\n")
    w("## Tensor types per file\n")
    w("| variant | types (tensors / MiB) | fallbacks | memwall binary |")
    w("|---|---|---|---|")
    for r in sorted(measured(data), key=lambda r: -r["bpw"]):
        ty = ", ".join(f"{k} {v['tensors']} / {mib(v['bytes']):.1f}"
                       for k, v in (r.get("types") or {}).items())
        w(f"| {r['name']} | {ty} | {'; '.join(r.get('fallbacks') or []) or '–'} | "
          f"{r.get('binary', '?')} |")
    if data.get("errors"):
        w("\n## Errors / not run\n")
        for e in data["errors"]:
            why = [ln for ln in e.splitlines() if ln.startswith("error:")]
            w(f"- {e.splitlines()[0]}" + (f" `{why[-1]}`" if why else ""))
    w("")
    with open(path, "w") as fh:
        fh.write("\n".join(L))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memwall", default=os.path.join(ROOT, "build", "memwall"))
    ap.add_argument("--base", choices=list(BASES), default="default",
                    help="default: the default model decoded to f32, on WikiText-2; "
                         "stories260k: an f32 model never quantized, on TinyStories (ctx 256); "
                         "trained: a 3.3M model trained in f32 by bench/train_tiny_llama.py "
                         "(cached at --trained), on held-out TinyStories (ctx 256)")
    ap.add_argument("--trained", default=os.path.join(
        os.path.expanduser("~"), ".cache", "memwall", "bases", "tinystories-3m-seed1.bin"),
                    help="llama2.c checkpoint of --base trained (trained when missing)")
    ap.add_argument("--train-python", default="/usr/bin/python3",
                    help="interpreter with PyTorch for bench/train_tiny_llama.py")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--python", default=sys.executable, help="interpreter with llama_cpp")
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--chunks", type=int, default=8, help="perplexity windows")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--eval-bytes", type=int, default=EVAL_BYTES)
    ap.add_argument("--calib-bytes", type=int, default=500_000)
    ap.add_argument("--calib-chunks", type=int, default=16)
    ap.add_argument("--smooth-alpha", type=float, default=0.5, help="SmoothQuant alpha")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--llama-types", default=",".join(LLAMA_TYPES))
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--llama-ppl", action="store_true",
                    help="also llama.cpp's own PPL of its files (llama-cpp-python logits), "
                         "a cross-check of memwall perplexity")
    ap.add_argument("--speed", choices=["all", "subset", "none"], default="all",
                    help="memwall bench for every variant, for the plain variants of "
                         "--speed-types (and llama.cpp's), or none")
    ap.add_argument("--speed-types", default=",".join(SPEED_SUBSET))
    ap.add_argument("-p", "--n-prompt", type=int, default=128)
    ap.add_argument("-n", "--n-gen", type=int, default=32)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--deadline", type=float, default=0,
                    help="unix time after which no new variant is started")
    ap.add_argument("--keep-workdir", action="store_true")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--logdir", default=os.path.join(ROOT, "build-bench", "logs", "quant"))
    ap.add_argument("--from-json", metavar="QUANT_JSON",
                    help="rewrite the report and plot from a previous run's JSON")
    a = ap.parse_args()
    if a.from_json:
        with open(a.from_json) as fh:
            data = json.load(fh)
        out_dir = os.path.dirname(os.path.abspath(a.from_json))
        finalize(data)
        tag = BASES[data["args"].get("base", "default")]["tag"]
        plot(os.path.join(out_dir, f"quant{tag}.png"), data)
        write_report(os.path.join(out_dir, f"quant{tag}.md"), data)
        log(f"rewrote {os.path.join(out_dir, f'quant{tag}.md')} from {a.from_json}")
        return
    if "text_path" in BASES[a.base]:
        a.text = BASES[a.base]["text_path"]
        if a.ctx == 512:
            a.ctx = 256  # the model's context is 512 (trained at 256): keep within it
        if a.eval_bytes == EVAL_BYTES:
            a.eval_bytes = BASES[a.base].get("eval_bytes", EVAL_BYTES)
    a.types = [t for t in a.types.split(",") if t]
    a.recipes = [t for t in a.recipes.split(",") if t]
    a.llama_types = [t for t in a.llama_types.split(",") if t]
    a.speed_types = [t for t in a.speed_types.split(",") if t]
    os.makedirs(a.out_dir, exist_ok=True)
    data = measure(a)
    tag = BASES[a.base]["tag"]
    with open(os.path.join(a.out_dir, f"quant{tag}.json"), "w") as fh:
        json.dump(data, fh, indent=1)
    plot(os.path.join(a.out_dir, f"quant{tag}.png"), data)
    write_report(os.path.join(a.out_dir, f"quant{tag}.md"), data)
    log("wrote", os.path.join(a.out_dir, f"quant{tag}.md"))


if __name__ == "__main__":
    main()
