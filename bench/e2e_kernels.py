#!/usr/bin/env python3
"""`make bench`: memwall's kernels measured against the machine and against llama.cpp,
in one run. Writes bench/results/kernels.md (and the raw numbers beside it).

1. Micro benchmarks (build/memwall_micro, Google Benchmark, JSON): the read-bandwidth
   probe and every GEMM micro-kernel on Llama-1B-sized matrices.
2. End to end, per model: memwall (`memwall bench --json --harness`) and llama.cpp
   (bench/llama_runner.py over the PyPI package llama-cpp-python, built from source with
   native CPU flags by scripts/setup-bench) each in its own process, same GGUF, same
   threads, same prompt (-p) and generation (-n) lengths. Both load once and warm up,
   then their repetitions alternate (memwall first on even reps, llama.cpp first on odd),
   with the 2-thread 1 GiB read-bandwidth probe run before every pair and after the last.
   Reported: medians and spread of prefill and decode tok/s, memwall/llama.cpp ratios
   (of the medians, and the range of the per-pair ratios), peak RSS of each process
   (VmHWM), and the decode roofline fraction = decode tok/s x bytes read per token /
   read bandwidth (median of this model's probes). Bytes per token = every matrix the
   forward pass multiplies by (the output head, i.e. the embedding when tied, included)
   + the engine's own KV cache bytes at the mean decode context (memwall: what its
   KvPool holds per token; llama.cpp: f16 K and V).
3. Where decode time goes: `perf stat` if hardware counters work, else callgrind
   (instruction shares) on a short decode; plus a time-sampled `perf record -e cpu-clock`
   profile when perf can sample.
Models: the default SmolLM2-135M-Instruct Q4_1 and synthetic Llama-3.2-1B-shaped models
in q4_0 and q8_0 (written once by `memwall synth` into --model-dir, git-ignored)."""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "bench", "llama_runner.py")

MODELS = {
    "default": {"label": "SmolLM2-135M-Instruct Q4_1 (default model)",
                "path": os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")},
    "1b-q4_0": {"label": "Llama-3.2-1B shape, q4_0 (synthetic)", "synth": ("llama-3.2-1b", "q4_0")},
    "1b-q8_0": {"label": "Llama-3.2-1B shape, q8_0 (synthetic)", "synth": ("llama-3.2-1b", "q8_0")},
}

# Issue 3's acceptance targets: memwall/llama.cpp ratios of medians and roofline fractions.
RATIO_TARGETS = {"default": {"decode": 1.3, "prefill": 1.5},
                 "1b-q4_0": {"decode": 1.1, "prefill": 1.0},
                 "1b-q8_0": {"decode": 1.1, "prefill": 1.0}}
ROOFLINE_TARGETS = {"1b-q8_0": 0.60, "1b-q4_0": 0.50}
MIN_REPS = 5


def log(*a):
    print("[e2e]", *a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- machine

def cpuinfo():
    info = {"model": "unknown", "flags": set()}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and info["model"] == "unknown":
                info["model"] = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not info["flags"]:
                info["flags"] = set(line.split(":", 1)[1].split())
    return info


def machine():
    ci = cpuinfo()
    wanted = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
              "avx512_bf16", "avx512vbmi", "amx_tile", "amx_int8", "amx_bf16"]
    cores = os.cpu_count()
    try:
        out = run(["lscpu"]).stdout
        m = re.search(r"Core\(s\) per socket:\s+(\d+)", out)
        s = re.search(r"Socket\(s\):\s+(\d+)", out)
        l3 = re.search(r"L3 cache:\s+(.+)", out)
        phys = int(m.group(1)) * int(s.group(1)) if m and s else cores
        l3 = l3.group(1).strip() if l3 else "?"
    except (OSError, subprocess.CalledProcessError):
        phys, l3 = cores, "?"
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    try:
        commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        untracked_src = run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "tools"]).stdout
        if dirty or "??" in untracked_src:
            commit += " + uncommitted changes in the working tree"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"cpu": ci["model"], "flags": [f for f in wanted if f in ci["flags"]],
            "logical_cpus": cores, "physical_cores": phys, "l3": l3, "memory_bytes": mem,
            "kernel": f"{platform.system()} {platform.release()}", "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "has_avx512": "avx512f" in ci["flags"]}


# ---------------------------------------------------------------- models

