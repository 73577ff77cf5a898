#!/usr/bin/env python3
"""Decode speed against the memory budget (issue 4), in one run; writes
bench/results/budget.md and budget.png.

Per model (the default SmolLM2-135M Q4_1, and the synthetic Llama-3.2-1B-shaped
q4_0 written by `memwall synth`):
1. `memwall plan --json` gives the smallest feasible budget and the resident
   plan's peak; budgets are spaced geometrically between the two, plus one
   above the resident peak.
2. At each budget, `memwall bench --mem B --report R` (prefill -p, decode -n,
   -r reps after a warm-up): the chosen plan, predicted and measured peak RSS
   (VmHWM), decode and prefill tokens/s (medians), and for streamed plans the
   bytes read per token, the loader's read throughput and the share of loading
   hidden behind compute (overlap = 1 - compute's wait / loader's busy time).
3. The same prompt through llama.cpp (bench/llama_runner.py over
   llama-cpp-python) with mmap (its default) and with use_mmap=False: peak RSS
   and decode tokens/s.
The model file stays in the page cache between runs (it was just read), so
streamed plans here read at page-cache speed; `memwall profile` measures the
disk's cold sequential read, and `memwall plan` run after evicting the file
(posix_fadvise DONTNEED) predicts the cold-disk decode speed, both reported."""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20
sys.path.insert(0, os.path.join(ROOT, "bench"))
from e2e_kernels import MODELS, ensure_model  # noqa: E402


def log(*a):
    print("[budget]", *a, file=sys.stderr, flush=True)


def run_json(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout), r.stderr


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def budgets_for(memwall, model, ctx):
    plan, _ = run_json([memwall, "plan", "-m", model, "--mem", "64GiB", "--ctx", str(ctx), "--json"])
    smallest = plan["minimum_budget_bytes"]
    resident = max(p["predicted_peak_bytes"] for p in plan["plans"] if p["weights"] == "resident")
    lo, hi = smallest / MIB, resident * 1.08 / MIB
    steps = 7
    out = sorted({int(round(lo * (hi / lo) ** (i / (steps - 1)) + 1)) for i in range(steps)})
    return out + [int(hi * 1.3)]


