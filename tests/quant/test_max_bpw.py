"""memwall quantize --max-bpw: a bit budget for the whole file, met by mixing types per matrix.

On the real default model: the file the PyPI gguf package reads is within the budget and is
the size the summary reports; llama.cpp loads the mixed file (GGUF types only) and generates
memwall's greedy tokens; a larger budget buys a smaller loss; bad budgets are clear errors
that leave no file.
"""
import os
import subprocess

import pytest
from gguf import GGUFReader

from test_quantize import (MEMWALL, MODEL, assert_same_greedy, greedy_memwall, prompt_ids,
                           quantize, tensors)


def file_bpw(path):
    """Bits per weight of every tensor in the file, as gguf reads it."""
    t = tensors(path)
    return 8 * sum(int(x.n_bytes) for x in t.values()) / sum(int(x.n_elements) for x in t.values())


def recipe_of(path):
    f = GGUFReader(str(path)).fields["memwall.quantize.recipe"]
    return bytes(f.parts[f.data[0]]).decode()


def test_mixed_file_fits_and_llama_cpp_agrees(env, tmp_path):
    out = tmp_path / "mixed.gguf"
    s = quantize(env, MODEL, out, "q4_k", "--max-bpw", "5", "--mix", "q4_0,q6_k,q8_0")
    bpw = file_bpw(out)
    assert bpw <= 5.0 and abs(bpw - s["bits_per_weight"]) < 1e-9
    assert bpw > 4.9, "the budget is spent, not left idle"
    kinds = {t.tensor_type.name for t in tensors(out).values() if len(t.shape) > 1}
    # q4_k's fallback for rows of 576 is q5_0; q6_k's is q8_0.
    assert {"Q4_K", "Q4_0", "Q5_0", "Q8_0"} <= kinds, kinds
    assert "mixed to <= 5 bpw from q4_k/q4_0/q6_k/q8_0" in recipe_of(out)
    assert s["max_bpw"] == 5 and s["mix_loss"] > 0
    ids = prompt_ids(env)
    assert_same_greedy(out, ids, greedy_memwall(env, out, ids, 16))


def test_larger_budget_buys_less_loss(env, tmp_path):
    losses = []
    for bits in ("4.2", "6"):
        out = tmp_path / f"b{bits}.gguf"
        s = quantize(env, MODEL, out, "q4_k", "--max-bpw", bits)  # the default --mix
        assert s["bits_per_weight"] <= float(bits)  # memwall-only types: gguf cannot read them
        losses.append(s["mix_loss"])
    assert losses[1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("args,message", [
    (["--type", "q4_k", "--max-bpw", "2"], "cannot be met"),
    (["--type", "q4_k", "--max-bpw", "0"], "--max-bpw must be"),
    (["--type", "q4_k", "--max-bpw", "-3"], "--max-bpw must be"),
    (["--type", "q4_k", "--max-bpw", "nan"], "max-bpw"),
    (["--type", "q4_k", "--mix", "q8_0"], "--mix needs --max-bpw"),
    (["--type", "q4_k", "--max-bpw", "5", "--mix", "q9_9"], "--mix: unknown type"),
    (["--type", "q4_k", "--max-bpw", "5", "--mix", "iq2_xxs"], "cannot write"),
])
def test_bad_budgets(env, tmp_path, args, message):
    out = tmp_path / "o.gguf"
    p = subprocess.run([MEMWALL, "quantize", MODEL, str(out), *args], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr
    assert p.stderr.startswith("error: ")
    assert not out.exists() and not os.path.exists(str(out) + ".tmp")
