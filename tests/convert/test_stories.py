"""stories260K end to end: llama2.c files -> `memwall convert` -> GGUF -> text.

Three independent witnesses, from the format up:
  1. llama2c_ref.py (numpy, reads the llama2.c files directly) reproduces every
     llama2.c output recorded in expected/ — our reading of the format is right.
  2. tests/reference/llama_ref.py (numpy, reads the converted GGUF with the
     `gguf` package) decodes the same greedy tokens, and the GGUF vocab decodes
     them to the expected text — the conversion is right.
  3. `memwall run` on the converted GGUF prints the expected text exactly — the
     engine is right.

Token counts: llama2.c `-n 200` runs 200 positions starting from BOS and samples
a token at each, so it prints 200 generated tokens (checked here: 199 would end
one word short). `memwall run -n` counts generated tokens, hence `-n 200`.
llama2.c stops early only if it samples BOS (id 1) and does not stop at EOS;
memwall stops at EOS. Neither id occurs in the greedy 200, so the texts compare
exactly. The temperature-sampled cases in cases.json need llama2.c's xorshift
RNG and float32 softmax/top-p order, which memwall's sampler does not copy, so
they are checked against the numpy reference only; a greedy *prompted* run
(expected text from the reference) covers prompt encoding in the engine.

Binary: $MEMWALL_BIN, else <repo>/build/memwall.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = Path(os.environ.get("MEMWALL_SHARED_DATA", REPO.parent / "shared" / "data")) / "llama2c-stories260k"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "reference"))

import llama2c_ref  # noqa: E402

MODEL = DATA / "stories260K.bin"
TOKENIZER = DATA / "tok512.bin"
CASES = json.loads((DATA / "expected" / "cases.json").read_text())["cases"]
GREEDY = next(c for c in CASES if c["temperature"] == 0.0)
SPACE = "\u2581"


def expected(case: dict) -> bytes:
    return (DATA / "expected" / case["file"]).read_bytes()


@pytest.fixture(scope="session")
def memwall_bin() -> Path:
    path = Path(os.environ.get("MEMWALL_BIN") or REPO / "build" / "memwall")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"memwall binary not found at {path}: build it first or set MEMWALL_BIN")
    return path


def run(cmd: list, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, timeout=timeout)


def convert(memwall_bin: Path, model: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run([memwall_bin, "convert", "--llama2c", model, "--tokenizer", TOKENIZER, "-o", out, *extra])


@pytest.fixture(scope="session")
def gguf_path(memwall_bin: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("convert") / "stories260K.gguf"
    r = convert(memwall_bin, MODEL, out)
    assert r.returncode == 0, r.stderr.decode()
    assert out.is_file() and not Path(str(out) + ".tmp").exists()
    return out


# -- 1. the format, read independently -------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_numpy_reference_reproduces_llama2c(case: dict) -> None:
    got = llama2c_ref.run_case(MODEL, TOKENIZER, case["prompt"], case["steps"], case["temperature"],
                               case["topp"], case["seed"])
    assert got == expected(case)


def test_legacy_freq_cis_is_adjacent_pair_rope_base_10000() -> None:
    # The legacy file stores the RoPE table it was trained with; it matches run.c's
    # pairs (2j, 2j+1), theta_j = 10000^(-2j/D): GGUF llama "normal" rope, no permutation.
    cfg, w = llama2c_ref.read_checkpoint(MODEL)
    assert llama2c_ref.check_freq_cis(cfg, w) < 1e-5


# -- 2. the converted GGUF -------------------------------------------------------------

def greedy_ref_tokens(n: int) -> list[int]:
    trace: list[int] = []
    llama2c_ref.run_case(MODEL, TOKENIZER, "", n, 0.0, None, None, trace)
    return trace


def sentencepiece_decode(tokens: list[str], ids: list[int], after_bos: bool) -> bytes:
    """Decodes with the GGUF vocab only: "▁" is a space, "<0xXX>" a byte; a leading
    space right after BOS is dropped (add_space_prefix)."""
    out = bytearray()
    for i, t in enumerate(ids):
        text = tokens[t]
        if len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
            out.append(int(text[3:5], 16))
            continue
        piece = text.replace(SPACE, " ").encode()
        if i == 0 and after_bos and piece.startswith(b" "):
            piece = piece[1:]
        out += piece
    return bytes(out)


def test_gguf_metadata(gguf_path: Path) -> None:
    import gguf

    r = gguf.GGUFReader(str(gguf_path))
    f = {k: v.contents() for k, v in r.fields.items() if not k.startswith("GGUF.")}
    assert f["general.architecture"] == "llama"
    assert f["general.name"] == "stories260K"
    assert (f["llama.context_length"], f["llama.embedding_length"], f["llama.feed_forward_length"]) == (512, 64, 172)
    assert (f["llama.block_count"], f["llama.attention.head_count"], f["llama.attention.head_count_kv"]) == (5, 8, 4)
    assert f["llama.rope.dimension_count"] == 8
    assert f["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert f["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    assert f["tokenizer.ggml.model"] == "llama"
    tokens, types = f["tokenizer.ggml.tokens"], f["tokenizer.ggml.token_type"]
    assert tokens[:3] == ["<unk>", "<s>", "</s>"] and list(types[:3]) == [2, 3, 3]
    assert all(t == 6 for t in types[3:259]) and all(t == 1 for t in types[259:])
    assert not any(" " in t for t in tokens)
    assert (f["tokenizer.ggml.bos_token_id"], f["tokenizer.ggml.eos_token_id"], f["tokenizer.ggml.unknown_token_id"]) == (1, 2, 0)
    assert f["tokenizer.ggml.add_bos_token"] is True and f["tokenizer.ggml.add_space_prefix"] is True
    names = {t.name: t for t in r.tensors}
    assert "output.weight" not in names and len(names) == 47
    assert list(names["blk.0.ffn_down.weight"].shape) == [172, 64]
    assert list(names["blk.0.attn_k.weight"].shape) == [64, 32]
    # Bytes straight from the checkpoint (token embedding = first array after the header).
    cfg, w = llama2c_ref.read_checkpoint(MODEL)
    np.testing.assert_array_equal(np.asarray(names["token_embd.weight"].data).reshape(512, 64), w["tok_emb"])
    np.testing.assert_array_equal(np.asarray(names["blk.3.ffn_up.weight"].data).reshape(172, 64), w["w3"][3])


def test_gguf_reference_forward_decodes_expected_text(gguf_path: Path) -> None:
    import gguf
    import llama_ref

    want_ids = greedy_ref_tokens(GREEDY["steps"])
    assert len(want_ids) == 200 and 1 not in want_ids and 2 not in want_ids
    ids = llama_ref.Model(gguf_path).greedy([1], len(want_ids))  # float64 forward over the GGUF
    assert ids == want_ids
    tokens = gguf.GGUFReader(str(gguf_path)).fields["tokenizer.ggml.tokens"].contents()
    assert sentencepiece_decode(tokens, ids, after_bos=True) == expected(GREEDY)


def test_version1_file_converts_to_the_same_gguf(memwall_bin: Path, gguf_path: Path, tmp_path: Path) -> None:
    cfg, w = llama2c_ref.read_checkpoint(MODEL)
    v1 = tmp_path / "stories260K.bin"  # same stem, so the same general.name
    llama2c_ref.write_v1(v1, cfg, w)
    assert llama2c_ref.read_checkpoint(v1)[0].version == 1
    out = tmp_path / "v1.gguf"
    r = convert(memwall_bin, v1, out)
    assert r.returncode == 0, r.stderr.decode()
    assert b"version-1 checkpoint" in r.stdout
    assert out.read_bytes() == gguf_path.read_bytes()


def test_cli_refuses_corrupt_input_and_leaves_nothing(memwall_bin: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cut.bin"
    bad.write_bytes(MODEL.read_bytes()[:-4])
    out = tmp_path / "out.gguf"
    r = convert(memwall_bin, bad, out)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "implies 1056540 bytes, but the file has 1056536" in err
    assert r.stdout == b""
    assert not out.exists() and not Path(str(out) + ".tmp").exists()


def test_cli_requires_a_tokenizer(memwall_bin: Path, tmp_path: Path) -> None:
    r = run([memwall_bin, "convert", "--llama2c", MODEL, "-o", tmp_path / "o.gguf"])
    assert r.returncode != 0 and b"--tokenizer" in r.stderr
    assert not (tmp_path / "o.gguf").exists()


# -- 3. the engine ---------------------------------------------------------------------

def memwall_run(memwall_bin: Path, gguf_path: Path, prompt: str, n: int) -> bytes:
    r = run([memwall_bin, "run", "-m", gguf_path, "-p", prompt, "-n", n, "--temp", 0])
    assert r.returncode == 0, f"memwall run failed ({r.returncode}): {r.stderr.decode(errors='replace')}"
    out = r.stdout
    return out[:-1] if out.endswith(b"\n") else out  # a final newline is allowed


def test_memwall_run_greedy_matches_llama2c(memwall_bin: Path, gguf_path: Path) -> None:
    # llama2.c: ./run stories260K.bin -z tok512.bin -t 0.0 -n 200 -> 200 generated tokens.
    assert memwall_run(memwall_bin, gguf_path, "", 200) == expected(GREEDY)


def test_memwall_run_greedy_prompt_matches_reference(memwall_bin: Path, gguf_path: Path) -> None:
    # Greedy (RNG-free) continuation of the prompt from cases.json; the reference's
    # encode() is run.c's, checked above by the sampled prompt case.
    prompt, n = "There was a big", 60
    tok = llama2c_ref.Tokenizer(TOKENIZER, 512)
    k = len(tok.encode(prompt, bos=True, eos=False))
    full = llama2c_ref.run_case(MODEL, TOKENIZER, prompt, k - 1 + n, 0.0, None, None)
    assert full.startswith(prompt.encode())
    assert memwall_run(memwall_bin, gguf_path, prompt, n) == full[len(prompt):]