def gguf_facts(path):
    """Bytes of every matrix read per token and the KV geometry, from the GGUF itself."""
    from gguf import GGUFReader
    r = GGUFReader(path)
    names = {t.name for t in r.tensors}
    tied = "output.weight" not in names
    matrix_bytes, by_type = 0, {}
    for t in r.tensors:
        if len(t.shape) < 2:
            continue
        if t.name == "token_embd.weight" and not tied:
            continue  # an untied embedding is a row lookup, not a product
        matrix_bytes += int(t.n_bytes)
        tname = t.tensor_type.name.lower()
        by_type[tname] = by_type.get(tname, 0) + int(t.n_elements)

    def field(key, default=None):
        f = r.fields.get(key)
        if f is None:
            return default
        v = f.parts[f.data[0]]
        return v.tolist()[0] if hasattr(v, "tolist") else v

    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    n_layer = field(f"{arch}.block_count")
    n_embd = field(f"{arch}.embedding_length")
    n_head = field(f"{arch}.attention.head_count")
    n_head_kv = field(f"{arch}.attention.head_count_kv", n_head)
    head_dim = field(f"{arch}.attention.key_length", n_embd // n_head)
    return {"matrix_bytes": matrix_bytes, "tied": tied, "file_bytes": os.path.getsize(path),
            "weight_format": max(by_type, key=by_type.get) if by_type else "?",
            "n_layer": n_layer, "n_head_kv": n_head_kv, "head_dim": head_dim,
            # llama.cpp's default KV cache: f16 K and V
            "llama_kv_bytes_per_position": n_layer * 2 * n_head_kv * head_dim * 2}


def ensure_model(key, memwall, model_dir):
    spec = MODELS[key]
    if "path" in spec:
        if not os.path.exists(spec["path"]):
            sys.exit(f"error: {spec['path']} is missing: run `make model` (scripts/fetch-model)")
        return spec["path"]
    shape, wtype = spec["synth"]
    path = os.path.join(model_dir, f"{shape}-{wtype}.gguf")
    if not os.path.exists(path):
        os.makedirs(model_dir, exist_ok=True)
        log(f"writing {path}")
        tmp = path + ".tmp"
        run([memwall, "synth", "--shape", shape, "--type", wtype, "-o", tmp])
        os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- micro / bandwidth

def run_micro(micro, filt=None, extra=()):
    cmd = [micro, "--benchmark_format=json"] + list(extra)
    if filt:
        cmd.append(f"--benchmark_filter={filt}")
    return json.loads(run(cmd).stdout)


def bandwidth_probe(micro, isa, threads):
    """GB/s of one 1 GiB read probe (Google Benchmark picks the iterations, >= 1 s)."""
    out = run_micro(micro, f"^read_bw/{isa}/1024MiB/threads:{threads}/")
    for b in out["benchmarks"]:
        if "read_GBps" in b:
            return b["read_GBps"]
    raise RuntimeError("bandwidth probe reported nothing")


# ---------------------------------------------------------------- outside load

def cpu_jiffies(pid):
    """(all CPUs' busy jiffies, all CPUs' total jiffies, this process's jiffies)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])
    busy = total - v[3] - v[4]  # minus idle and iowait
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        own = int(fields[11]) + int(fields[12])  # utime + stime (all threads)
    except OSError:
        own = 0
    return busy, total, own


def outside_load(before, after):
    """CPUs' worth of work that was not the measured engine's, between two snapshots."""
    busy, total, own = (b - a for a, b in zip(before, after))
    return max(0.0, (busy - own) / total * (os.cpu_count() or 1)) if total > 0 else 0.0


def wait_for_quiet(max_seconds, threshold):
    """Waits (up to max_seconds) for a 1-second window in which other processes use less
    than `threshold` CPUs. Returns (seconds waited, outside load of the last window)."""
    t0, load = time.monotonic(), 0.0
    while True:
        before = cpu_jiffies(os.getpid())
        time.sleep(1.0)
        load = outside_load(before, cpu_jiffies(os.getpid()))
        waited = time.monotonic() - t0
        if load < threshold or waited >= max_seconds:
            return waited, load


# ---------------------------------------------------------------- engines

class Engine:
    """A benchmark process speaking the harness protocol (ready line, one JSON line per rep)."""

    def __init__(self, name, cmd, log_path):
        self.name, self.cmd = name, cmd
        self.err = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, bufsize=1)
        self.log_path = log_path

    def _line(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            with open(self.log_path) as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {tail.strip()}")
        return json.loads(line)

    def wait_ready(self):
        msg = self._line()
        if not msg.get("ready"):
            raise RuntimeError(f"{self.name}: expected a ready line, got {msg}")

    def rep(self):
        before = cpu_jiffies(self.proc.pid)
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        r = self._line()
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


def spread(v):
    return {"median": statistics.median(v), "min": min(v), "max": max(v),
            "stddev": statistics.stdev(v) if len(v) > 1 else 0.0, "samples": v}


def bench_model(key, path, a, facts, bw_isa, logdir):
    common = ["-p", str(a.n_prompt), "-n", str(a.n_gen), "-t", str(a.threads),
              "-r", str(a.reps), "-w", str(a.warmup), "-b", str(a.batch)]
    mw_cmd = [a.memwall, "bench", "-m", path, "--json", "--harness", "--precision",
              a.precision] + common
    ll_cmd = [a.python, RUNNER, "-m", path, "--harness", "--flash-attn", a.flash_attn] + common
    engines = []
    result = {"key": key, "path": path, "facts": facts, "memwall_cmd": mw_cmd,
              "llama_cmd": ll_cmd, "bandwidth_GBps": [], "pairs": []}
    try:
        t0 = time.monotonic()
        mw = Engine("memwall", mw_cmd, os.path.join(logdir, f"{key}.memwall.log"))
        engines.append(mw)
        mw.wait_ready()
        log(f"{key}: memwall loaded and warmed up ({time.monotonic() - t0:.0f} s)")
        m8 = None
        if a.also_int8 and a.precision != "int8":
            t0 = time.monotonic()
            m8_cmd = [a.memwall, "bench", "-m", path, "--json", "--harness", "--precision",
                      "int8"] + common
            result["memwall_int8_cmd"] = m8_cmd
            m8 = Engine("memwall-int8", m8_cmd, os.path.join(logdir, f"{key}.memwall-int8.log"))
            engines.append(m8)
            m8.wait_ready()
            log(f"{key}: memwall (int8) loaded and warmed up ({time.monotonic() - t0:.0f} s)")
        ll = None
        if not a.no_llama:
            t0 = time.monotonic()
            ll = Engine("llama.cpp", ll_cmd, os.path.join(logdir, f"{key}.llama.log"))
            engines.append(ll)
            ll.wait_ready()
            log(f"{key}: llama.cpp loaded and warmed up ({time.monotonic() - t0:.0f} s)")
        for rep in range(a.reps):
            if a.quiet_wait > 0:
                waited, load = wait_for_quiet(a.quiet_wait, a.quiet_threshold)
                result.setdefault("quiet_wait", []).append({"seconds": waited, "load": load})
                if waited >= 1.5:
                    log(f"{key}: waited {waited:.0f} s for a quiet machine (outside load {load:.2f} CPUs)")
            result["bandwidth_GBps"].append(bandwidth_probe(a.micro, bw_isa, a.threads))
            order = [mw, m8, ll] if rep % 2 == 0 else [ll, m8, mw]
            pair = {}
            for e in order:
                if e is None:
                    continue
                pair[e.name] = e.rep()
            result["pairs"].append(pair)
            msg = " | ".join(f"{n}: pp {r['prefill_tokens_per_s']:.1f} tg {r['decode_tokens_per_s']:.1f}"
                             f" (outside load {r['outside_load_cpus']:.2f} CPUs)"
                             for n, r in pair.items())
            log(f"{key} rep {rep + 1}/{a.reps}: bw {result['bandwidth_GBps'][-1]:.1f} GB/s | {msg}")
        result["bandwidth_GBps"].append(bandwidth_probe(a.micro, bw_isa, a.threads))
        result["memwall"] = mw.finish()
        if m8:
            result["memwall_int8"] = m8.finish()
        if ll:
            result["llama"] = ll.finish()
    except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as e:
        result["error"] = str(e)
        log(f"{key}: error: {e}")
    finally:
        for e in engines:
            e.kill()
    return result


def derive(res, a):
    """Ratios and roofline fractions from one model's raw results."""
    f = res["facts"]
    if "memwall" not in res:
        return
    bw = statistics.median(res["bandwidth_GBps"]) if res["bandwidth_GBps"] else 0.0
    res["bandwidth"] = spread(res["bandwidth_GBps"]) if res["bandwidth_GBps"] else None
    mean_ctx = a.n_prompt + (a.n_gen + 1) / 2  # positions attended per decoded token, on average

    def roofline(engine_json, kv_per_pos):
        bytes_per_tok = f["matrix_bytes"] + kv_per_pos * mean_ctx
        frac = engine_json["decode_tokens_per_s"] * bytes_per_tok / (bw * 1e9) if bw else 0.0
        return bytes_per_tok, frac

    loads = [r["outside_load_cpus"] for p in res["pairs"] for r in p.values()]
    res["outside_load"] = spread(loads) if loads else None
    mw = res["memwall"]
    res["memwall_bytes_per_token"], res["memwall_roofline"] = roofline(mw, mw["kv_bytes_per_token"])
    if "llama" in res:
        ll = res["llama"]
        res["llama_bytes_per_token"], res["llama_roofline"] = roofline(
            ll, f["llama_kv_bytes_per_position"])
        res["ratio"] = {k: mw[f"{k}_tokens_per_s"] / ll[f"{k}_tokens_per_s"]
                        for k in ("prefill", "decode")}
        if "memwall_int8" in res:
            m8 = res["memwall_int8"]
            res["ratio_int8"] = {k: m8[f"{k}_tokens_per_s"] / ll[f"{k}_tokens_per_s"]
                                 for k in ("prefill", "decode")}
            res["memwall_int8_bytes_per_token"], res["memwall_int8_roofline"] = roofline(
                m8, m8["kv_bytes_per_token"])
        paired = {k: [p["memwall"][f"{k}_tokens_per_s"] / p["llama.cpp"][f"{k}_tokens_per_s"]
                      for p in res["pairs"] if "memwall" in p and "llama.cpp" in p]
                  for k in ("prefill", "decode")}
        res["paired_ratio"] = {k: spread(v) for k, v in paired.items() if v}
        # The same over the pairs in which neither engine shared the machine much.
        quiet = [p for p in res["pairs"] if "memwall" in p and "llama.cpp" in p and
                 max(p["memwall"]["outside_load_cpus"], p["llama.cpp"]["outside_load_cpus"])
                 < a.quiet_threshold]
        if quiet:
            q = {}
            for eng in ("memwall", "llama.cpp"):
                for k in ("prefill", "decode"):
                    q[f"{eng}_{k}"] = statistics.median(p[eng][f"{k}_tokens_per_s"] for p in quiet)
            q["ratio"] = {k: q[f"memwall_{k}"] / q[f"llama.cpp_{k}"] for k in ("prefill", "decode")}
            q["pairs"] = len(quiet)
            res["quiet"] = q


# ---------------------------------------------------------------- profile

PERF_SYMBOL = re.compile(r"^\s+([\d.]+)%\s+(\S+)\s+(\S+)\s+\[[.k]\]\s+(.+?)\s*$")


def short_symbol(s, width=110):
    s = re.sub(r"\s+-\s+-\s*$", "", s).strip()
    s = re.sub(r"\(anonymous namespace\)::", "", s)
    s = re.sub(r"std::_Function_handler<.*?>::_M_invoke", "std::function thunk", s)
    return s if len(s) <= width else s[:width - 1] + "…"


def perf_works():
    if not shutil.which("perf"):
        return False, "perf is not installed"
    p = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "true"], capture_output=True,
                       text=True)
    if p.returncode != 0 or "not supported" in p.stderr or "<not counted>" in p.stderr:
        return False, ("`perf stat -e instructions true` reports the counter as not supported "
                       "(no hardware PMU in this VM)")
    return True, "perf stat counts instructions"


