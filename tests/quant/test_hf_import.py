"""memwall quantize reading Hugging Face safetensors directories.

The reference is the default model's GGUF, which llama.cpp's convert_hf_to_gguf.py made from
the HF checkpoint: an HF directory is rebuilt from it (weights decoded to f32 by memwall, Q/K
rows put back in HF's order, written as safetensors with numpy; config.json from the GGUF's
hyperparameters; the SmolLM tokenizer files, whose vocabulary and merges are the GGUF's), and
importing that directory must give the GGUF back:

- tensors equal to the decoded GGUF's, exactly (f32 input) or exactly the f16/bf16 rounding of
  them, also from a sharded checkpoint with model.safetensors.index.json;
- the same llama.* and tokenizer.* metadata as the converter wrote, key for key;
- the same greedy tokens from `memwall run`; `tokenize` equal to HF `tokenizers`;
- SentencePiece tokenizer.model -> the tokens, scores and types of llama.cpp's own
  ggml-vocab-llama-spm.gguf;
- bad input fails with one `error: ...` line and no output file.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

MEMWALL = os.environ.get("MEMWALL_BIN", "build/memwall")
MODEL = os.environ.get("MEMWALL_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
DATA = Path(os.environ.get("MEMWALL_SHARED_DATA", "../shared/data"))
SMOLLM_TOK = DATA / "smollm-tokenizer"
SPM_VOCAB = DATA / "tokenizer-vectors" / "ggml-vocab-llama-spm.gguf"

# GGUF name pattern -> HF name pattern (the converter's map, inverted).
LAYER_NAMES = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def run(env, *args, check=True, timeout=600):
    p = subprocess.run([MEMWALL, *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=timeout)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def hf_name(gguf_name):
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    if gguf_name == "output.weight":
        return "lm_head.weight"
    _, b, part, _ = gguf_name.split(".")
    return f"model.layers.{b}.{LAYER_NAMES[part]}.weight"


def fields(path):
    """GGUF metadata as Python values."""
    out = {}
    for f in GGUFReader(str(path)).fields.values():
        if f.name.startswith("GGUF."):
            continue
        t = f.types[0].name
        if t == "STRING":
            out[f.name] = bytes(f.parts[f.data[0]]).decode()
        elif t == "ARRAY":
            if f.types[1].name == "STRING":
                out[f.name] = [bytes(f.parts[i]).decode() for i in f.data]
            else:
                out[f.name] = [f.parts[i].tolist()[0] for i in f.data]
        else:
            out[f.name] = f.parts[f.data[0]].tolist()[0]
    return out


def tensors(path):
    return {t.name: np.asarray(t.data) for t in GGUFReader(str(path)).tensors}


def to_bf16_bits(x):
    """Round-to-nearest-even f32 -> bf16 bits, as torch does."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, arrays):
    """arrays: name -> (dtype string, numpy array of the stored bytes' type)."""
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(arrays):
        dtype, a = arrays[name]
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def stored(x, dtype):
    """(safetensors dtype, stored array) and the f32 values memwall should read back."""
    if dtype == "F32":
        return ("F32", x.astype(np.float32)), x.astype(np.float32)
    if dtype == "F16":
        h = x.astype(np.float16)
        return ("F16", h), h.astype(np.float32)
    b = to_bf16_bits(x)
    return ("BF16", b), from_bf16_bits(b)


