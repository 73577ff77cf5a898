"""memwall quantize --rotate hadamard on the real default model: the rotated f32 model computes
the same function as the original (the rotation and the norm folding are exact algebra, checked
here end to end through the engine's online transforms); llama.cpp, which would not apply them,
refuses the file; requantizing keeps the rotation."""
import os
import subprocess

import numpy as np
import pytest
from gguf import GGUFReader

MEMWALL = os.environ.get("MEMWALL_BIN", "build/memwall")
MODEL = os.environ.get("MEMWALL_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
TEXT = "The history of the city of Paris begins in the third century BC, when a Celtic people"


def run(env, *args, check=True):
    p = subprocess.run([MEMWALL, *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=600)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def logits(env, model, ids, out):
    run(env, "logits", "-m", model, "--tokens", " ".join(map(str, ids)), "-o", out,
        "--precision", "exact")
    return np.load(out)


@pytest.fixture(scope="module")
def models(env, tmp_path_factory):
    d = tmp_path_factory.mktemp("rot")
    plain, rotated = d / "f32.gguf", d / "rot.gguf"
    run(env, "quantize", MODEL, plain, "--type", "f32")
    run(env, "quantize", plain, rotated, "--type", "f32", "--rotate", "hadamard", "--seed", "5")
    return d, plain, rotated


def test_rotated_model_computes_the_same_function(env, models):
    d, plain, rotated = models
    ids = [int(x) for x in run(env, "tokenize", "-m", MODEL, "--no-bos", TEXT).stdout.split()]
    a = logits(env, plain, ids, d / "a.npy")
    b = logits(env, rotated, ids, d / "b.npy")
    scale = np.abs(a).max()
    assert np.abs(a - b).max() < 1e-5 * scale, np.abs(a - b).max()
    assert (a.argmax(1) == b.argmax(1)).all()


def test_rotated_weights_differ_and_norms_are_folded(models):
    _, plain, rotated = models
    p = {t.name: t for t in GGUFReader(str(plain)).tensors}
    r = {t.name: t for t in GGUFReader(str(rotated)).tensors}
    assert "memwall.output_norm.weight" in r and "output_norm.weight" not in r
    assert np.array_equal(np.asarray(r["memwall.output_norm.weight"].data),
                          np.asarray(p["output_norm.weight"].data))
    assert np.all(np.asarray(r["blk.0.attn_norm.weight"].data) == 1.0)
    q0, q1 = np.asarray(p["blk.0.attn_q.weight"].data), np.asarray(r["blk.0.attn_q.weight"].data)
    assert not np.allclose(q0, q1)
    # an orthogonal rotation keeps every embedding row's length
    e0 = np.asarray(p["token_embd.weight"].data)[:100]
    e1 = np.asarray(r["token_embd.weight"].data)[:100]
    np.testing.assert_allclose(np.linalg.norm(e0, axis=1), np.linalg.norm(e1, axis=1), rtol=1e-5)


def test_llama_cpp_refuses_the_rotated_file(models):
    import llama_cpp
    _, _, rotated = models
    with pytest.raises(Exception):
        llama_cpp.Llama(model_path=str(rotated), n_ctx=64, verbose=False)


def test_quantizing_a_rotated_model_keeps_the_rotation(env, models):
    d, _, rotated = models
    out = d / "rot-q8.gguf"
    run(env, "quantize", rotated, out, "--type", "q8_0")
    p = run(env, "run", "-m", out, "-p", "The capital of France is", "-n", "4", "--temp", "0")
    assert "Paris" in p.stdout
    again = run(env, "quantize", rotated, d / "x.gguf", "--type", "q8_0", "--rotate", "hadamard",
                check=False)
    assert again.returncode != 0 and "already rotated" in again.stderr
    bad = run(env, "quantize", rotated, d / "y.gguf", "--type", "q8_0", "--rotate", "givens",
              check=False)
    assert bad.returncode != 0 and "--rotate must be" in bad.stderr