def perf_record_profile(memwall, model, n_gen, threads, logdir):
    """Time-sampled profile (software cpu-clock event) of a decode-only run."""
    data = os.path.join(logdir, "perf-decode.data")
    cmd = ["perf", "record", "-e", "cpu-clock", "-F", "999", "-o", data, "--", memwall, "bench",
           "-m", model, "-p", "1", "-n", str(n_gen), "-r", "1", "-w", "1", "-t", str(threads)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, cmd
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort",
                          "comm,dso,symbol", "--stdio", "--percent-limit", "0.7"],
                         capture_output=True, text=True).stdout
    rows = []
    for line in rep.splitlines():
        m = PERF_SYMBOL.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(3), short_symbol(m.group(4))))
    return rows[:15], cmd


def callgrind_profile(memwall, model, n_gen, logdir):
    """Instruction shares (callgrind) of a short, single-threaded, decode-only run."""
    if not shutil.which("valgrind"):
        return None, None
    out = os.path.join(logdir, "callgrind.decode.out")
    # The default precision (fast): valgrind emulates AVX2 but not AVX-512, so this counts
    # the AVX2 packed kernels whatever the machine has.
    run = [memwall, "bench", "-m", model, "-p", "1", "-n", str(n_gen), "-r", "1", "-w", "0",
           "-t", "1"]
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + run
    # The machine profile is cached per thread count: measure the 1-thread one natively
    # first (a few seconds), in a cache of its own, or callgrind spends the better part of
    # an hour emulating the measurement and counts it as decode.
    env = dict(os.environ, MEMWALL_CACHE_DIR=os.path.join(logdir, "callgrind-cache"))
    subprocess.run(run, capture_output=True, text=True, env=env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return None, cmd
    # valgrind does not emulate AVX-512: memwall picks its best target valgrind shows it.
    m = re.search(r"isa: (\S+)", p.stdout)
    isa = m.group(1) if m else "?"
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=99", out],
                         capture_output=True, text=True).stdout
    rows, total = [], None
    for line in ann.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.+?)(?:\s+\[.*\])?\s*$", line)
        if m and "PROGRAM TOTALS" in m.group(3):
            total = int(m.group(1).replace(",", ""))
            continue
        if m:
            sym = m.group(3)
            sym = sym.split(":", 1)[1] if re.match(r"^[^:]*\.(cpp|h|c|S)?:|^\?\?\?:", sym) else sym
            rows.append((float(m.group(2)), short_symbol(sym)))
        m2 = re.match(r"^\s*([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", line)
        if m2:
            total = int(m2.group(1).replace(",", ""))
    return {"rows": rows[:15], "total_ir": total, "isa": isa}, cmd