def write_model_dir(d, hf_tensors, config, dtype="F32", shards=1, tokenizer=None):
    """An HF directory; returns GGUF-order f32 expectations are not computed here."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(config))
    names = sorted(hf_tensors)
    if shards == 1:
        write_safetensors(d / "model.safetensors", {n: stored(hf_tensors[n], dtype)[0] for n in names})
    else:
        weight_map = {}
        for s in range(shards):
            part = names[s::shards]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            write_safetensors(d / fname, {n: stored(hf_tensors[n], dtype)[0] for n in part})
            weight_map.update({n: fname for n in part})
        (d / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    if tokenizer:
        for name, text in tokenizer.items():
            (d / name).write_text(text)
    return d


def unpermute(w, n_head):
    """GGUF (llama.cpp RoPE order) rows -> HF rows: HF row h*D + s*D/2 + j = GGUF row h*D + 2j + s."""
    rows, cols = w.shape
    d = rows // n_head
    return w.reshape(n_head, d // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


@pytest.fixture(scope="module")
def base(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf") / "base-f32.gguf"
    run(env, "quantize", MODEL, out, "--type", "f32")
    return out


@pytest.fixture(scope="module")
def reference(base):
    md = fields(MODEL)
    return md, tensors(base)


@pytest.fixture(scope="module")
def smollm_tokenizer(reference):
    """The SmolLM tokenizer files, set up as SmolLM2-Instruct's (whose GGUF is the reference)."""
    md, _ = reference
    tok = json.loads((SMOLLM_TOK / "tokenizer.json").read_text())
    vocab = {i: t for t, i in tok["model"]["vocab"].items()}
    for a in tok["added_tokens"]:
        vocab[a["id"]] = a["content"]
    # The test is only meaningful if the files are the GGUF's vocabulary: check it.
    assert [vocab[i] for i in range(len(md["tokenizer.ggml.tokens"]))] == md["tokenizer.ggml.tokens"]
    assert tok["model"]["merges"] == md["tokenizer.ggml.merges"]
    # This copy was saved by a fine-tune that added a [PAD] past the 49152 rows of the embedding
    # and fixed-length padding/truncation; SmolLM2's own tokenizer.json has neither.
    tok["added_tokens"] = [a for a in tok["added_tokens"] if a["id"] < 49152]
    tok["padding"] = tok["truncation"] = None
    cfg = json.loads((SMOLLM_TOK / "tokenizer_config.json").read_text())
    cfg["added_tokens_decoder"] = {k: v for k, v in cfg["added_tokens_decoder"].items() if int(k) < 49152}
    toks = md["tokenizer.ggml.tokens"]
    cfg.update(bos_token=toks[md["tokenizer.ggml.bos_token_id"]],
               eos_token=toks[md["tokenizer.ggml.eos_token_id"]],
               pad_token=toks[md["tokenizer.ggml.padding_token_id"]],
               unk_token=toks[md["tokenizer.ggml.unknown_token_id"]],
               chat_template=md["tokenizer.chat_template"])
    return {"tokenizer.json": json.dumps(tok, ensure_ascii=False),
            "tokenizer_config.json": json.dumps(cfg, ensure_ascii=False)}


def smollm_config(md):
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": md["llama.embedding_length"],
        "intermediate_size": md["llama.feed_forward_length"],
        "num_hidden_layers": md["llama.block_count"],
        "num_attention_heads": md["llama.attention.head_count"],
        "num_key_value_heads": md["llama.attention.head_count_kv"],
        "max_position_embeddings": md["llama.context_length"],
        "rms_norm_eps": float(np.float32(md["llama.attention.layer_norm_rms_epsilon"])),
        "rope_theta": md["llama.rope.freq_base"], "rope_scaling": None,
        "vocab_size": md["llama.vocab_size"], "tie_word_embeddings": True,
        "bos_token_id": md["tokenizer.ggml.bos_token_id"],
        "eos_token_id": md["tokenizer.ggml.eos_token_id"], "torch_dtype": "bfloat16",
    }


