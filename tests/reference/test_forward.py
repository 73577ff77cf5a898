"""memwall's forward pass and greedy decoding vs. the independent numpy reference (llama_ref.py).

Tolerances:
- logits: at every position, max|memwall - ref| <= 1e-3 * max|ref| (ref is float64 math
  on the gguf package's dequantized weights; memwall is float32).
- greedy: ids must be identical. A step where the reference's top-2 logits are within
  TIE_REL (relative to max|logit|) is a near-tie that an engine rounding differently may
  legitimately break the other way; comparison stops at the first such step.

Greedy is checked by teacher forcing: one reference pass over prompt + memwall's ids must
predict each of memwall's ids with its argmax. By induction that holds exactly when
reference greedy decoding would produce the same ids, and it costs one batched pass
instead of n decode steps.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import gguf
import numpy as np
import pytest

import llama_ref

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOGIT_REL_TOL = 1e-3
TIE_REL = 1e-4

# Prompts for the default model (SmolLM2-135M-Instruct), encoded once with HF `tokenizers`
# built from the GGUF's own vocab and merges (gguf_tokenizer.py); no BOS (add_bos_token is
# False). test_prompt_ids_match_tokenizer keeps ids and texts in sync.
PROMPTS = {
    "one_token": ("Hello", [19556]),
    "france": ("The capital of France is", [504, 3575, 282, 4649, 314]),
    "digits": ("Counting: 1, 2, 3, 4, 5, 6,",
               [9825, 274, 42, 216, 33, 28, 216, 34, 28, 216, 35, 28, 216, 36, 28, 216, 37, 28, 216, 38, 28]),
    "code": ('def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
             [1604, 3987, 46477, 24, 94, 727, 472, 1620, 14362, 260, 304, 29, 373, 24681, 46477, 1230, 7996, 198]),
    "chat": ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
             "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
             [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407,
              19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]),
    "long": ("Photosynthesis is the process by which green plants, algae and some bacteria convert light "
             "energy into chemical energy. During this process, carbon dioxide and water are combined, using "
             "the energy of sunlight, to produce glucose and oxygen. It takes place mainly in the leaves, inside",
             [33580, 14870, 314, 260, 980, 411, 527, 2654, 2109, 28, 12325, 284, 634, 3939, 7728, 1420, 1439,
              618, 2819, 1439, 30, 3897, 451, 980, 28, 3118, 7600, 284, 913, 359, 5276, 28, 1015, 260, 1439,
              282, 8118, 28, 288, 2690, 8102, 284, 4983, 30, 657, 2933, 1379, 5630, 281, 260, 3711, 28, 2972]),
}
REAL_GREEDY_N = 32

# Reference greedy continuation of "france" on the default model (" Paris.\n\nThe answer is: 2018-01-22
# 12:12:53.<|im_end|>\n<|im_start|>"); llama.cpp (llama-cpp-python 0.3.36) picks the same 32 ids.
FRANCE_GOLDEN = [7042, 30, 198, 198, 504, 2988, 314, 42, 216, 34, 32, 33, 40, 29, 32, 33,
                 29, 34, 34, 216, 33, 34, 42, 33, 34, 42, 37, 35, 30, 2, 198, 1]

# Synthetic shapes: n_embd = n_head * head_dim; n_embd and n_ff multiples of 32.
# Tied random models tend to decode one token over and over, which makes their greedy check
# weak; mha and neox are untied too so that decoding varies and the KV-cache path is exercised.
BASE = dict(n_embd=64, n_ff=128, n_layer=2, n_head=4, n_head_kv=2, vocab=300)
SHAPES = {
    "base": BASE,
    "gqa_odd_heads": dict(n_embd=96, n_ff=160, n_layer=2, n_head=3, n_head_kv=1, vocab=300),
    "mha": dict(n_embd=64, n_ff=96, n_layer=3, n_head=2, n_head_kv=2, vocab=257, untied=True),
    "untied": dict(BASE, untied=True),
    "neox": dict(BASE, rope_style="neox", rope_base=1000.0, untied=True),
}
FORMATS = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1"]
SYNTH_CTX = 64
SYNTH_PROMPT_LEN = 12
SYNTH_GREEDY_N = 16


# ---------------------------------------------------------------- helpers

def run_memwall(binary: Path, *args) -> str:
    cmd = [str(binary), *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {r.returncode}\nstderr:\n{r.stderr[-4000:]}")
    return r.stdout


def memwall_logits(binary: Path, model: Path, ids: list[int], out: Path, n_vocab: int) -> np.ndarray:
    run_memwall(binary, "logits", "-m", model, "--tokens", " ".join(map(str, ids)), "-o", out)
    got = np.load(out)
    assert got.dtype == np.float32, f"logits dtype {got.dtype}, want float32"
    assert got.shape == (len(ids), n_vocab), f"logits shape {got.shape}, want {(len(ids), n_vocab)}"
    return got


def memwall_greedy(binary: Path, model: Path, ids: list[int], n: int) -> list[int]:
    out = run_memwall(binary, "run", "-m", model, "--tokens", " ".join(map(str, ids)),
                      "-n", n, "--temp", "0", "--output-ids", "--ignore-eos", "--precision", "exact")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, f"want one line of ids on stdout, got:\n{out}"
    got = [int(t) for t in lines[0].split()]
    assert len(got) == n, f"asked for {n} ids with --ignore-eos, got {len(got)}: {got}"
    return got


def assert_logits_close(got: np.ndarray, ref: np.ndarray) -> None:
    assert np.isfinite(got).all(), "memwall logits contain NaN or inf"
    err = np.abs(got.astype(np.float64) - ref).max(axis=-1)
    tol = LOGIT_REL_TOL * np.abs(ref).max(axis=-1)
    bad = np.nonzero(err > tol)[0]
    assert bad.size == 0, "logits differ at positions " + ", ".join(
        f"{p} (max|diff| {err[p]:.3g} > tol {tol[p]:.3g})" for p in bad[:8])


def assert_greedy_matches(ref: llama_ref.Model, prompt: list[int], got: list[int]) -> int:
    """Teacher-forced check (see module doc). Returns how many steps were compared."""
    rows = ref.logits(prompt + got[:-1])[len(prompt) - 1:]
    for step, (row, tok) in enumerate(zip(rows, got)):
        assert 0 <= tok < row.size, f"greedy step {step}: id {tok} outside the vocabulary"
        top2 = np.sort(row)[-2:]
        if top2[1] - top2[0] <= TIE_REL * np.abs(row).max():
            return step  # near-tie: either choice is right, and later steps depend on it
        want = int(np.argmax(row))
        assert tok == want, (
            f"greedy step {step}: memwall chose {tok} (ref logit {row[tok]:.5f}), "
            f"reference argmax {want} (logit {row[want]:.5f}); memwall ids {got}")
    return len(got)


# ---------------------------------------------------------------- reference-only checks

def test_prompt_ids_match_tokenizer(model_path: Path, ref_model: llama_ref.Model):
    pytest.importorskip("tokenizers")
    from gguf_tokenizer import tokenizer_from_gguf
    if model_path.name != DEFAULT_MODEL_NAME:
        pytest.skip("hard-coded prompt ids are for the SmolLM2 vocab")
    tok = tokenizer_from_gguf(ref_model.reader)
    for name, (text, ids) in PROMPTS.items():
        assert tok.encode(text).ids == ids, name


def test_reference_golden_greedy(model_path: Path, ref_model: llama_ref.Model):
    """Pins the reference itself (KV-cache and full-pass paths) to a llama.cpp-checked output."""
    if model_path.name != DEFAULT_MODEL_NAME:
        pytest.skip("golden ids are for the default model")
    prompt = PROMPTS["france"][1]
    # Decode steps cost a full weight read each, so the KV-cache path runs 8 of them.
    assert ref_model.greedy(prompt, 8) == FRANCE_GOLDEN[:8]
    assert assert_greedy_matches(ref_model, prompt, FRANCE_GOLDEN) == len(FRANCE_GOLDEN)


def test_rope_styles_are_a_permutation_of_each_other():
    # neox rotates (x[i], x[i+n/2]); normal rotates (x[2i], x[2i+1]) with the same angles.
    # Interleaving the two halves therefore maps one onto the other.
    rng = np.random.default_rng(0)
    n_rot, head_dim = 8, 12
    x = rng.standard_normal((5, 3, head_dim))
    ang = rng.standard_normal((5, n_rot // 2))
    perm = np.concatenate([np.stack([np.arange(n_rot // 2), np.arange(n_rot // 2, n_rot)], 1).ravel(),
                           np.arange(n_rot, head_dim)])
    neox = llama_ref.apply_rope(x, np.cos(ang), np.sin(ang), n_rot, "neox")
    normal = llama_ref.apply_rope(x[..., perm], np.cos(ang), np.sin(ang), n_rot, "normal")
    np.testing.assert_allclose(normal, neox[..., perm], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(neox[..., n_rot:], x[..., n_rot:])  # unrotated tail


# ---------------------------------------------------------------- default model

@pytest.mark.parametrize("name", list(PROMPTS))
def test_real_model_logits(name, memwall_bin, model_path, ref_model, tmp_path):
    ids = PROMPTS[name][1]
    got = memwall_logits(memwall_bin, model_path, ids, tmp_path / "logits.npy", ref_model.hp.n_vocab)
    assert_logits_close(got, ref_model.logits(ids))


@pytest.mark.parametrize("name", list(PROMPTS))
def test_real_model_greedy(name, memwall_bin, model_path, ref_model):
    ids = PROMPTS[name][1]
    got = memwall_greedy(memwall_bin, model_path, ids, REAL_GREEDY_N)
    assert_greedy_matches(ref_model, ids, got)


# ---------------------------------------------------------------- synthetic models

def synth(binary: Path, out: Path, fmt: str, seed: int, n_embd, n_ff, n_layer, n_head, n_head_kv, vocab,
          untied=False, rope_style=None, rope_base=None) -> Path:
    args = ["synth", "-o", out, "--type", fmt, "--n-embd", n_embd, "--n-ff", n_ff, "--n-layer", n_layer,
            "--n-head", n_head, "--n-head-kv", n_head_kv, "--vocab", vocab, "--ctx", SYNTH_CTX, "--seed", seed]
    if untied:
        args.append("--untied")
    if rope_style:
        args += ["--rope-style", rope_style]
    if rope_base:
        args += ["--rope-base", rope_base]
    run_memwall(binary, *args)
    return out


def check_synth_file(path: Path, ref: llama_ref.Model, fmt: str, shape: dict) -> None:
    """The file must hold what was asked for, or the comparison would prove little."""
    hp = ref.hp
    assert (hp.n_embd, hp.n_ff, hp.n_layer, hp.n_head, hp.n_head_kv, hp.n_vocab, hp.n_ctx) == (
        shape["n_embd"], shape["n_ff"], shape["n_layer"], shape["n_head"], shape["n_head_kv"],
        shape["vocab"], SYNTH_CTX)
    assert hp.rope_style == shape.get("rope_style", "normal")
    if "rope_base" in shape:
        assert hp.rope_base == shape["rope_base"]
    tensors = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    assert ("output.weight" in tensors) == shape.get("untied", False)
    want = gguf.GGMLQuantizationType[fmt.upper()]
    for t in tensors.values():
        expect = want if len(t.shape) == 2 else gguf.GGMLQuantizationType.F32
        assert t.tensor_type == expect, f"{t.name} is {t.tensor_type.name}, want {expect.name}"


@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("fmt", FORMATS)
def test_synthetic(fmt, shape_name, memwall_bin, tmp_path):
    shape = SHAPES[shape_name]
    seed = 1000 + 10 * FORMATS.index(fmt) + list(SHAPES).index(shape_name)
    path = synth(memwall_bin, tmp_path / "model.gguf", fmt, seed, **shape)
    ref = llama_ref.Model(path)
    check_synth_file(path, ref, fmt, shape)

    prompt = [int(t) for t in np.random.default_rng(seed).integers(0, shape["vocab"], SYNTH_PROMPT_LEN)]
    got = memwall_logits(memwall_bin, path, prompt, tmp_path / "logits.npy", shape["vocab"])
    assert_logits_close(got, ref.logits(prompt))

    ids = memwall_greedy(memwall_bin, path, prompt, SYNTH_GREEDY_N)
    assert_greedy_matches(ref, prompt, ids)