# ---------------------------------------------------------------- report

def show(cmd):
    """A command line with paths under the repository made relative to it."""
    return " ".join(os.path.relpath(x, ROOT) if os.path.isabs(x) and x.startswith(ROOT + os.sep)
                    else x for x in cmd)


def fmt_tps(s):
    return f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f}, sd {s['stddev']:.1f})"


def mib(b):
    return f"{b / 2**20:.0f} MiB"


def gemm_tables(micro_json):
    rows = {}
    for b in micro_json.get("benchmarks", []):
        name = b.get("name", "")
        if not name.startswith("gemm/") or b.get("error_occurred"):
            continue
        parts = name.split("/")  # gemm/type/isa/RxC/T:x/threads:y/...
        fmt, isa, shape = parts[1], parts[2], parts[3]
        T = int(parts[4].split(":")[1])
        th = int(parts[5].split(":")[1])
        rows.setdefault((fmt, isa, shape), {})[(T, th)] = b
    return rows


def busy_note(r, a):
    o = r.get("outside_load")
    if o and o["median"] > a.quiet_threshold:
        return f" (unreliable: other processes used {o['median']:.1f} CPUs meanwhile)"
    return ""


def verdict(ok, r, a):
    return ("PASS" if ok else "FAIL") + (" (unreliable)" if busy_note(r, a) else "")