@pytest.fixture(scope="module")
def hf_weights(reference):
    """The default model's tensors in HF names, order and [out, in] shapes (f32)."""
    md, ref = reference
    n_head, n_kv = md["llama.attention.head_count"], md["llama.attention.head_count_kv"]
    out = {}
    for name, a in ref.items():
        a = a.astype(np.float32)
        if ".attn_q." in name:
            a = unpermute(a, n_head)
        elif ".attn_k." in name:
            a = unpermute(a, n_kv)
        out[hf_name(name)] = a
    out["model.layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(32, dtype=np.float32)
    return out


def import_dir(env, d, out, qtype="f32"):
    p = run(env, "quantize", d, out, "--type", qtype)
    return p.stderr


@pytest.mark.parametrize("dtype,shards", [("F32", 1), ("BF16", 1), ("F16", 1), ("BF16", 3)])
def test_import_gives_the_converters_gguf(env, tmp_path, reference, hf_weights, smollm_tokenizer,
                                          dtype, shards):
    md, ref = reference
    d = write_model_dir(tmp_path / "SmolLM2-135M-Instruct", hf_weights, smollm_config(md), dtype,
                        shards, smollm_tokenizer)
    out = tmp_path / "out.gguf"
    log = import_dir(env, d, out)
    assert "skipped tensor 'model.layers.0.self_attn.rotary_emb.inv_freq'" in log

    got = tensors(out)
    assert got.keys() == ref.keys()
    for name, want in ref.items():
        want = stored(want.astype(np.float32), dtype)[1]
        assert got[name].dtype == np.float32 and got[name].shape == want.shape, name
        assert np.array_equal(got[name], want), name

    mine = fields(out)
    for key, value in md.items():
        if key.startswith(("llama.", "tokenizer.")) or key == "general.architecture":
            assert mine.get(key) == value, key
    extra = {k for k in mine if k.startswith(("llama.", "tokenizer.")) and k not in md}
    assert not extra
    assert mine["general.name"] == "SmolLM2-135M-Instruct"
    assert mine["general.size_label"] == "135M"


@pytest.fixture(scope="module")
def imported(env, tmp_path_factory, reference, hf_weights, smollm_tokenizer):
    md, _ = reference
    root = tmp_path_factory.mktemp("hfrun")
    d = write_model_dir(root / "SmolLM2-135M-Instruct", hf_weights, smollm_config(md), "F32", 1,
                        smollm_tokenizer)
    out = root / "imported.gguf"
    import_dir(env, d, out)
    return d, out


def test_greedy_tokens_equal(env, base, imported):
    _, out = imported
    ids = "1 9690 198 2683 359 253 5356 5646 2"
    args = ["--tokens", ids, "-n", "24", "--temp", "0", "--ignore-eos", "--output-ids"]
    want = run(env, "run", "-m", base, *args).stdout.split()
    got = run(env, "run", "-m", out, *args).stdout.split()
    assert got == want and len(got) == 24


TEXTS = [
    "The history of the city of Paris begins in 1453, with 12 thousand people.",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
    "  spaces\tand\nnewlines  ünïcödé 日本語 🦙 ",
    "def f(x):\n    return x ** 2  # square",
]



def test_llama_cpp_reads_the_import_as_the_converters_file(base, imported):
    """llama.cpp loads the imported file and computes exactly the logits it computes from the
    converter's (decoded) file, and tokenizes text the same way."""
    import llama_cpp
    _, out = imported

    def load(path):
        return llama_cpp.Llama(model_path=str(path), n_ctx=64, n_threads=2, logits_all=True,
                               verbose=False)

    text = TEXTS[0].encode()
    want, got = load(base), load(out)
    ids = want.tokenize(text, add_bos=False, special=True)
    assert got.tokenize(text, add_bos=False, special=True) == ids
    want.eval(ids[:12])
    got.eval(ids[:12])
    assert np.array_equal(np.array(want.scores[:12]), np.array(got.scores[:12]))

@pytest.mark.parametrize("text", TEXTS)
def test_tokenize_equals_hf_tokenizers(env, imported, text):
    from tokenizers import Tokenizer
    d, out = imported
    want = Tokenizer.from_file(str(d / "tokenizer.json")).encode(text, add_special_tokens=False).ids
    got = run(env, "tokenize", "-m", out, "--no-bos", text).stdout.split()
    assert [int(x) for x in got] == want


def test_q8_0_from_hf_equals_q8_0_from_gguf(env, tmp_path, base, imported):
    _, out = imported
    from_gguf, from_hf = tmp_path / "a.gguf", tmp_path / "b.gguf"
    run(env, "quantize", base, from_gguf, "--type", "q8_0")
    run(env, "quantize", imported[0], from_hf, "--type", "q8_0")
    a, b = GGUFReader(str(from_gguf)).tensors, {t.name: t for t in GGUFReader(str(from_hf)).tensors}
    for t in a:
        assert t.tensor_type == b[t.name].tensor_type, t.name
        assert np.array_equal(np.asarray(t.data), np.asarray(b[t.name].data)), t.name


# --- small synthetic models -------------------------------------------------

def tiny_config(**over):
    c = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 49152, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
         "rope_theta": 10000.0, "tie_word_embeddings": False}
    c.update(over)
    return c


def tiny_weights(c, seed=0):
    rng = np.random.default_rng(seed)
    C, F, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    D = C // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * D, c["num_key_value_heads"] * D
    w = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,)}
    if not c.get("tie_word_embeddings"):
        w["lm_head.weight"] = (V, C)
    for b in range(c["num_hidden_layers"]):
        p = f"model.layers.{b}."
        w.update({p + "input_layernorm.weight": (C,), p + "post_attention_layernorm.weight": (C,),
                  p + "self_attn.q_proj.weight": (q, C), p + "self_attn.k_proj.weight": (kv, C),
                  p + "self_attn.v_proj.weight": (kv, C), p + "self_attn.o_proj.weight": (C, q),
                  p + "mlp.gate_proj.weight": (F, C), p + "mlp.up_proj.weight": (F, C),
                  p + "mlp.down_proj.weight": (C, F)})
    return {n: (rng.standard_normal(s) * 0.05).astype(np.float32) for n, s in w.items()}


