"""memwall quantize against independent references, on the real default model:

- memwall's decoding of every tensor equals the PyPI gguf package's dequantizer, bit for bit;
- memwall's quantizer writes the bytes llama.cpp's own (ggml_quantize_chunk, from the
  libggml-base that llama-cpp-python ships) writes for the same f32 input;
- llama.cpp loads each file memwall writes and generates the same greedy tokens as memwall;
- recipes (--keep, 1-D tensors, fallbacks) and bad input.
"""
import ctypes
import json
import os
import subprocess

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

MEMWALL = os.environ.get("MEMWALL_BIN", "build/memwall")
MODEL = os.environ.get("MEMWALL_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
GGUF_TYPES = ["q8_0", "q4_0", "q4_1", "q4_k", "q5_k", "q6_k", "tq2_0", "tq1_0"]  # GGUF types
TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
            "q4_k": 12, "q5_k": 13, "q6_k": 14, "bf16": 30, "tq1_0": 34, "tq2_0": 35}


def quantize(env, src, dst, qtype, *extra, check=True):
    p = subprocess.run([MEMWALL, "quantize", str(src), str(dst), "--type", qtype, "--json",
                        *extra], capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)
    return p


def tensors(path):
    return {t.name: t for t in GGUFReader(str(path)).tensors}


def as_f32(t):
    """gguf's dequantization of a tensor, [rows, cols]."""
    return dequantize(np.asarray(t.data), t.tensor_type).reshape(-1, int(t.shape[0]))


@pytest.fixture(scope="module")
def base(env, tmp_path_factory):
    """The default model decoded to f32 by memwall: the input every quantizer gets."""
    out = tmp_path_factory.mktemp("quant") / "base-f32.gguf"
    quantize(env, MODEL, out, "f32")
    return out


@pytest.fixture(scope="module")
def ggml():
    import llama_cpp
    lib = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
    f = lib.ggml_quantize_chunk
    f.restype = ctypes.c_size_t
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                  ctypes.c_int64, ctypes.c_void_p]
    return f


