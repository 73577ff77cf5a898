#!/usr/bin/env python3
"""Independent numpy reference forward pass for llama-architecture GGUF models.

It shares no code with memwall: the file is read with `gguf.GGUFReader` and
every tensor is dequantized with `gguf.quants.dequantize` (never with our own
block decoding), then all math runs in float64 so that the reference's own
rounding error is far below the tolerance the engine is held to.

    python tests/reference/llama_ref.py MODEL --tokens "1 2 3" [--greedy N]
    python tests/reference/llama_ref.py MODEL --prompt "The capital of France is" --greedy 32
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# OpenBLAS's thread pool makes these small float64 matmuls ~3x slower on a busy 2-core
# machine. It reads the variable once, when numpy loads it; unset it afterwards so that
# child processes (the engine under test) keep their own defaults.
_PIN_BLAS = "OPENBLAS_NUM_THREADS" not in os.environ and "numpy" not in sys.modules
if _PIN_BLAS:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402
import gguf  # noqa: E402
if _PIN_BLAS:
    del os.environ["OPENBLAS_NUM_THREADS"]

DTYPE = np.float64


@dataclass(frozen=True)
class HParams:
    arch: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_rot: int
    rope_base: float
    rope_scale: float  # positions are divided by this (linear scaling); 1.0 = none
    rope_style: str  # "normal" (adjacent pairs) or "neox" (halves)
    rms_eps: float
    n_ctx: int
    n_vocab: int


def _field(reader: gguf.GGUFReader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            raise KeyError(f"GGUF metadata key {key!r} missing")
        return default
    return f.contents()


def _read_hparams(reader: gguf.GGUFReader, n_vocab: int) -> HParams:
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        # Other families (qwen2 biases, gemma norms...) need more than this file does.
        raise NotImplementedError(f"architecture {arch!r} is not supported (only llama)")
    p = arch + "."
    n_embd = int(_field(reader, p + "embedding_length"))
    n_head = int(_field(reader, p + "attention.head_count"))
    head_dim = n_embd // n_head
    scale = 1.0
    scaling_type = _field(reader, p + "rope.scaling.type", "none")
    if scaling_type == "linear":
        scale = float(_field(reader, p + "rope.scaling.factor"))
    elif scaling_type != "none":
        raise NotImplementedError(f"rope scaling {scaling_type!r} is not supported")
    style = _field(reader, "memwall.rope_style", "normal")
    if style not in ("normal", "neox"):
        raise ValueError(f"memwall.rope_style must be normal or neox, got {style!r}")
    return HParams(
        arch=arch,
        n_layer=int(_field(reader, p + "block_count")),
        n_embd=n_embd,
        n_ff=int(_field(reader, p + "feed_forward_length")),
        n_head=n_head,
        n_head_kv=int(_field(reader, p + "attention.head_count_kv", n_head)),
        head_dim=head_dim,
        n_rot=int(_field(reader, p + "rope.dimension_count", head_dim)),
        rope_base=float(_field(reader, p + "rope.freq_base", 10000.0)),
        rope_scale=scale,
        rope_style=style,
        rms_eps=float(_field(reader, p + "attention.layer_norm_rms_epsilon")),
        n_ctx=int(_field(reader, p + "context_length")),
        n_vocab=n_vocab,
    )


def _dequant(t) -> np.ndarray:
    """Tensor as a float64 array, outermost dim first (GGUF lists dims innermost first)."""
    w = gguf.quants.dequantize(t.data, t.tensor_type)
    shape = tuple(int(d) for d in reversed(t.shape))
    return np.asarray(w, dtype=DTYPE).reshape(shape)


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, n_rot: int, style: str) -> np.ndarray:
    """x: [T, heads, head_dim]; cos/sin: [T, n_rot/2]. Only the first n_rot dims rotate."""
    out = x.copy()
    c, s = cos[:, None, :], sin[:, None, :]
    if style == "normal":  # GGUF llama: pairs (x[2i], x[2i+1])
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = a * c - b * s
        out[..., 1:n_rot:2] = a * s + b * c
    else:  # neox: pairs (x[i], x[i + n_rot/2])
        h = n_rot // 2
        a, b = x[..., :h], x[..., h:n_rot]
        out[..., :h] = a * c - b * s
        out[..., h:n_rot] = a * s + b * c
    return out


class KVCache:
    """Per-layer K and V, preallocated for `capacity` positions."""

    def __init__(self, hp: HParams, capacity: int):
        shape = (hp.n_layer, capacity, hp.n_head_kv, hp.head_dim)
        self.k = np.zeros(shape, DTYPE)
        self.v = np.zeros(shape, DTYPE)
        self.length = 0


class Model:
    def __init__(self, path: str | Path):
        self.reader = reader = gguf.GGUFReader(str(path))
        tensors = {t.name: t for t in reader.tensors}

        def get(name: str) -> np.ndarray:
            if name not in tensors:
                raise KeyError(f"tensor {name!r} missing from {path}")
            return _dequant(tensors[name])

        self.tok_embd = get("token_embd.weight")  # [V, C]
        self.hp = hp = _read_hparams(reader, n_vocab=self.tok_embd.shape[0])
        self.output_norm = get("output_norm.weight")
        # Tied models reuse the embedding matrix as the output projection.
        self.output = get("output.weight") if "output.weight" in tensors else self.tok_embd
        self.layers = []
        for i in range(hp.n_layer):
            names = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                     "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")
            self.layers.append({n: get(f"blk.{i}.{n}.weight") for n in names})
        self._check_shapes()
        # theta_i = base^(-2i/n_rot), i in [0, n_rot/2)
        self.inv_freq = hp.rope_base ** (-np.arange(0, hp.n_rot, 2, dtype=DTYPE) / hp.n_rot)

    def _check_shapes(self) -> None:
        hp, C = self.hp, self.hp.n_embd
        q, kv = hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim
        want = {"attn_norm": (C,), "attn_q": (q, C), "attn_k": (kv, C), "attn_v": (kv, C),
                "attn_output": (C, q), "ffn_norm": (C,), "ffn_gate": (hp.n_ff, C),
                "ffn_up": (hp.n_ff, C), "ffn_down": (C, hp.n_ff)}
        for i, layer in enumerate(self.layers):
            for n, shape in want.items():
                if layer[n].shape != shape:
                    raise ValueError(f"blk.{i}.{n}.weight has shape {layer[n].shape}, want {shape}")
        if self.output.shape != (hp.n_vocab, C) or self.output_norm.shape != (C,):
            raise ValueError("output / output_norm shape mismatch")
        if hp.n_head % hp.n_head_kv or hp.n_rot % 2 or hp.n_rot > hp.head_dim:
            raise ValueError(f"inconsistent head counts / rope dims: {hp}")

    def _forward(self, tokens: list[int], cache: KVCache, all_logits: bool) -> np.ndarray:
        """Run `tokens` at positions cache.length.. and append their K/V to the cache."""
        hp = self.hp
        T, p0 = len(tokens), cache.length
        S = p0 + T
        if S > cache.k.shape[1]:
            raise ValueError(f"{S} positions exceed cache capacity {cache.k.shape[1]}")
        H, Hkv, D = hp.n_head, hp.n_head_kv, hp.head_dim
        g = H // Hkv  # query head h reads KV head h // g

        pos = np.arange(p0, S, dtype=DTYPE) / hp.rope_scale
        ang = pos[:, None] * self.inv_freq[None, :]
        cos, sin = np.cos(ang), np.sin(ang)
        # Causal mask: query at position p0+t sees keys 0..p0+t.
        mask = np.arange(S)[None, :] > (p0 + np.arange(T))[:, None]

        x = self.tok_embd[np.asarray(tokens)]
        for li, L in enumerate(self.layers):
            h = rms_norm(x, L["attn_norm"], hp.rms_eps)
            q = (h @ L["attn_q"].T).reshape(T, H, D)
            k = (h @ L["attn_k"].T).reshape(T, Hkv, D)
            v = (h @ L["attn_v"].T).reshape(T, Hkv, D)
            q = apply_rope(q, cos, sin, hp.n_rot, hp.rope_style)
            k = apply_rope(k, cos, sin, hp.n_rot, hp.rope_style)
            cache.k[li, p0:S], cache.v[li, p0:S] = k, v
            K = cache.k[li, :S].transpose(1, 2, 0)  # [Hkv, D, S]
            V = cache.v[li, :S].transpose(1, 0, 2)  # [Hkv, S, D]
            qg = q.reshape(T, Hkv, g, D).transpose(1, 2, 0, 3).reshape(Hkv, g * T, D)
            sc = (qg @ K).reshape(Hkv, g, T, S) / np.sqrt(D)
            sc = np.where(mask, -np.inf, sc)
            sc = np.exp(sc - sc.max(axis=-1, keepdims=True))
            sc /= sc.sum(axis=-1, keepdims=True)
            o = (sc.reshape(Hkv, g * T, S) @ V).reshape(Hkv, g, T, D)
            o = o.transpose(2, 0, 1, 3).reshape(T, H * D)
            x = x + o @ L["attn_output"].T

            h = rms_norm(x, L["ffn_norm"], hp.rms_eps)
            x = x + (silu(h @ L["ffn_gate"].T) * (h @ L["ffn_up"].T)) @ L["ffn_down"].T
        cache.length = S

        if not all_logits:
            x = x[-1:]
        return rms_norm(x, self.output_norm, hp.rms_eps) @ self.output.T

    def _check_len(self, n: int) -> None:
        if n > self.hp.n_ctx:
            raise ValueError(f"{n} positions exceed the model's context length {self.hp.n_ctx}")

    def logits(self, token_ids: list[int]) -> np.ndarray:
        """Logits [T, V] at every position of one causal pass (no BOS added)."""
        ids = [int(t) for t in token_ids]
        self._check_len(len(ids))
        return self._forward(ids, KVCache(self.hp, len(ids)), all_logits=True)

    def greedy_steps(self, prompt_ids: list[int], n: int) -> tuple[list[int], list[float]]:
        """Greedy ids and, per step, the top-1 minus top-2 logit gap relative to max|logit|.

        The gap says how safe each step is to compare: where it is tiny, an engine
        that rounds differently may legitimately pick the other token.
        """
        ids = [int(t) for t in prompt_ids]
        if not ids:
            raise ValueError("greedy needs at least one prompt token")
        self._check_len(len(ids) + n - 1)
        cache = KVCache(self.hp, len(ids) + n)
        out, gaps = [], []
        step_in = ids
        for _ in range(n):
            row = self._forward(step_in, cache, all_logits=False)[0]
            top2 = np.partition(row, -2)[-2:]
            out.append(int(np.argmax(row)))
            gaps.append(float((top2[1] - top2[0]) / max(np.abs(row).max(), 1e-30)))
            step_in = [out[-1]]
        return out, gaps

    def greedy(self, prompt_ids: list[int], n: int) -> list[int]:
        """n greedily decoded ids after the prompt (never stops at EOS)."""
        return self.greedy_steps(prompt_ids, n)[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--tokens", help='space separated token ids, e.g. "1 2 3"')
    src.add_argument("--prompt", help="text, tokenized with the GGUF's own vocab (needs `tokenizers`)")
    ap.add_argument("--greedy", type=int, metavar="N", help="greedy-decode N tokens instead of printing argmaxes")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    model = Model(args.model)
    t1 = time.perf_counter()
    tok = None
    if args.prompt is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from gguf_tokenizer import tokenizer_from_gguf
        tok = tokenizer_from_gguf(model.reader)
        ids = tok.encode(args.prompt).ids
        print("prompt ids:", " ".join(map(str, ids)))
    else:
        ids = [int(t) for t in args.tokens.split()]

    if args.greedy is not None:
        out = model.greedy(ids, args.greedy)
        print(" ".join(map(str, out)))
        if tok is not None:
            print(repr(tok.decode(ids + out)))
    else:
        print(" ".join(str(int(i)) for i in model.logits(ids).argmax(axis=-1)))
    t2 = time.perf_counter()
    print(f"load {t1 - t0:.2f}s, compute {t2 - t1:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