def test_tiny_untied_model_with_linear_rope_scaling(env, tmp_path, smollm_tokenizer):
    c = tiny_config(rope_scaling={"type": "linear", "factor": 4.0}, head_dim=16)
    w = tiny_weights(c)
    d = write_model_dir(tmp_path / "tiny", w, c, "BF16", 1, smollm_tokenizer)
    out = tmp_path / "tiny.gguf"
    import_dir(env, d, out)
    md, t = fields(out), tensors(out)
    assert md["llama.rope.scaling.type"] == "linear" and md["llama.rope.scaling.factor"] == 4.0
    assert md["llama.attention.key_length"] == 16 and md["llama.rope.dimension_count"] == 16
    assert np.array_equal(t["output.weight"], from_bf16_bits(to_bf16_bits(w["lm_head.weight"])))
    # Q rows in llama.cpp's order: GGUF row h*D + 2j + s = HF row h*D + s*D/2 + j.
    q = from_bf16_bits(to_bf16_bits(w["model.layers.1.self_attn.q_proj.weight"]))
    for h in range(4):
        for j in range(8):
            for s in range(2):
                assert np.array_equal(t["blk.1.attn_q.weight"][h * 16 + 2 * j + s], q[h * 16 + s * 8 + j])
    # memwall runs it
    assert len(run(env, "run", "-m", out, "--tokens", "1 2 3", "-n", "4", "--temp", "0",
                   "--ignore-eos", "--output-ids").stdout.split()) == 4


def test_sentencepiece_tokenizer_model_matches_llama_cpp(env, tmp_path):
    """tokenizer.model -> tokens, scores, types of llama.cpp's ggml-vocab-llama-spm.gguf."""
    c = tiny_config(vocab_size=32000, bos_token_id=1, eos_token_id=2)
    added = [{"id": i, "content": t, "special": True} for i, t in enumerate(["<unk>", "<s>", "</s>"])]
    tok = {"tokenizer.json": json.dumps({"added_tokens": added, "model": {"type": "BPE"}}),
           "tokenizer_config.json": json.dumps({"add_bos_token": True, "add_eos_token": False,
                                                "bos_token": "<s>", "eos_token": "</s>",
                                                "unk_token": "<unk>"})}
    d = write_model_dir(tmp_path / "spm", tiny_weights(c), c, "F16", 1, tok)
    shutil.copy(DATA / "llama2-spm-tokenizer" / "tokenizer.model", d / "tokenizer.model")
    out = tmp_path / "spm.gguf"
    import_dir(env, d, out)
    mine, ref = fields(out), fields(SPM_VOCAB)
    for key, value in ref.items():
        if key.startswith("tokenizer."):
            assert mine.get(key) == value, key
    text = "Hello world, 1234 \u00e9t\u00e9"
    ids = run(env, "tokenize", "-m", out, text).stdout.split()
    assert ids[0] == "1" and len(ids) > 5


