#!/usr/bin/env python3
"""Independent numpy re-implementation of llama2.c `run.c`, reading the llama2.c
checkpoint and tokenizer files directly (no GGUF, no memwall code).

It exists to prove our reading of the llama2.c formats before any engine runs
them: if this file reproduces llama2.c's own recorded outputs token for token,
the header, the weight order, the tokenizer layout and the RoPE convention are
understood. `memwall convert --llama2c` is then checked against the same facts.

What it mirrors from run.c (commit 7ac65cb2, the one that made expected/*.txt):
  - forward pass in float32: RMSNorm (eps 1e-5), RoPE on adjacent pairs
    (x[2j], x[2j+1]) of each head with theta_j = 10000^(-2j/head_size), GQA
    attention, SwiGLU FFN, classifier = token embedding when shared;
  - encode(): BOS, a " " dummy prefix when the text is non-empty, one token per
    UTF-8 code point (byte fallback id = byte + 3), then greedy merging of the
    best-scoring adjacent pair;
  - decode(): strip a leading space after BOS, map "<0xXX>" to the byte,
    safe_printf() drops single non-printable bytes;
  - sampler: argmax at temperature 0, else softmax(logits / T) and an
    xorshift64* coin; multinomial (top-p >= 1) or nucleus sampling;
  - generation stops after `steps` positions (BOS included) or when BOS is sampled.

    python tests/convert/llama2c_ref.py MODEL.bin TOKENIZER.bin [-i PROMPT] [-n 200] [-t 0] [-p 0.9] [-s 42]
    python tests/convert/llama2c_ref.py --check-cases DIR   # every case in DIR/expected/cases.json
    python tests/convert/llama2c_ref.py --to-v1 MODEL.bin OUT.bin   # re-export as llama2.c version 1
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

F = np.float32
V1_MAGIC = 0x616B3432  # "ak42"
V1_HEADER_BYTES = 256


@dataclass
class Config:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool
    version: int  # 0 = legacy

    @property
    def head_size(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_size


def _shapes(c: Config) -> dict[str, tuple[int, ...]]:
    L, C, F, V, D = c.n_layers, c.dim, c.hidden_dim, c.vocab_size, c.head_size
    return {
        "tok_emb": (V, C), "rms_att": (L, C), "wq": (L, C, C), "wk": (L, c.kv_dim, C),
        "wv": (L, c.kv_dim, C), "wo": (L, C, C), "rms_ffn": (L, C), "w1": (L, F, C),
        "w2": (L, C, F), "w3": (L, F, C), "rms_final": (C,),
        "freq_cis_real": (c.seq_len, D // 2), "freq_cis_imag": (c.seq_len, D // 2), "wcls": (V, C),
    }


# Order of the fp32 arrays after the header.
LEGACY_ORDER = ["tok_emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3",
                "rms_final", "freq_cis_real", "freq_cis_imag", "wcls"]
V1_ORDER = ["rms_att", "rms_ffn", "rms_final", "tok_emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls"]


def read_checkpoint(path: str | Path) -> tuple[Config, dict[str, np.ndarray]]:
    data = Path(path).read_bytes()
    magic, = struct.unpack_from("<I", data, 0)
    if magic == V1_MAGIC:
        version, = struct.unpack_from("<i", data, 4)
        if version != 1:
            raise ValueError(f"llama2.c version {version} is not handled here")
        params = struct.unpack_from("<7i", data, 8)
        shared = bool(data[36])
        offset, order = V1_HEADER_BYTES, V1_ORDER
    else:
        params = struct.unpack_from("<7i", data, 0)
        shared = params[5] > 0
        version, offset, order = 0, 28, LEGACY_ORDER
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = params
    cfg = Config(dim, hidden, n_layers, n_heads, n_kv_heads, abs(vocab), seq_len, shared, version)
    shapes = _shapes(cfg)
    w: dict[str, np.ndarray] = {}
    for name in order:
        if name == "wcls" and shared:
            continue
        n = int(np.prod(shapes[name]))
        w[name] = np.frombuffer(data, F, n, offset).reshape(shapes[name])
        offset += 4 * n
    if offset != len(data):
        raise ValueError(f"{path}: layout ends at byte {offset}, file has {len(data)}")
    if shared:
        w["wcls"] = w["tok_emb"]
    return cfg, w


def write_v1(path: str | Path, cfg: Config, w: dict[str, np.ndarray]) -> None:
    """llama2.c export.py version1_export: 256-byte header, then fp32 in V1_ORDER."""
    vocab = cfg.vocab_size
    head = struct.pack("<Ii7iB", V1_MAGIC, 1, cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads,
                       cfg.n_kv_heads, vocab, cfg.seq_len, int(cfg.shared_classifier))
    out = [head + b"\0" * (V1_HEADER_BYTES - len(head))]
    for name in V1_ORDER:
        if name == "wcls" and cfg.shared_classifier:
            continue
        out.append(np.ascontiguousarray(w[name], F).tobytes())
    Path(path).write_bytes(b"".join(out))


def rope_tables(cfg: Config, n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [n_pos, head_size/2] exactly as run.c computes them (float32 powf/cosf)."""
    hs = cfg.head_size
    freq = (F(1.0) / np.power(F(10000.0), np.arange(0, hs, 2, dtype=F) / F(hs))).astype(F)
    val = (np.arange(n_pos, dtype=F)[:, None] * freq[None, :]).astype(F)
    return np.cos(val).astype(F), np.sin(val).astype(F)


