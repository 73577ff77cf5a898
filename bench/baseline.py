#!/usr/bin/env python3
"""Baseline speed of `memwall run` on one model: prefill and decode tokens/s
and peak RSS, median and spread over repetitions. Writes bench/results/baseline.md.

The prompt is the first --prompt-tokens tokens of WikiText-2 (shared test data),
generation is --gen-tokens tokens with end-of-sequence ignored, greedy."""
import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = os.path.join(ROOT, "..", "shared", "data", "text", "wikitext-2-raw", "wiki.test.raw")
STATS = re.compile(
    r"prefill: (\d+) tokens in ([\d.]+) s \(([\d.]+) tok/s\).*decode: (\d+) tokens in ([\d.]+) s "
    r"\(([\d.]+) tok/s\) \| peak RSS ([\d.]+) (\w+)")
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "memwall"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "baseline.md"))
    args = ap.parse_args()

    with open(TEXT, encoding="utf-8") as f:
        text = f.read(20_000).replace("\r\n", "\n")
    ids = run([args.binary, "tokenize", "-m", args.model, "--no-bos", text]).stdout.split()
    if len(ids) < args.prompt_tokens:
        sys.exit(f"error: only {len(ids)} tokens of text")
    prompt = " ".join(ids[: args.prompt_tokens])

    cmd = [args.binary, "run", "-m", args.model, "--tokens", prompt, "-n", str(args.gen_tokens),
           "--temp", "0", "--ignore-eos"]
    if args.threads:
        cmd += ["-t", str(args.threads)]
    rows = []
    for r in range(args.reps):
        m = STATS.search(run(cmd).stderr)
        if not m:
            sys.exit("error: could not read memwall's statistics line")
        rows.append((float(m.group(3)), float(m.group(6)), float(m.group(7)) * UNITS[m.group(8)]))
        print(f"rep {r + 1}: prefill {rows[-1][0]:.1f} tok/s, decode {rows[-1][1]:.1f} tok/s", file=sys.stderr)

    def summary(values):
        return f"{statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f})"

    commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip()
    report = f"""# Baseline: scalar reference kernels

Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC at commit {commit} on {machine()}.

Command (repeated {args.reps} times; median, with min and max):

    memwall run -m {os.path.basename(args.model)} --tokens <first {args.prompt_tokens} tokens of wiki.test.raw> -n {args.gen_tokens} --temp 0 --ignore-eos

| model | prompt tokens | generated | prefill tok/s | decode tok/s | peak RSS |
| --- | --- | --- | --- | --- | --- |
| {os.path.basename(args.model)} | {args.prompt_tokens} | {args.gen_tokens} | {summary([r[0] for r in rows])} | {summary([r[1] for r in rows])} | {statistics.median(r[2] for r in rows) / 2**20:.1f} MiB |

These are the portable scalar kernels of the foundation issue (no SIMD, threads = physical
cores). The machine is shared: absolute numbers move with outside load; compare ratios measured
in one run. The issue "Fast CPU kernels" replaces these paths and compares with llama.cpp.
"""
    with open(args.out, "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