def test_llama3_style_tokenizer_json(env, tmp_path, smollm_tokenizer):
    """A byte-level BPE with Llama 3's Split pre-tokenizer and list-form merges -> llama-bpe."""
    tok = json.loads(smollm_tokenizer["tokenizer.json"])
    tok["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    tok["model"]["merges"] = [m.split(" ") for m in tok["model"]["merges"]]
    tok["model"]["ignore_merges"] = True
    tok["post_processor"] = {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [], "special_tokens": {}}
    c = tiny_config()
    d = write_model_dir(tmp_path / "l3", tiny_weights(c), c, "F32", 1,
                        {**smollm_tokenizer, "tokenizer.json": json.dumps(tok)})
    out = tmp_path / "l3.gguf"
    import_dir(env, d, out)
    md = fields(out)
    assert md["tokenizer.ggml.pre"] == "llama-bpe"
    assert md["tokenizer.ggml.merges"][:2] == ["Ġ t", "Ġ a"]
    from tokenizers import Tokenizer
    for text in TEXTS:
        want = Tokenizer.from_file(str(d / "tokenizer.json")).encode(text, add_special_tokens=False).ids
        got = run(env, "tokenize", "-m", out, "--no-bos", text).stdout.split()
        assert [int(x) for x in got] == want, text


def test_byte_fallback_tokenizer_json_as_llama_hf_vocab(env, tmp_path):
    """A SentencePiece-style BPE in tokenizer.json only (byte_fallback, no tokenizer.model):
    written as gguf-py's LlamaHfVocab writes it -- model "llama", every score -1000, <0xXX>
    tokens BYTE, the configured special tokens CONTROL, added tokens past the base vocabulary
    appended (CONTROL if special, else USER_DEFINED)."""
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + \
        ["\u2581", "h", "e", "l", "o", "\u2581h", "he", "ll", "\u2581he", "\u2581hell", "\u2581hello"]
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = ["\u2581 h", "h e", "l l", "\u2581h e", "\u2581he ll", "\u2581hell o"]
    n = len(pieces)
    added = [{"id": 0, "content": "<unk>", "special": True}, {"id": 1, "content": "<s>", "special": True},
             {"id": 2, "content": "</s>", "special": True},
             {"id": n, "content": "<|im_start|>", "special": True},
             {"id": n + 1, "content": "<custom>", "special": False}]
    tok = {"version": "1.0", "added_tokens": added, "normalizer": {"type": "Sequence", "normalizers": [
               {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
           "pre_tokenizer": None,
           "post_processor": {"type": "TemplateProcessing",
                              "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                              "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                       {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                              "special_tokens": {}},
           "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
           "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "byte_fallback": True,
                     "fuse_unk": True, "ignore_merges": False, "vocab": vocab, "merges": merges}}
    cfg = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
           "add_eos_token": False, "additional_special_tokens": ["<|im_start|>"]}
    c = tiny_config(vocab_size=n + 2)
    d = write_model_dir(tmp_path / "hfft", tiny_weights(c), c, "F32", 1,
                        {"tokenizer.json": json.dumps(tok), "tokenizer_config.json": json.dumps(cfg)})
    out = tmp_path / "hfft.gguf"
    import_dir(env, d, out)
    md = fields(out)
    assert md["tokenizer.ggml.model"] == "llama" and md["tokenizer.ggml.pre"] == "default"
    assert md["tokenizer.ggml.tokens"] == pieces + ["<|im_start|>", "<custom>"]
    assert md["tokenizer.ggml.scores"] == [-1000.0] * (n + 2)
    assert md["tokenizer.ggml.token_type"] == [3, 3, 3] + [6] * 256 + [1] * 11 + [3, 4]
    assert (md["tokenizer.ggml.bos_token_id"], md["tokenizer.ggml.eos_token_id"],
            md["tokenizer.ggml.unknown_token_id"]) == (1, 2, 0)
    assert md["tokenizer.ggml.add_bos_token"] is True and md["tokenizer.ggml.add_eos_token"] is False
    assert md["tokenizer.ggml.add_sep_token"] is False  # the pair template has <s>, not a separator
    assert run(env, "tokenize", "-m", out, "hello").stdout.split()[0] == "1"


def test_mistral_architecture(env, tmp_path, smollm_tokenizer):
    c = tiny_config(architectures=["MistralForCausalLM"], sliding_window=4096)
    del c["max_position_embeddings"]
    d = write_model_dir(tmp_path / "mistral", tiny_weights(c), c, "BF16", 1, smollm_tokenizer)
    out = tmp_path / "m.gguf"
    import_dir(env, d, out)
    md = fields(out)
    assert md["general.architecture"] == "llama"
    assert md["llama.context_length"] == 131072  # MistralConfig's default
    assert len(run(env, "run", "-m", out, "--tokens", "1 2 3", "-n", "3", "--temp", "0",
                   "--ignore-eos", "--output-ids", "-c", "64").stdout.split()) == 3


# --- bad input ----------------------------------------------------------------

def expect_error(env, d, out, message):
    p = run(env, "quantize", d, out, "--type", "q8_0", check=False)
    assert p.returncode != 0
    assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1, p.stderr
    assert message in p.stderr, p.stderr
    assert not out.exists() and not Path(str(out) + ".tmp").exists()


@pytest.fixture
def tiny_dir(tmp_path, smollm_tokenizer):
    c = tiny_config()
    return write_model_dir(tmp_path / "bad", tiny_weights(c), c, "F16", 1, smollm_tokenizer), c


def test_bad_inputs(env, tmp_path, tiny_dir):
    d, c = tiny_dir
    out = tmp_path / "o.gguf"
    # the valid directory imports
    run(env, "quantize", d, out, "--type", "q8_0")
    out.unlink()

    (d / "config.json").rename(d / "config.bak")
    expect_error(env, d, out, "no config.json")
    (d / "config.bak").rename(d / "config.json")

    (d / "config.json").write_text(json.dumps(tiny_config(architectures=["GPT2LMHeadModel"])))
    expect_error(env, d, out, "architecture 'GPT2LMHeadModel' is not supported")
    (d / "config.json").write_text(json.dumps(tiny_config(rope_scaling={"rope_type": "yarn", "factor": 4})))
    expect_error(env, d, out, "rope_scaling type 'yarn' is not supported")
    (d / "config.json").write_text(json.dumps(c))

    good = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(good[:len(good) // 2])
    expect_error(env, d, out, "model.safetensors")

    w = tiny_weights(c)
    w["model.layers.1.mlp.up_proj.weight"] = w["model.layers.1.mlp.up_proj.weight"][:, :32]
    write_safetensors(d / "model.safetensors", {n: stored(a, "F16")[0] for n, a in w.items()})
    expect_error(env, d, out, "tensor 'model.layers.1.mlp.up_proj.weight' has shape [96, 32]")

    w = tiny_weights(c)
    del w["model.layers.1.self_attn.k_proj.weight"]
    write_safetensors(d / "model.safetensors", {n: stored(a, "F16")[0] for n, a in w.items()})
    expect_error(env, d, out, "'model.layers.1.self_attn.k_proj.weight' (blk.1.attn_k.weight) is missing")

    w = tiny_weights(c)
    write_safetensors(d / "model.safetensors",
                      {n: (("I8", a.astype(np.int8)) if "v_proj" in n else stored(a, "F16")[0])
                       for n, a in w.items()})
    expect_error(env, d, out, "is I8")

    (d / "model.safetensors").unlink()
    expect_error(env, d, out, "no model*.safetensors")


BAD_VALUES = [None, "x", -1, 1.5, [], {}, 0, 2 ** 70, [1, "a"], {"content": 3}]


def test_corrupt_json_files_never_crash(env, tmp_path, tiny_dir):
    """Every config/tokenizer field swapped for values of other JSON types: the import either
    succeeds or fails with one `error:` line; nothing crashes."""
    d, c = tiny_dir
    out = tmp_path / "o.gguf"
    files = {name: json.loads((d / name).read_text())
             for name in ["config.json", "tokenizer_config.json", "tokenizer.json"]}
    fields_to_break = {
        "config.json": list(c) + ["rope_scaling", "head_dim", "hidden_act", "_name_or_path"],
        "tokenizer_config.json": ["bos_token", "eos_token", "pad_token", "chat_template",
                                  "add_bos_token", "add_prefix_space", "added_tokens_decoder"],
        "tokenizer.json": ["added_tokens", "normalizer", "pre_tokenizer", "post_processor",
                           "decoder", "model"],
    }
    rng = np.random.default_rng(7)
    outcomes = {"ok": 0, "error": 0}
    for name, keys in fields_to_break.items():
        for key in keys:
            for value in [BAD_VALUES[i] for i in rng.choice(len(BAD_VALUES), 4, replace=False)]:
                broken = json.loads(json.dumps(files[name]))
                broken[key] = value
                (d / name).write_text(json.dumps(broken))
                p = run(env, "quantize", d, out, "--type", "f32", check=False)
                assert p.returncode in (0, 1), (name, key, value, p.returncode, p.stderr[-300:])
                if p.returncode:
                    assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1, p.stderr
                    outcomes["error"] += 1
                else:
                    outcomes["ok"] += 1
                out.unlink(missing_ok=True)
            (d / name).write_text(json.dumps(files[name]))
    for key in ["vocab", "merges"]:
        for value in [None, [], {}, [[1, 2]], {"a": -1}, "x"]:
            broken = json.loads(json.dumps(files["tokenizer.json"]))
            broken["model"][key] = value
            (d / "tokenizer.json").write_text(json.dumps(broken))
            p = run(env, "quantize", d, out, "--type", "f32", check=False)
            assert p.returncode in (0, 1) and (p.returncode == 0 or p.stderr.startswith("error: ")), \
                (key, value, p.stderr[-300:])
            out.unlink(missing_ok=True)
    assert outcomes["error"] > 20
