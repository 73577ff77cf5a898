#!/usr/bin/env python3
"""The planner's choice and prediction against measurement, for every weight
type `memwall quantize` writes; writes bench/results/planner_formats.md (and
.json).

Per type: the default model (SmolLM2-135M Q4_1) requantized with
`memwall quantize --type T` (the k-quant and ternary types fall back to
q5_0/q5_1/q8_0/q4_0 for rows of 576, as llama.cpp does, so those files are
mixed). For each binary (--memwall LABEL=PATH, repeatable: e.g. before and
after a change, each with its own machine-profile cache), each model and each
placement (auto: the planner's choice, resident, mapped), `memwall bench
--json` (-p prompt, -n gen, one warm-up and one measured repetition per call)
is run `--rounds` times, rounds interleaved across binaries, models and
placements so a burst of load on a shared machine hits every cell alike.
Reported: the plan's predicted decode and prefill tok/s, the median and the
range of the measured ones, and measured / predicted for the median and for
the best round (on a machine shared with other work the best round is the
one closest to what the profile measured: its fastest runs).
The files stay in the page cache throughout (mapped plans read cached pages)."""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k",
         "tq1_0", "tq2_0", "nf4", "nf4_dq", "q2_g64", "q3_g64"]
PLACEMENTS = ["auto", "resident", "mapped"]


def log(*a):
    print("[planner_formats]", *a, file=sys.stderr, flush=True)


def run_json(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--memwall", action="append", default=[],
                    help="LABEL=PATH (repeatable) or PATH; default build/memwall")
    ap.add_argument("--model", default=os.path.join(ROOT, "models",
                                                     "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--dir", default="/tmp/memwall-planner-formats", help="quantized files")
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--placements", default=",".join(PLACEMENTS))
    ap.add_argument("-p", "--prompt", type=int, default=128)
    ap.add_argument("-n", "--gen", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "planner_formats"))
    a = ap.parse_args()
    bins = {}
    for spec in a.memwall or [os.path.join(ROOT, "build", "memwall")]:
        label, _, path = spec.rpartition("=")
        bins[label or "memwall"] = path
    envs = {}
    for label in bins:
        e = dict(os.environ)
        if len(bins) > 1:
            e["MEMWALL_CACHE_DIR"] = os.path.join(a.dir, "cache-" + label)
        envs[label] = e
    first = next(iter(bins.values()))
    types = a.types.split(",")
    placements = a.placements.split(",")
    os.makedirs(a.dir, exist_ok=True)
    files = {}
    for t in types:
        path = os.path.join(a.dir, f"{t}.gguf")
        if not os.path.exists(path):
            log("quantize", t)
            subprocess.run([first, "quantize", a.model, path, "--type", t], check=True,
                           capture_output=True)
        files[t] = path
    cells = {(b, t, w): [] for b in bins for t in types for w in placements}
    for rnd in range(a.rounds):
        log(f"round {rnd + 1}/{a.rounds}")
        for t in types:
            for w in placements:
                for b, path in bins.items():
                    j = run_json([path, "bench", "-m", files[t], "-p", str(a.prompt), "-n",
                                  str(a.gen), "-r", "1", "-w", "1", "--weights", w, "--json"],
                                 envs[b])
                    cells[(b, t, w)].append(j)
    rows = []
    for (b, t, w), js in cells.items():
        plan = js[0]["plan"]
        rows.append({
            "binary": b, "type": t, "placement": w, "plan": plan["summary"],
            "weights": plan["weights"],
            "predicted_decode": plan["predicted_decode_tokens_per_s"],
            "predicted_prefill": plan["predicted_prefill_tokens_per_s"],
            "decode": [j["decode_tokens_per_s"] for j in js],
            "prefill": [j["prefill_tokens_per_s"] for j in js],
        })
    md = [f"Command: `python3 bench/planner_formats.py "
          + " ".join(f"--memwall {b}={p}" for b, p in bins.items())
          + f" -p {a.prompt} -n {a.gen} --rounds {a.rounds}` (each cell: `memwall bench -p "
          f"{a.prompt} -n {a.gen} -r 1 -w 1 --weights W`, {a.rounds} rounds interleaved).",
          f"Machine: {platform.platform()}; {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC.", ""]
    for b, path in bins.items():
        prof = subprocess.run([path, "profile"], capture_output=True, text=True,
                              env=envs[b]).stdout.splitlines()
        keep = [x.strip() for x in prof if x.split(":")[0].strip() in (
            "cpu", "DRAM read", "page-cache read", "mapped read", "repacking")]
        md.append(f"Profile of `{b}`: " + "; ".join(keep) + ".")
    md += ["", "| binary | type | --weights | plan weights | decode pred | decode measured median "
           "(min-max) | median/pred | best/pred | prefill pred | prefill measured median "
           "(min-max) | median/pred | best/pred |",
           "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(rows, key=lambda r: (types.index(r["type"]), placements.index(r["placement"]),
                                         list(bins).index(r["binary"]))):
        d, p = r["decode"], r["prefill"]
        pd, pp = r["predicted_decode"], r["predicted_prefill"]
        md.append(f"| {r['binary']} | {r['type']} | {r['placement']} | {r['weights']} | "
                  f"{pd:.0f} | {statistics.median(d):.0f} ({min(d):.0f}-{max(d):.0f}) | "
                  f"{statistics.median(d) / pd:.2f} | {max(d) / pd:.2f} | "
                  f"{pp:.0f} | {statistics.median(p):.0f} ({min(p):.0f}-{max(p):.0f}) | "
                  f"{statistics.median(p) / pp:.2f} | {max(p) / pp:.2f} |")
    text = "\n".join(md) + "\n"
    print(text)
    with open(a.out + ".json", "w") as f:
        json.dump({"binaries": bins, "rows": rows}, f, indent=1)
    log("wrote", a.out + ".json")


if __name__ == "__main__":
    main()