def ggml_quantize(fn, qtype, x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, cols = x.shape
    out = np.zeros(rows * cols * 4 + 1024, dtype=np.uint8)  # more than any type needs
    n = fn(TYPE_IDS[qtype], x.ctypes.data, out.ctypes.data, 0, rows, cols, None)
    return out[:n]


def test_decoding_equals_gguf_package(base):
    """q4_1 (the source) decoded by memwall == gguf's dequantizer, every tensor, exactly."""
    src, dec = tensors(MODEL), tensors(base)
    assert src.keys() == dec.keys()
    for name, t in src.items():
        want = as_f32(t)
        got = np.asarray(dec[name].data, dtype=np.float32).reshape(want.shape)
        assert np.array_equal(got, want), name


@pytest.mark.parametrize("qtype", GGUF_TYPES)
def test_quantizer_matches_llama_cpp(env, base, ggml, tmp_path, qtype):
    """Every matrix, in the target type or the fallback its rows need (the default model's rows
    of 576 do not split into k-quant and ternary blocks of 256), has llama.cpp's bytes."""
    out = tmp_path / f"{qtype}.gguf"
    summary = quantize(env, base, out, qtype)
    assert summary["types"][qtype]["tensors"] >= 30  # at least every ffn_down (rows of 1536)
    ref, got = tensors(base), tensors(out)
    checked = 0
    for name, t in got.items():
        kind = t.tensor_type.name.lower()
        if kind == "f32":
            continue
        x = np.asarray(ref[name].data, dtype=np.float32).reshape(-1, int(t.shape[0]))
        want = ggml_quantize(ggml, kind, x)
        mine = np.asarray(t.data).reshape(-1).view(np.uint8)
        assert mine.size == want.size, name
        diff = np.flatnonzero(mine != want)
        assert diff.size == 0, f"{name} ({kind}): {diff.size} bytes differ from llama.cpp's"
        checked += 1
    assert checked >= 200  # every matrix of the model


def write_imatrix(path, base_tensors, seed=0):
    """A random importance matrix in memwall's (llama.cpp-style) GGUF layout; returns the
    importance the quantizers receive: in_sum2 / counts, in float32."""
    from gguf import GGUFWriter
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), "imatrix")
    importance = {}
    for name, t in base_tensors.items():
        if len(t.shape) < 2:
            continue
        cols = int(t.shape[0])
        sum2 = (rng.lognormal(0, 1.5, cols) * 50).astype(np.float32)
        w.add_tensor(name + ".in_sum2", sum2)
        w.add_tensor(name + ".counts", np.array([50], dtype=np.float32))
        importance[name] = (sum2.astype(np.float64) / 50).astype(np.float32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return importance


def ggml_quantize_weighted(fn, qtype, x, importance):
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, cols = x.shape
    imp = np.ascontiguousarray(importance, dtype=np.float32)
    out = np.zeros(rows * cols * 4 + 1024, dtype=np.uint8)
    n = fn(TYPE_IDS[qtype], x.ctypes.data, out.ctypes.data, 0, rows, cols, imp.ctypes.data)
    return out[:n]


@pytest.mark.parametrize("qtype", ["q4_0", "q4_1", "q4_k"])
def test_importance_weighted_quantizer_matches_llama_cpp(env, base, ggml, tmp_path, qtype):
    """With the same importance per column, memwall's weighted quantizers write llama.cpp's bytes
    (llama.cpp's quantize with an imatrix). q4_k applies to ffn_down (rows of 1536); the other
    matrices fall back to a 32-weight type, also compared."""
    ref = tensors(base)
    importance = write_imatrix(tmp_path / "imatrix.gguf", ref)
    out = tmp_path / f"{qtype}-imat.gguf"
    quantize(env, base, out, qtype, "--imatrix", tmp_path / "imatrix.gguf")
    plain = tmp_path / f"{qtype}.gguf"
    quantize(env, base, plain, qtype)
    checked = off_grid = differs_from_plain = 0
    plain_tensors = tensors(plain)
    for name, t in tensors(out).items():
        kind = t.tensor_type.name.lower()
        if kind not in TYPE_IDS or kind in ("f32", "f16") or name not in importance:
            continue
        x = np.asarray(ref[name].data, dtype=np.float32).reshape(-1, int(t.shape[0]))
        want = ggml_quantize_weighted(ggml, kind, x, importance[name])
        mine = np.asarray(t.data).reshape(-1).view(np.uint8)
        diff = np.flatnonzero(mine != want)
        assert diff.size == 0, f"{name} ({kind}): {diff.size} bytes differ from llama.cpp's"
        checked += 1
        # The base was decoded from q4_1, so its q4_1 matrices sit on a q4_1 grid that any
        # search finds again: only the other types show the importance at work.
        if kind != "q4_1" and name != "token_embd.weight":
            off_grid += 1
            differs_from_plain += not np.array_equal(
                mine, np.asarray(plain_tensors[name].data).reshape(-1).view(np.uint8))
    assert checked >= 200
    assert differs_from_plain >= 0.9 * off_grid  # the importance changed the encoding


def test_imatrix_file_errors(env, base, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 40)
    p = quantize(env, base, tmp_path / "o.gguf", "q4_0", "--imatrix", bad, check=False)
    assert p.returncode != 0 and p.stderr.startswith("error: ")
    both = quantize(env, base, tmp_path / "o.gguf", "q4_0", "--imatrix", bad, "--calib", bad,
                    check=False)
    assert both.returncode != 0 and "not both" in both.stderr


def run_ok(env, *args):
    p = subprocess.run([MEMWALL, *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return p


def greedy_memwall(env, model, ids, n):
    p = subprocess.run([MEMWALL, "run", "-m", str(model), "--tokens", " ".join(map(str, ids)),
                        "-n", str(n), "--temp", "0", "--ignore-eos", "--output-ids",
                        "--precision", "exact"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return [int(x) for x in p.stdout.split()]


def llama_scores(model, ids):
    """llama.cpp's logits at every position of ids."""
    import llama_cpp
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=256, n_threads=2, logits_all=True,
                          verbose=False)
    llm.eval(ids)
    return np.array(llm.scores[:len(ids)])


def assert_same_greedy(model, prompt, mine):
    """llama.cpp, fed memwall's greedy continuation, picks the same token at each step; where
    it does not, the two engines' choices are a near tie in llama.cpp's own logits (its q8
    activations and memwall's f32 ones round differently)."""
    scores = llama_scores(model, prompt + mine)[len(prompt) - 1:-1]
    theirs = scores.argmax(axis=1)
    gaps = scores[np.arange(len(mine)), theirs] - scores[np.arange(len(mine)), mine]
    differ = int((theirs != np.array(mine)).sum())
    tolerance = max(0.2, 0.005 * np.abs(scores).max())
    assert differ <= 1 and gaps.max() < tolerance, (differ, gaps.max(), list(theirs), mine)


def prompt_ids(env):
    p = subprocess.run([MEMWALL, "tokenize", "-m", MODEL, "--no-bos",
                        "The history of the city of Paris begins"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    return [int(x) for x in p.stdout.split()]


@pytest.mark.parametrize("qtype", GGUF_TYPES)
def test_llama_cpp_loads_and_agrees(env, base, tmp_path, qtype):
    out = tmp_path / f"{qtype}.gguf"
    if qtype.startswith("tq"):
        # Ternary weights made from a model not trained ternary are numerically chaotic (any two
        # roundings, even memwall's own exact and int8 paths, disagree by tens of logits), so
        # the ternary files come from a synthetic f32 model of width 256 instead.
        src = tmp_path / "synth-f32.gguf"
        run_ok(env, "synth", "-o", src, "--type", "f32", "--n-embd", "256", "--n-ff", "512",
               "--n-layer", "4", "--n-head", "4", "--n-head-kv", "2", "--vocab", "1000")
        quantize(env, src, out, qtype)
        ids = [1, 5, 9, 200, 7, 33, 400, 12]
    else:
        quantize(env, base, out, qtype)
        ids = prompt_ids(env)
    assert_same_greedy(out, ids, greedy_memwall(env, out, ids, 16))


def test_recipe_keep_and_norms(env, base, tmp_path):
    out = tmp_path / "mixed.gguf"
    s = quantize(env, base, out, "q4_0", "--keep", r"token_embd=q8_0", "--keep", r"ffn_down=q4_1")
    t = tensors(out)
    assert t["token_embd.weight"].tensor_type.name == "Q8_0"
    assert t["blk.3.ffn_down.weight"].tensor_type.name == "Q4_1"
    assert t["blk.3.ffn_up.weight"].tensor_type.name == "Q4_0"
    assert t["blk.3.attn_norm.weight"].tensor_type.name == "F32"
    assert s["types"]["q8_0"]["tensors"] == 1
    assert s["types"]["q4_1"]["tensors"] == 30
    # bits per weight agree with the file
    total = sum(int(x.n_bytes) for x in t.values())
    assert s["bytes_out"] == total
    assert abs(s["bits_per_weight"] - 8 * total / s["weights"]) < 1e-9
    md = {f.name: f for f in GGUFReader(str(out)).fields.values()}
    assert "memwall.quantize.recipe" in md


@pytest.mark.parametrize("args,message", [
    (["--type", "q9_9"], "unknown --type"),
    (["--type", "q4_0", "--keep", "token_embd"], "PATTERN=TYPE"),
    (["--type", "q4_0", "--keep", "(=q8_0"], "regular expression"),
    (["--type", "q4_0", "--keep", "x=iq2_xxs"], "cannot write"),
    (["--type", "q4_0", "--calib", "/nonexistent/text"], "not a readable file"),
    (["--type", "q4_0", "--save-imatrix", "x.gguf"], "needs --calib"),
    (["--type", "q4_0", "--rotate", "givens"], "--rotate must be"),
    (["--type", "tq2_0", "--ternary", "median"], "--ternary must be"),
])
def test_bad_flags(env, tmp_path, args, message):
    out = tmp_path / "o.gguf"
    p = subprocess.run([MEMWALL, "quantize", MODEL, str(out), *args], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode != 0
    assert message in p.stderr
    assert p.stderr.startswith("error: ")
    assert not out.exists() and not (tmp_path / "o.gguf.tmp").exists()


def test_bad_inputs(env, tmp_path):
    out = tmp_path / "o.gguf"
    missing = subprocess.run([MEMWALL, "quantize", str(tmp_path / "nope.gguf"), str(out), "--type",
                              "q4_0"], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(open(MODEL, "rb").read(100_000))  # truncated in the tensor data
    p = subprocess.run([MEMWALL, "quantize", str(corrupt), str(out), "--type", "q4_0"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode != 0 and p.stderr.startswith("error: ")
    same = subprocess.run([MEMWALL, "quantize", MODEL, MODEL, "--type", "q4_0"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert same.returncode != 0 and "is the input" in same.stderr
    assert not out.exists()


def test_ternary_absmean(env, tmp_path):
    """--ternary absmean writes BitNet b1.58's scaling in TQ2_0's layout: per 256-weight block,
    d = mean |w| and q = round(clip(w / d, -1, 1)), checked against numpy; gguf decodes it."""
    src = tmp_path / "synth.gguf"
    run_ok(env, "synth", "-o", src, "--type", "f32", "--n-embd", "256", "--n-ff", "512",
           "--n-layer", "1", "--n-head", "4", "--n-head-kv", "2", "--vocab", "300")
    out = tmp_path / "am.gguf"
    quantize(env, src, out, "tq2_0", "--ternary", "absmean")
    ref, got = tensors(src), tensors(out)
    t = got["blk.0.ffn_up.weight"]
    x = np.asarray(ref["blk.0.ffn_up.weight"].data, dtype=np.float32).reshape(-1, 256)
    d = np.abs(x).mean(axis=1, keepdims=True).astype(np.float16).astype(np.float32)
    want = np.clip(np.round(x / np.abs(x).mean(axis=1, keepdims=True)), -1, 1) * d
    np.testing.assert_allclose(as_f32(t).reshape(-1, 256), want, rtol=0, atol=1e-6)
