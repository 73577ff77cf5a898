#!/usr/bin/env python3
"""Regenerates the GGUF fuzz seed corpus in tests/fuzz/corpus/gguf/.

Seeds come from two writers, so the fuzzer starts from both layouts:
  py_*  the `gguf` Python package (llama.cpp's writer), run from .venv;
  mw_*  memwall's own writer, via the GgufSeedCorpus test of memwall_tests;
  bad_* a few hand-made corrupt files, so error paths are covered from the start.
Every seed is kept small (the whole corpus < 200 KB): libFuzzer's default
-max_len follows the largest seed, and small inputs mutate faster.

Usage: .venv/bin/python tests/fuzz/make_corpus.py [--tests build/memwall_tests]
"""

import argparse
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fuzz" / "corpus" / "gguf"
VOCAB = REPO.parent / "shared" / "data" / "tokenizer-vectors"
MAX_TOTAL = 200 * 1024


def write_py(name, build, arch="llama", endianess=gguf.GGUFEndian.LITTLE):
    """Runs build(writer) on a gguf.GGUFWriter and writes OUT/name."""
    path = OUT / name
    w = gguf.GGUFWriter(str(path), arch, endianess=endianess)
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def blocks(qtype, n_elements, seed):
    """Random bytes of a quantized tensor with n_elements elements."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, n_elements // block * size, dtype=np.uint8)


def real_vocab(file, n):
    """The first n tokens (and scores, types, merges) of a real vocab file, if present."""
    path = VOCAB / file
    if not path.exists():
        return None
    r = gguf.GGUFReader(str(path))

    def strings(key, count):
        f = r.fields.get(key)
        if f is None:
            return None
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data[:count]]

    def numbers(key, count):
        f = r.fields.get(key)
        if f is None:
            return None
        return [f.parts[i].tolist()[0] for i in f.data[:count]]

    return {
        "model": bytes(r.fields["tokenizer.ggml.model"].parts[-1]).decode(),
        "tokens": strings("tokenizer.ggml.tokens", n),
        "scores": numbers("tokenizer.ggml.scores", n),
        "types": numbers("tokenizer.ggml.token_type", n),
        "merges": strings("tokenizer.ggml.merges", n // 2),
    }


def synthetic_vocab(model, n):
    tokens = ["<unk>", "<s>", "</s>"] + [f"\u2581t{k}" for k in range(n - 3)]
    return {
        "model": model,
        "tokens": tokens,
        "scores": [-float(k) for k in range(n)],
        "types": [2, 3, 3] + [1] * (n - 3),
        "merges": [f"t {k}" for k in range(n // 2)] if model == "gpt2" else None,
    }


def add_vocab(w, v):
    w.add_tokenizer_model(v["model"])
    w.add_token_list(v["tokens"])
    if v["scores"]:
        w.add_token_scores(v["scores"])
    w.add_token_types(v["types"])
    if v["merges"]:
        w.add_token_merges(v["merges"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)


def py_seeds():
    spm = real_vocab("ggml-vocab-llama-spm.gguf", 48) or synthetic_vocab("llama", 48)
    bpe = real_vocab("ggml-vocab-gpt-2.gguf", 48) or synthetic_vocab("gpt2", 48)
    write_py("py_vocab_spm.gguf", lambda w: add_vocab(w, spm))
    write_py("py_vocab_bpe.gguf", lambda w: add_vocab(w, bpe), arch="gpt2")

    def scalars(w):
        w.add_uint8("s.u8", 250)
        w.add_int8("s.i8", -5)
        w.add_uint16("s.u16", 65000)
        w.add_int16("s.i16", -300)
        w.add_uint32("s.u32", 4_000_000_000)
        w.add_int32("s.i32", -70000)
        w.add_float32("s.f32", 0.125)
        w.add_bool("s.bool", False)
        w.add_string("s.string", "h\u00e9llo")
        w.add_uint64("s.u64", 2**63 + 5)
        w.add_int64("s.i64", -(2**40))
        w.add_float64("s.f64", 1e-300)
        w.add_string("s.empty", "")

    write_py("py_scalars.gguf", scalars)

    def arrays(w):
        for key, vtype, vals in [
            ("a.u8", V.UINT8, [0, 1, 255]),
            ("a.i8", V.INT8, [-128, 127]),
            ("a.u16", V.UINT16, [7, 65535]),
            ("a.i16", V.INT16, [-2, 2]),
            ("a.u32", V.UINT32, [1, 2, 3]),
            ("a.i32", V.INT32, [-1]),
            ("a.f32", V.FLOAT32, [0.5, 1e30]),
            ("a.bool", V.BOOL, [True, False]),
            ("a.string", V.STRING, ["a", "", "\u00fc"]),
            ("a.u64", V.UINT64, [2**64 - 1]),
            ("a.i64", V.INT64, [-(2**63)]),
            ("a.f64", V.FLOAT64, [3.5]),
        ]:
            w.add_key_value(key, vals, V.ARRAY, sub_type=vtype)

    write_py("py_arrays.gguf", arrays)

    def nested(w):
        w.add_array("n.ints", [[1, 2], [3], [4, 5, 6]])
        w.add_array("n.strings", [["a", "b"], ["c"]])
        w.add_array("n.deep", [[[1.5, 2.5]], [[3.5]]])

    write_py("py_nested.gguf", nested)

    def tensors(w):
        w.add_block_count(1)
        w.add_tensor("f32.vec", np.arange(5, dtype=np.float32))
        w.add_tensor("f16.mat", np.ones((3, 4), dtype=np.float16))
        w.add_tensor("i32.vec", np.arange(3, dtype=np.int32))
        w.add_tensor("f64.3d", np.zeros((2, 1, 2), dtype=np.float64))
        w.add_tensor("i8.4d", np.ones((1, 2, 1, 3), dtype=np.int8))
        for k, (name, qtype, shape) in enumerate([
            ("q4_0.mat", Q.Q4_0, (2, 32)),
            ("q4_1.mat", Q.Q4_1, (1, 64)),
            ("q8_0.mat", Q.Q8_0, (2, 32)),
            ("q6_k.vec", Q.Q6_K, (1, 256)),
            ("bf16.vec", Q.BF16, (1, 4)),
        ]):
            n = int(np.prod(shape))
            raw = blocks(qtype, n, k)
            # Passed as rows of bytes: gguf derives the element shape from raw_dtype.
            w.add_tensor(name, raw.reshape(shape[0], -1), raw_dtype=qtype)

    write_py("py_tensors.gguf", tensors)

    def aligned(w):
        w.add_custom_alignment(64)
        w.add_tensor("a", np.arange(3, dtype=np.float32))
        w.add_tensor("b", np.arange(17, dtype=np.float32))

    write_py("py_align64.gguf", aligned)

    def model(w):
        add_vocab(w, synthetic_vocab("llama", 16))
        w.add_context_length(64)
        w.add_embedding_length(32)
        w.add_head_count(2)
        w.add_tensor("token_embd.weight", blocks(Q.Q8_0, 32 * 16, 9).reshape(16, -1),
                     raw_dtype=Q.Q8_0)
        w.add_tensor("output_norm.weight", np.ones(32, dtype=np.float32))

    write_py("py_model.gguf", model)
    # A valid big-endian file (version field byte-swapped): memwall refuses these.
    write_py("py_bigendian.gguf", scalars, endianess=gguf.GGUFEndian.BIG)


def bad_seeds():
    def header(version, n_tensors, n_kv):
        return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)

    def s(text):
        b = text.encode()
        return struct.pack("<Q", len(b)) + b

    seeds = {
        "bad_version1.gguf": b"GGUF" + struct.pack("<III", 1, 0, 0),
        "bad_bool2.gguf": header(3, 0, 1) + s("b") + struct.pack("<IB", 7, 2),
        "bad_deep.gguf": header(3, 0, 1) + s("d") + struct.pack("<I", 9)
        + struct.pack("<IQ", 9, 1) * 9 + struct.pack("<IQ", 0, 0),
        "bad_dims.gguf": header(3, 1, 0) + s("w") + struct.pack("<IQQIQ", 2, 4, 0, 0, 0)
        + bytes(32),
        "bad_unaligned.gguf": header(3, 1, 0) + s("w") + struct.pack("<IQIQ", 1, 4, 0, 4)
        + bytes(64),
        "bad_dup_tensor.gguf": header(3, 2, 0)
        + (s("w") + struct.pack("<IQIQ", 1, 4, 0, 0)) * 2 + bytes(64),
    }
    for name, data in seeds.items():
        (OUT / name).write_bytes(data)
    # A model with its last tensor cut short.
    model = (OUT / "py_model.gguf").read_bytes()
    (OUT / "bad_truncated.gguf").write_bytes(model[:-7])


def own_writer_seeds(tests_bin):
    env = dict(os.environ, MEMWALL_SEED_DIR=str(OUT))
    r = subprocess.run([str(tests_bin), "--gtest_filter=GgufSeedCorpus.*"], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0 or "[  SKIPPED ]" in r.stdout:
        sys.exit(f"make_corpus: {tests_bin} did not write its seeds:\n{r.stdout}{r.stderr}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tests", default=str(REPO / "build" / "memwall_tests"),
                    help="memwall_tests binary that writes the mw_* seeds")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    py_seeds()
    bad_seeds()
    own_writer_seeds(args.tests)

    total = 0
    for p in sorted(OUT.iterdir()):
        total += p.stat().st_size
        print(f"{p.stat().st_size:8d}  {p.name}")
    print(f"{total:8d}  total")
    if total > MAX_TOTAL:
        sys.exit(f"make_corpus: corpus is {total} bytes, over the {MAX_TOTAL} budget")


if __name__ == "__main__":
    main()