def memwall_point(memwall, model, mem_mib, args):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        report_path = f.name
    try:
        bench, _ = run_json([memwall, "bench", "-m", model, "-p", str(args.n_prompt), "-n",
                             str(args.n_gen), "-r", str(args.reps), "-w", "1", "-t",
                             str(args.threads), "--mem", f"{mem_mib}MiB", "--json", "--report",
                             report_path])
        with open(report_path) as f:
            rep = json.load(f)
    finally:
        os.unlink(report_path)
    plan = rep["plan"]
    tokens = (args.reps + 1) * (args.n_prompt // max(1, plan["batch"]) + 1 + args.n_gen)
    read = rep.get("weights_read_bytes", 0)
    load_s, wait_s = rep.get("weights_load_seconds", 0), rep.get("weights_wait_seconds", 0)
    streamed = plan["weights"] == "streamed"
    return {
        "budget_mib": mem_mib,
        "plan": plan["summary"].split(" | predicted")[0].replace(" | ", ", "),
        "weights": plan["weights"],
        "predicted_peak_mib": rep["predicted_peak_bytes"] / MIB,
        "peak_rss_mib": rep["peak_rss_bytes"] / MIB,
        "decode": bench["decode_tokens_per_s"],
        "prefill": bench["prefill_tokens_per_s"],
        "predicted_decode": plan["predicted_decode_tokens_per_s"],
        "read_gb_per_token": read / tokens / 1e9 if streamed else 0.0,
        "loader_gbps": read / load_s / 1e9 if streamed and load_s > 0 else 0.0,
        "overlap": max(0.0, 1 - wait_s / load_s) if streamed and load_s > 0 else None,
    }


def llama_point(python, model, use_mmap, args):
    cmd = [python, os.path.join(ROOT, "bench", "llama_runner.py"), "-m", model, "-p",
           str(args.n_prompt), "-n", str(args.n_gen), "-r", str(args.reps), "-w", "1", "-t",
           str(args.threads), "-b", "512"]
    if not use_mmap:
        cmd.append("--no-mmap")
    j, _ = run_json(cmd)
    return {"mmap": use_mmap, "peak_rss_mib": j["peak_rss_bytes"] / MIB,
            "before_load_mib": j["rss_before_load_bytes"] / MIB,
            "decode": j["decode_tokens_per_s"], "prefill": j["prefill_tokens_per_s"]}


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2))
    if len(results) == 1:
        axes = [axes]
    for ax, (name, r) in zip(axes, results.items()):
        pts = r["memwall"]
        ax.plot([p["peak_rss_mib"] for p in pts], [p["decode"] for p in pts], "o-",
                label="memwall (x: measured peak RSS)")
        for p in pts:
            ax.annotate(f"{p['budget_mib']}", (p["peak_rss_mib"], p["decode"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
        for lp in r["llama"]:
            ax.plot([lp["peak_rss_mib"]], [lp["decode"]], "s",
                    label=f"llama.cpp {'mmap' if lp['mmap'] else 'no mmap'}")
        ax.axvline(r["weights_mib"], color="grey", ls=":", label="weights' size")
        ax.set_xscale("log")
        ax.set_xlabel("peak RSS (MiB, log); labels: --mem in MiB")
        ax.set_ylabel("decode tokens/s")
        ax.set_title(r["label"], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memwall", default=os.path.join(ROOT, "build", "memwall"))
    ap.add_argument("--python", default=os.path.join(ROOT, ".venv", "bin", "python"))
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "build-bench", "models"))
    ap.add_argument("--models", default="default,1b-q4_0")
    ap.add_argument("-p", "--n-prompt", type=int, default=64)
    ap.add_argument("-n", "--n-gen", type=int, default=32)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "budget.md"))
    args = ap.parse_args()
    ctx = args.n_prompt + args.n_gen

    profile, _ = run_json([args.memwall, "profile", "--json"])
    results = {}
    for name in args.models.split(","):
        spec = MODELS[name]
        model = ensure_model(name, args.memwall, args.model_dir)
        info, _ = run_json([args.memwall, "info", model, "--json"])
        weights_mib = info["weight_bytes"] / MIB
        evict(model)
        cold, _ = run_json([args.memwall, "plan", "-m", model, "--mem", "64GiB", "--ctx",
                            str(ctx), "--json"])
        cold_stream = max((p["predicted_decode_tokens_per_s"] for p in cold["plans"]
                           if p["weights"] == "streamed" and p["window_units"] == 2
                           and p["resident_units"] == 0), default=0)
        points = []
        for mem in budgets_for(args.memwall, model, ctx):
            log(f"{name}: --mem {mem}MiB")
            points.append(memwall_point(args.memwall, model, mem, args))
            log("   ", points[-1]["plan"], f"peak {points[-1]['peak_rss_mib']:.1f} MiB",
                f"decode {points[-1]['decode']:.1f} tok/s")
        llama = []
        if not args.no_llama:
            for use_mmap in (True, False):
                llama.append(llama_point(args.python, model, use_mmap, args))
                log(f"{name}: llama.cpp mmap={use_mmap}", llama[-1])
        results[name] = {"label": spec["label"], "path": model, "weights_mib": weights_mib,
                         "memwall": points, "llama": llama,
                         "cold_streamed_decode_predicted": cold_stream}

    png = os.path.splitext(args.out)[0] + ".png"
    plot(results, png)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"profile": profile, "results": results}, f, indent=1)
    lines = [
        "# Decode speed against the memory budget",
        "",
        f"Command: `{' '.join(['python3', 'bench/budget.py'] + sys.argv[1:])}` "
        f"(memwall bench -p {args.n_prompt} -n {args.n_gen} -r {args.reps} after 1 warm-up, "
        f"{args.threads} threads, greedy).",
        f"Machine: {profile.get('cpu_model')} ({profile.get('isa')}), {os.cpu_count()} CPUs, "
        f"{platform.platform()}; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        f"Machine profile (`memwall profile`): DRAM read {profile['read_gbps']:.1f} GB/s, "
        f"disk sequential read (cold) {profile['disk_read_gbps']:.2f} GB/s, page-cache read "
        f"{profile['cached_read_gbps']:.1f} GB/s, repacking {profile['pack_gbps']:.2f} GB/s "
        "(one thread).",
        "",
        "The model files are in the page cache during these runs, so streamed plans read at "
        "page-cache speed plus repacking; the cold-disk decode speed the planner predicts for "
        "a 2-unit ring is given under each table.",
        "",
        f"![decode tokens/s against peak RSS]({os.path.basename(png)})",
        "",
    ]
    for name, r in results.items():
        lines += [f"## {r['label']}", "", f"Weights: {r['weights_mib']:.0f} MiB.", "",
                  "| --mem | plan | predicted peak | measured peak (VmHWM) | decode tok/s "
                  "(predicted) | prefill tok/s | weights read per token | loader read | "
                  "loading overlapped |",
                  "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for p in r["memwall"]:
            ov = f"{100 * p['overlap']:.0f}%" if p["overlap"] is not None else "-"
            rd = f"{p['read_gb_per_token'] * 1000:.0f} MB" if p["read_gb_per_token"] else "-"
            lg = f"{p['loader_gbps']:.2f} GB/s" if p["loader_gbps"] else "-"
            lines.append(f"| {p['budget_mib']} MiB | {p['plan']} | {p['predicted_peak_mib']:.1f} "
                         f"MiB | {p['peak_rss_mib']:.1f} MiB | {p['decode']:.1f} "
                         f"({p['predicted_decode']:.1f}) | {p['prefill']:.0f} | {rd} | {lg} | {ov} |")
        for lp in r["llama"]:
            lines.append(f"| llama.cpp, {'mmap' if lp['mmap'] else 'use_mmap=False'} | - | - | "
                         f"{lp['peak_rss_mib']:.1f} MiB ({lp['before_load_mib']:.0f} MiB before "
                         f"load: Python, numpy, libllama) | {lp['decode']:.1f} | "
                         f"{lp['prefill']:.0f} | - | - | - |")
        lines += ["", f"Predicted decode with every weight streamed from a cold disk (2-unit "
                  f"ring, file evicted from the page cache): "
                  f"{r['cold_streamed_decode_predicted']:.2f} tok/s.", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    log("wrote", args.out, "and", png)


if __name__ == "__main__":
    main()
