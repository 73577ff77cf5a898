"""GGUF q5_0 and q5_1 from memwall quantize, on the real default model decoded to f32:

- every matrix has the bytes of llama.cpp's quantizer (ggml_quantize_chunk from the libggml-base
  llama-cpp-python ships) and of the PyPI gguf package's, without and with an importance matrix;
- memwall's decoding equals gguf's dequantizer, bit for bit;
- the files run (greedy), and exact and int8/fast precisions agree on them.
"""
import subprocess

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.quants import dequantize
from gguf.quants import quantize as gguf_quantize

from test_quantize import (MEMWALL, base, ggml, ggml_quantize, ggml_quantize_weighted,  # noqa: F401
                           prompt_ids, quantize, tensors, write_imatrix)

Q5 = {"q5_0": GGMLQuantizationType.Q5_0, "q5_1": GGMLQuantizationType.Q5_1}


def matrices(path):
    return {n: t for n, t in tensors(path).items() if len(t.shape) >= 2}


def as_bytes(t):
    return np.asarray(t.data).reshape(-1).view(np.uint8)


@pytest.fixture(scope="module")
def q5_files(env, base, tmp_path_factory):
    d = tmp_path_factory.mktemp("q5")
    importance = write_imatrix(d / "imatrix.gguf", tensors(base))
    files = {}
    for qtype in Q5:
        plain, weighted = d / f"{qtype}.gguf", d / f"{qtype}-imat.gguf"
        summary = quantize(env, base, plain, qtype)
        assert summary["types"][qtype]["tensors"] >= 200  # every matrix: rows of 576 and 1536
        quantize(env, base, weighted, qtype, "--imatrix", d / "imatrix.gguf")
        files[qtype] = (plain, weighted)
    return files, importance


@pytest.mark.parametrize("qtype", list(Q5))
def test_bytes_equal_llama_cpp_and_gguf(base, ggml, q5_files, qtype):  # noqa: F811
    files, importance = q5_files
    ref = tensors(base)
    plain, weighted = matrices(files[qtype][0]), matrices(files[qtype][1])
    assert plain.keys() == weighted.keys() and len(plain) >= 200
    for i, (name, t) in enumerate(plain.items()):
        assert t.tensor_type.name.lower() == qtype, name
        x = np.asarray(ref[name].data, dtype=np.float32).reshape(-1, int(t.shape[0]))
        mine = as_bytes(t)
        assert np.array_equal(mine, ggml_quantize(ggml, qtype, x)), f"{name}: not llama.cpp's"
        if i % 16 == 0:  # gguf's numpy quantizer is slow: every 16th matrix
            theirs = gguf_quantize(x, Q5[qtype]).reshape(-1).view(np.uint8)
            assert np.array_equal(mine, theirs), f"{name}: not gguf's"
        want = ggml_quantize_weighted(ggml, qtype, x, importance[name])
        got = as_bytes(weighted[name])
        assert np.array_equal(got, want), f"{name}: not llama.cpp's imatrix quantize"


@pytest.mark.parametrize("qtype", list(Q5))
def test_decoding_equals_gguf(env, q5_files, tmp_path, qtype):
    files, _ = q5_files
    for src in files[qtype][:1]:  # the weighted file has the same layout
        dec = tmp_path / "dec.gguf"
        quantize(env, src, dec, "f32")
        got = tensors(dec)
        for name, t in matrices(src).items():
            want = dequantize(np.asarray(t.data), t.tensor_type).reshape(-1)
            mine = np.asarray(got[name].data, dtype=np.float32).reshape(-1)
            assert np.array_equal(mine, want), name


def logits(env, model, ids, precision, out):
    p = subprocess.run([MEMWALL, "logits", "-m", str(model), "--tokens", " ".join(map(str, ids)),
                        "-o", str(out), "--precision", precision], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return np.load(out)


@pytest.mark.parametrize("qtype", list(Q5))
def test_runs_and_precisions_agree(env, q5_files, tmp_path, qtype):
    files, _ = q5_files
    model = files[qtype][0]
    ids = prompt_ids(env)
    p = subprocess.run([MEMWALL, "run", "-m", str(model), "--tokens", " ".join(map(str, ids)),
                        "-n", "8", "--temp", "0", "--ignore-eos", "--output-ids"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.split()) == 8
    exact = logits(env, model, ids, "exact", tmp_path / "exact.npy")
    assert exact.shape[0] == len(ids) and np.isfinite(exact).all()
    for precision in ("int8", "fast"):
        other = logits(env, model, ids, precision, tmp_path / f"{precision}.npy")
        # The quantized-activation paths stay close to the exact one: mostly the same top token
        # and a small error against the logits' spread.
        top1 = float((other.argmax(axis=1) == exact.argmax(axis=1)).mean())
        rel = float(np.sqrt(((other - exact) ** 2).mean() / exact.var()))
        assert top1 >= 0.85 and rel < 0.1, (precision, top1, rel)