def check_freq_cis(cfg: Config, w: dict[str, np.ndarray]) -> float:
    """Legacy files carry the RoPE table the model was trained with (model.py
    precompute_freqs_cis: pairs (2j, 2j+1), base 10000). Returns the max abs error
    against run.c's formula; a small value confirms the adjacent-pair convention."""
    if "freq_cis_real" not in w:
        return 0.0
    cos, sin = rope_tables(cfg, cfg.seq_len)
    return float(max(np.abs(w["freq_cis_real"] - cos).max(), np.abs(w["freq_cis_imag"] - sin).max()))


def rmsnorm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    ss = F(np.dot(x, x) / F(x.size)) + F(1e-5)
    return (weight * (x / np.sqrt(ss, dtype=F))).astype(F)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(), dtype=F)
    return (e / e.sum(dtype=F)).astype(F)


class Transformer:
    def __init__(self, cfg: Config, w: dict[str, np.ndarray]):
        self.cfg, self.w = cfg, w
        self.cos, self.sin = rope_tables(cfg, cfg.seq_len)
        shape = (cfg.n_layers, cfg.seq_len, cfg.n_kv_heads, cfg.head_size)
        self.k_cache = np.zeros(shape, F)
        self.v_cache = np.zeros(shape, F)

    def _rope(self, x: np.ndarray, pos: int) -> np.ndarray:
        """x [heads, head_size]: rotate pairs (x[2j], x[2j+1]) by pos * theta_j."""
        c, s = self.cos[pos], self.sin[pos]
        a, b = x[:, 0::2].copy(), x[:, 1::2].copy()
        out = np.empty_like(x)
        out[:, 0::2] = a * c - b * s
        out[:, 1::2] = a * s + b * c
        return out

    def forward(self, token: int, pos: int) -> np.ndarray:
        c, w = self.cfg, self.w
        H, Hkv, D = c.n_heads, c.n_kv_heads, c.head_size
        g = H // Hkv
        x = w["tok_emb"][token].astype(F).copy()  # (C,)
        for l in range(c.n_layers):
            xb = rmsnorm(x, w["rms_att"][l])
            q = self._rope((w["wq"][l] @ xb).reshape(H, D), pos)
            k = self._rope((w["wk"][l] @ xb).reshape(Hkv, D), pos)
            v = (w["wv"][l] @ xb).reshape(Hkv, D)
            self.k_cache[l, pos], self.v_cache[l, pos] = k, v
            att_out = np.empty((H, D), F)
            for h in range(H):
                K = self.k_cache[l, : pos + 1, h // g]  # (pos+1, D)
                V = self.v_cache[l, : pos + 1, h // g]
                a = softmax((K @ q[h]) / np.sqrt(F(D), dtype=F))
                att_out[h] = a @ V
            x = x + w["wo"][l] @ att_out.reshape(-1)
            xb = rmsnorm(x, w["rms_ffn"][l])
            h1, h3 = w["w1"][l] @ xb, w["w3"][l] @ xb
            hb = (h1 * (F(1) / (F(1) + np.exp(-h1, dtype=F))) * h3).astype(F)
            x = (x + w["w2"][l] @ hb).astype(F)
        x = rmsnorm(x, w["rms_final"])
        return (w["wcls"] @ x).astype(F)


class Tokenizer:
    """llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score,
    int32 length, bytes. The token count is not stored; vocab_size comes from the model."""

    def __init__(self, path: str | Path, vocab_size: int):
        data = Path(path).read_bytes()
        self.max_token_length, = struct.unpack_from("<i", data, 0)
        off, self.pieces, self.scores = 4, [], []
        for _ in range(vocab_size):
            score, n = struct.unpack_from("<fi", data, off)
            off += 8
            self.pieces.append(data[off : off + n])
            self.scores.append(score)
            off += n
        if off != len(data):
            raise ValueError(f"{path}: {len(data) - off} bytes after {vocab_size} tokens")
        self.lookup = {p: i for i, p in enumerate(self.pieces)}

    def encode(self, text: str, bos: bool, eos: bool) -> list[int]:
        tokens = [1] if bos else []
        if text:
            tokens.append(self.lookup[b" "])
        for ch in text:
            b = ch.encode("utf-8")
            if b in self.lookup:
                tokens.append(self.lookup[b])
            else:
                tokens.extend(x + 3 for x in b)
        while True:
            best = (-1e10, -1, -1)
            for i in range(len(tokens) - 1):
                j = self.lookup.get(self.pieces[tokens[i]] + self.pieces[tokens[i + 1]])
                if j is not None and self.scores[j] > best[0]:
                    best = (self.scores[j], j, i)
            if best[2] < 0:
                break
            _, j, i = best
            tokens[i : i + 2] = [j]
        if eos:
            tokens.append(2)
        return tokens

    def decode(self, prev: int, token: int) -> bytes:
        piece = self.pieces[token]
        if prev == 1 and piece.startswith(b" "):
            piece = piece[1:]
        if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
            try:
                piece = bytes([int(piece[3:5], 16)])
            except ValueError:
                pass
        return piece


def safe_bytes(piece: bytes) -> bytes:
    """run.c safe_printf: drop a lone non-printable, non-space byte."""
    if len(piece) == 1:
        b = piece[0]
        if not (0x20 <= b <= 0x7E or b in b" \t\n\v\f\r"):
            return b""
    return piece


class Sampler:
    def __init__(self, temperature: float, topp: float, seed: int):
        self.temperature, self.topp, self.state = F(temperature), F(topp), seed & (2**64 - 1)

    def random_u32(self) -> int:
        s = self.state
        s ^= s >> 12
        s ^= (s << 25) & (2**64 - 1)
        s ^= s >> 27
        self.state = s
        return ((s * 0x2545F4914F6CDD1D) & (2**64 - 1)) >> 32

    def random_f32(self) -> np.float32:
        return F(self.random_u32() >> 8) / F(16777216.0)

    def sample(self, logits: np.ndarray) -> int:
        if self.temperature == 0:
            return int(np.argmax(logits))  # first index of the maximum, like run.c
        probs = softmax((logits / self.temperature).astype(F))
        coin = self.random_f32()
        if self.topp <= 0 or self.topp >= 1:
            cdf = np.cumsum(probs, dtype=F)  # sequential float32 sum, as in run.c
            idx = np.nonzero(coin < cdf)[0]
            return int(idx[0]) if idx.size else len(probs) - 1
        cutoff = (F(1) - self.topp) / F(len(probs) - 1)
        cand = np.nonzero(probs >= cutoff)[0]
        order = cand[np.argsort(-probs[cand], kind="stable")]
        cum = np.cumsum(probs[order], dtype=F)
        over = np.nonzero(cum > self.topp)[0]
        last = int(over[0]) if over.size else len(order) - 1
        r = coin * cum[last]
        hit = np.nonzero(r < cum[: last + 1])[0]
        return int(order[hit[0]]) if hit.size else int(order[last])


def generate(model: Transformer, tok: Tokenizer, sampler: Sampler, prompt: str, steps: int,
             trace: list[int] | None = None) -> bytes:
    """run.c generate(): returns stdout without its final "\\n"."""
    prompt_tokens = tok.encode(prompt, bos=True, eos=False)
    out, token, pos = [], prompt_tokens[0], 0
    while pos < steps:
        logits = model.forward(token, pos)
        if pos < len(prompt_tokens) - 1:
            nxt = prompt_tokens[pos + 1]
        else:
            nxt = sampler.sample(logits)
        pos += 1
        if nxt == 1:
            break
        if trace is not None:
            trace.append(nxt)
        out.append(safe_bytes(tok.decode(token, nxt)))
        token = nxt
    return b"".join(out)


def run_case(model_path: Path, tok_path: Path, prompt: str, steps: int, temperature: float,
             topp: float | None, seed: int | None, trace: list[int] | None = None) -> bytes:
    cfg, w = read_checkpoint(model_path)
    model = Transformer(cfg, w)
    tok = Tokenizer(tok_path, cfg.vocab_size)
    sampler = Sampler(temperature, 0.9 if topp is None else topp, 0 if seed is None else seed)
    return generate(model, tok, sampler, prompt, steps, trace)


def check_cases(folder: Path) -> int:
    meta = json.loads((folder / "expected" / "cases.json").read_text())
    failures = 0
    for case in meta["cases"]:
        want = (folder / "expected" / case["file"]).read_bytes()
        got = run_case(folder / meta["model"], folder / meta["tokenizer"], case["prompt"], case["steps"],
                       case["temperature"], case["topp"], case["seed"])
        ok = got == want
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {case['file']}")
        if not ok:
            print(f"  want {want!r}\n  got  {got!r}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--check-cases", metavar="DIR", type=Path)
    ap.add_argument("--to-v1", action="store_true", help="paths: MODEL.bin OUT.bin")
    ap.add_argument("-i", "--prompt", default="")
    ap.add_argument("-n", "--steps", type=int, default=256)
    ap.add_argument("-t", "--temperature", type=float, default=1.0)
    ap.add_argument("-p", "--topp", type=float, default=0.9)
    ap.add_argument("-s", "--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.check_cases:
        return check_cases(args.check_cases)
    if args.to_v1:
        cfg, w = read_checkpoint(args.paths[0])
        write_v1(args.paths[1], cfg, w)
        return 0
    if len(args.paths) != 2:
        ap.error("need MODEL.bin TOKENIZER.bin")
    text = run_case(Path(args.paths[0]), Path(args.paths[1]), args.prompt, args.steps,
                    args.temperature, args.topp, args.seed)
    sys.stdout.buffer.write(text + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