def write_report(path, a, mach, micro, results, profile, timing, command):
    L = []
    w = L.append
    w("# Fast CPU kernels: benchmarks (issue 3)")
    w("")
    w(f"Measured {mach['date']} at commit {mach['commit']}.")
    w("")
    w(f"Machine: {mach['cpu']}, {mach['physical_cores']} cores ({mach['logical_cpus']} logical CPUs), "
      f"L3 {mach['l3']}, {mach['memory_bytes'] / 2**30:.0f} GiB, {mach['kernel']}. "
      f"SIMD flags: {' '.join(mach['flags'])}.")
    w("")
    w("Command: `make bench`, i.e.")
    w("")
    w("    " + command)
    w("")
    w(f"It took {timing['total'] / 60:.1f} min (micro benchmarks {timing['micro'] / 60:.1f} min, "
      f"end to end {timing['e2e'] / 60:.1f} min, profile {timing['profile'] / 60:.1f} min). "
      "The machine is shared: absolute numbers move with outside load, so every claim below is "
      "a ratio measured side by side in this run.")
    w("")

    # --- acceptance
    w("## Acceptance targets (issue 3)")
    w("")
    w("| target | measured | result |")
    w("| --- | --- | --- |")
    for key, t in RATIO_TARGETS.items():
        r = next((x for x in results if x["key"] == key), None)
        for kind in ("decode", "prefill"):
            label = f"{MODELS[key]['label']}: {kind} >= {t[kind]}x llama.cpp"
            if not r or "ratio" not in r:
                w(f"| {label} | not measured | FAIL |")
                continue
            v = r["ratio"][kind]
            reps_ok = r["memwall"]["reps"] >= MIN_REPS and r["llama"]["reps"] >= MIN_REPS
            ok = v >= t[kind] and reps_ok
            note = "" if reps_ok else f" (fewer than {MIN_REPS} reps)"
            note += busy_note(r, a)
            w(f"| {label} | {v:.2f}x{note} | {verdict(ok, r, a)} |")
    for key, t in ROOFLINE_TARGETS.items():
        r = next((x for x in results if x["key"] == key), None)
        label = f"{MODELS[key]['label']}: memwall decode >= {t:.0%} of read bandwidth"
        if not r or "memwall_roofline" not in r:
            w(f"| {label} | not measured | FAIL |")
            continue
        v = r["memwall_roofline"]
        w(f"| {label} | {v:.1%} of {r['bandwidth']['median']:.1f} GB/s{busy_note(r, a)} | "
          f"{verdict(v >= t, r, a)} |")
    w("")
    w("Not measured by `make bench` (see the tests): kernel equality on every ISA, the reference "
      "forward-pass tests, and the fast path's KL-divergence / top-1 agreement bound.")
    w("")

    # --- e2e
    w("## End to end: memwall vs llama.cpp")
    w("")
    ll_any = next((r["llama"] for r in results if "llama" in r), None)
    w(f"Same GGUF file, {a.threads} threads each, prompt {a.n_prompt} tokens (pseudo-random ids, "
      f"the same splitmix64 sequence in both), then {a.n_gen} tokens decoded one at a time "
      f"(argmax fed back), context {a.n_prompt + a.n_gen}, batch {a.batch}. Each engine runs in its "
      f"own process, loads once, does {a.warmup} warm-up repetition(s), then the {a.reps} measured "
      "repetitions alternate between engines. Cells: median (min–max, sd) of tok/s. Ratios: "
      "memwall/llama.cpp of the medians; in brackets the range of the per-pair ratios.")
    w("")
    if ll_any:
        w(f"llama.cpp: llama-cpp-python {ll_any['llama_cpp_python']} (built from source, "
          f"GGML_NATIVE=ON, no BLAS), low-level API, flash attention `{ll_any['flash_attn']}`"
          f"{' (llama.cpp default; on for CPU)' if ll_any['flash_attn'] == 'auto' else ''}, "
          f"f16 KV cache, mmap. System info: `{ll_any['system_info']}`")
        w("")
    mw_any = next((r["memwall"] for r in results if "memwall" in r), None)
    if mw_any:
        w(f"memwall: ISA `{mw_any['isa']}`, precision `{mw_any['precision']}`.")
        w("")
    for r in results:
        w(f"### {MODELS[r['key']]['label']}")
        w("")
        f = r["facts"]
        w(f"`{os.path.relpath(r['path'], ROOT)}`: {f['file_bytes'] / 1e6:.0f} MB, weights "
          f"{f['weight_format']}, {f['matrix_bytes'] / 1e6:.1f} MB of matrices read per token "
          f"({'tied embedding as output head' if f['tied'] else 'separate output head'}).")
        w("")
        if "error" in r:
            w(f"**Error:** `{r['error']}`")
            w("")
        if "memwall" not in r:
            continue
        mw, ll = r["memwall"], r.get("llama")
        w("| engine | prefill tok/s | decode tok/s | peak RSS | bytes read / decoded token | decode roofline |")
        w("| --- | --- | --- | --- | --- | --- |")
        w(f"| memwall | {fmt_tps(mw['prefill_tokens_per_s_spread'])} | "
          f"{fmt_tps(mw['decode_tokens_per_s_spread'])} | {mib(mw['peak_rss_bytes'])} | "
          f"{r['memwall_bytes_per_token'] / 1e6:.1f} MB | {r['memwall_roofline']:.1%} |")
        if ll:
            own = ll["peak_rss_bytes"] - ll["rss_before_load_bytes"]
            w(f"| llama.cpp | {fmt_tps(ll['prefill_tokens_per_s_spread'])} | "
              f"{fmt_tps(ll['decode_tokens_per_s_spread'])} | {mib(ll['peak_rss_bytes'])} "
              f"({mib(own)} above the Python process before load) | "
              f"{r['llama_bytes_per_token'] / 1e6:.1f} MB | {r['llama_roofline']:.1%} |")
            pr = r.get("paired_ratio", {})

            def ratio_cell(k):
                s = pr.get(k)
                rng = f" [{s['min']:.2f}–{s['max']:.2f}]" if s else ""
                return f"{r['ratio'][k]:.2f}x{rng}"
            w(f"| **memwall / llama.cpp** | **{ratio_cell('prefill')}** | **{ratio_cell('decode')}** | "
              f"{mw['peak_rss_bytes'] / ll['peak_rss_bytes']:.2f}x | | |")
            if "memwall_int8" in r:
                m8 = r["memwall_int8"]
                w(f"| memwall, `--precision int8` | {fmt_tps(m8['prefill_tokens_per_s_spread'])} | "
                  f"{fmt_tps(m8['decode_tokens_per_s_spread'])} | {mib(m8['peak_rss_bytes'])} | "
                  f"{r['memwall_int8_bytes_per_token'] / 1e6:.1f} MB | "
                  f"{r['memwall_int8_roofline']:.1%} |")
                w(f"| memwall int8 / llama.cpp | {r['ratio_int8']['prefill']:.2f}x | "
                  f"{r['ratio_int8']['decode']:.2f}x | | | |")
        w("")
        if r.get("bandwidth"):
            b = r["bandwidth"]
            w(f"Read bandwidth beside this model's runs ({len(b['samples'])} probes, {a.threads} threads, "
              f"1 GiB): median {b['median']:.1f} GB/s (min {b['min']:.1f}, max {b['max']:.1f}). "
              f"memwall load {mw['load_seconds']:.2f} s"
              + (f" plus {mw['pack_seconds']:.2f} s repacking {mw['packed_bytes'] / 2**20:.0f} MiB of "
                 f"weights into the interleaved layout (the packed copy replaces the file's pages)"
                 if mw.get("packed_bytes") else "")
              + (f", llama.cpp load {ll['load_seconds']:.2f} s." if ll else "."))
            w("")
        if r.get("outside_load"):
            o = r["outside_load"]
            w(f"Outside CPU load during the measured repetitions (CPU time of every other process "
              f"on the machine, in CPUs of {os.cpu_count()}): median {o['median']:.2f} "
              f"(min {o['min']:.2f}, max {o['max']:.2f})"
              + (" — the machine was busy: these numbers are contaminated, rerun when quiet."
                 if o["median"] > a.quiet_threshold else "."))
            w("")
        if r.get("quiet") and r["outside_load"] and r["outside_load"]["max"] >= a.quiet_threshold:
            q = r["quiet"]
            w(f"Only the {q['pairs']} pair(s) with outside load < {a.quiet_threshold} CPUs: "
              f"memwall prefill {q['memwall_prefill']:.1f}, decode {q['memwall_decode']:.1f} tok/s; "
              f"llama.cpp prefill {q['llama.cpp_prefill']:.1f}, decode {q['llama.cpp_decode']:.1f} "
              f"tok/s; ratios prefill {q['ratio']['prefill']:.2f}x, decode {q['ratio']['decode']:.2f}x.")
            w("")

    # --- micro
    w("## Micro benchmarks (Google Benchmark, `memwall_micro`)")
    w("")
    if micro is None:
        w("Not run (--skip-micro).")
    else:
        w("### Read bandwidth (STREAM-like: sum of an array, 4 address streams and 8 accumulators "
          "per thread; GB/s = 1e9 bytes/s)")
        w("")
        w("| probe | 1 thread | 2 threads |")
        w("| --- | --- | --- |")
        bw = {}
        for b in micro["benchmarks"]:
            if b["name"].startswith("read_bw/") and not b.get("error_occurred"):
                _, isa, size, th = b["name"].split("/")[:4]
                bw.setdefault((isa, size), {})[th] = b["read_GBps"]
        for (isa, size), v in bw.items():
            w(f"| {isa}, {size} | {v.get('threads:1', 0):.1f} | {v.get('threads:2', 0):.1f} |")
        w("")
        w("### GEMM micro-kernels on Llama-1B-sized matrices")
        w("")
        w("One tile call over the whole matrix, single-threaded unless noted; weights rotate through "
          ">= 256 MiB of copies so T=1 streams them from DRAM. T=1: GB/s of weights read (1 and 2 "
          "threads; compare with the 1 GiB probe above). T=64/256: GFLOP/s (2*R*n*T per second). "
          "The ISA is the kernel's own target (a forced target without its own kernel falls back).")
        w("")
        w("| format | kernel ISA | R x n | T=1 GB/s (1 thr) | T=1 GB/s (2 thr) | T=64 GFLOP/s | T=256 GFLOP/s |")
        w("| --- | --- | --- | --- | --- | --- | --- |")
        for (fmt, isa, shape), v in gemm_tables(micro).items():
            def cell(T, th, key):
                b = v.get((T, th))
                return f"{b[key]:.2f}" if b else "–"
            w(f"| {fmt} | {isa} | {shape} | {cell(1, 1, 'weight_GBps')} | {cell(1, 2, 'weight_GBps')} | "
              f"{cell(64, 1, 'GFLOPs')} | {cell(256, 1, 'GFLOPs')} |")
        w("")

    # --- profile
    w("## Where decode time goes")
    w("")
    w(profile["perf_stat_note"] + ".")
    w("")
    if profile.get("callgrind"):
        cg = profile["callgrind"]
        w(f"Instruction shares (callgrind, exclusive) of `{show(profile['callgrind_cmd'][3:])}` "
          f"(1-token prompt, so nearly all of it is decode; single thread; "
          f"{(cg['total_ir'] or 0) / 1e9:.1f} G instructions in all). Valgrind does not emulate "
          f"AVX-512, so under callgrind memwall dispatched to `{cg['isa']}` (on an AVX-512 VNNI "
          "machine the timings above used other kernels than these; the time-sampled profiles "
          "below show the ones that ran).")
        w("")
        w("| share of instructions | function |")
        w("| --- | --- |")
        for pct, sym in cg["rows"]:
            w(f"| {pct:.1f}% | `{sym}` |")
        w("")
    elif "callgrind_cmd" in profile:
        w("callgrind did not run (valgrind missing or the run failed).")
        w("")
    for pr in profile.get("perf_record") or []:
        if not pr["rows"]:
            w(f"`perf record` failed on `{show(pr['cmd'])}`.")
            w("")
            continue
        w(f"Time shares (`perf record -e cpu-clock`, a software timer, so stalls on memory count, "
          f"unlike instruction counts; warm-up and measured decode of 32 tokens after a 1-token "
          f"prompt) of `{show(pr['cmd'][9:])}`:")
        w("")
        w("| share of samples | object | function |")
        w("| --- | --- | --- |")
        for pct, dso, sym in pr["rows"]:
            w(f"| {pct:.1f}% | {dso} | `{sym}` |")
        w("")
    w("Raw numbers: bench/results/kernels.json (end to end) and bench/results/micro.json "
      "(Google Benchmark JSON).")
    w("")
    with open(path, "w") as f:
        f.write("\n".join(L))


# ---------------------------------------------------------------- main

def rewrite_report(a):
    """Re-renders the report from kernels.json (and micro.json beside it) of an earlier run."""
    with open(a.from_json) as f:
        raw = json.load(f)
    old = argparse.Namespace(**raw["args"])
    for k, v in vars(a).items():  # options newer than the run take their defaults
        if not hasattr(old, k):
            setattr(old, k, v)
    old.out = a.out
    for r in raw["results"]:
        derive(r, old)
    micro = None
    micro_path = os.path.join(os.path.dirname(os.path.abspath(a.from_json)), "micro.json")
    if not old.skip_micro and os.path.exists(micro_path):
        with open(micro_path) as f:
            micro = json.load(f)
    profile = raw["profile"]
    command = raw.get("command") or show([sys.executable, os.path.join(ROOT, "bench", "e2e_kernels.py"),
                                          "--memwall", old.memwall, "--micro", old.micro])
    write_report(a.out, old, raw["machine"], micro, raw["results"], profile, raw["timing_seconds"],
                 command)
    log(f"rewrote {os.path.relpath(a.out, ROOT)} from {a.from_json}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memwall", default=os.path.join(ROOT, "build", "memwall"))
    ap.add_argument("--micro", default=os.path.join(ROOT, "build", "memwall_micro"))
    ap.add_argument("--python", default=sys.executable, help="interpreter with llama_cpp")
    ap.add_argument("--models", default="default,1b-q4_0,1b-q8_0",
                    help=f"comma-separated: {', '.join(MODELS)}")
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "build-bench", "models"),
                    help="where the synthetic models are cached (git-ignored)")
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("-w", "--warmup", type=int, default=1)
    ap.add_argument("-b", "--batch", type=int, default=512)
    ap.add_argument("--flash-attn", default="auto", choices=["auto", "on", "off"],
                    help="llama.cpp flash attention (auto: its default)")
    ap.add_argument("--quiet-wait", type=float, default=20.0,
                    help="before each pair of reps, wait up to this many seconds for other "
                         "processes to use < --quiet-threshold CPUs (0: do not wait)")
    ap.add_argument("--quiet-threshold", type=float, default=0.2,
                    help="outside load (CPUs) under which a rep counts as quiet")
    ap.add_argument("--also-int8", action=argparse.BooleanOptionalAction, default=True,
                    help="also run memwall --precision int8 (8-bit activations, as llama.cpp) "
                         "in the same alternation")
    ap.add_argument("--precision", default="fast", choices=["fast", "exact", "int8"],
                    help="memwall's matmul precision (fast: 16-bit integer activations, the "
                         "default; int8: 8-bit, as llama.cpp's quantized matmuls)")
    ap.add_argument("--no-llama", action="store_true", help="memwall only")
    ap.add_argument("--skip-micro", action="store_true")
    ap.add_argument("--micro-filter", default=None, help="Google Benchmark filter for the micro run")
    ap.add_argument("--skip-profile", action="store_true")
    ap.add_argument("--profile-gen", type=int, default=8, help="decoded tokens under callgrind")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "kernels.md"))
    ap.add_argument("--logdir", default=os.path.join(ROOT, "build-bench", "logs"))
    ap.add_argument("--from-json", metavar="KERNELS_JSON",
                    help="measure nothing: rewrite --out from the raw results of an earlier run")
    a = ap.parse_args()
    if a.from_json:
        return rewrite_report(a)
    a.memwall, a.micro = os.path.abspath(a.memwall), os.path.abspath(a.micro)
    for b in (a.memwall, a.micro):
        if not os.access(b, os.X_OK):
            sys.exit(f"error: {b} is not built")
    if not a.no_llama and subprocess.run([a.python, "-c", "import llama_cpp"],
                                         capture_output=True).returncode != 0:
        sys.exit("error: llama_cpp is not importable: run scripts/setup-bench (or pass --no-llama)")
    keys = [k.strip() for k in a.models.split(",") if k.strip()]
    for k in keys:
        if k not in MODELS:
            sys.exit(f"error: unknown model '{k}' (known: {', '.join(MODELS)})")
    os.makedirs(a.logdir, exist_ok=True)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(out_dir, exist_ok=True)

    t_start = time.monotonic()
    mach = machine()
    bw_isa = "avx512" if mach["has_avx512"] else "avx2"
    paths = {k: ensure_model(k, a.memwall, a.model_dir) for k in keys}

    micro = None
    t0 = time.monotonic()
    if not a.skip_micro:
        log("micro benchmarks (this takes a few minutes)")
        micro = run_micro(a.micro, a.micro_filter)
        with open(os.path.join(out_dir, "micro.json"), "w") as f:
            json.dump(micro, f, indent=1)
    t_micro = time.monotonic() - t0

    t0 = time.monotonic()
    results = []
    for k in keys:
        res = bench_model(k, paths[k], a, gguf_facts(paths[k]), bw_isa, a.logdir)
        derive(res, a)
        results.append(res)
        if "ratio" in res:
            log(f"{k}: memwall/llama.cpp prefill {res['ratio']['prefill']:.2f}x decode "
                f"{res['ratio']['decode']:.2f}x; roofline memwall {res['memwall_roofline']:.1%} "
                f"llama.cpp {res['llama_roofline']:.1%} of {res['bandwidth']['median']:.1f} GB/s")
    t_e2e = time.monotonic() - t0

    t0 = time.monotonic()
    ok, note = perf_works()
    profile = {"perf_stat_note": note}
    if not a.skip_profile:
        default_path = paths.get("default", MODELS["default"]["path"])
        if not ok:
            log("profile: callgrind on a short decode")
            profile["callgrind"], profile["callgrind_cmd"] = callgrind_profile(
                a.memwall, default_path, a.profile_gen, a.logdir)
        if shutil.which("perf"):
            profile["perf_record"] = []
            for key in [k for k in ("default", "1b-q4_0") if k in paths] or ["default"]:
                target = paths.get(key, default_path)
                log(f"profile: perf record -e cpu-clock on {os.path.basename(target)}")
                rows, cmd = perf_record_profile(a.memwall, target, 32, a.threads, a.logdir)
                profile["perf_record"].append({"model": key, "rows": rows, "cmd": cmd})
    t_profile = time.monotonic() - t0

    timing = {"total": time.monotonic() - t_start, "micro": t_micro, "e2e": t_e2e,
              "profile": t_profile}
    command = show([sys.executable] + [os.path.abspath(x) if os.path.exists(x) else x
                                       for x in sys.argv])
    write_report(a.out, a, mach, micro, results, profile, timing, command)
    raw = {"machine": mach, "args": vars(a), "command": command, "timing_seconds": timing,
           "results": results, "profile": profile}
    with open(os.path.join(out_dir, "kernels.json"), "w") as f:
        json.dump(raw, f, indent=1, default=str)
    log(f"wrote {os.path.relpath(a.out, ROOT)} in {timing['total'] / 60:.1f} min")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
