#!/usr/bin/env python3
"""Train a small Llama in f32 on TinyStories and write it as a llama2.c checkpoint.

The quantization frontier (bench/quant.py) needs a base that was never quantized and whose
rows fit every block format. The default model is a Q4_1 file (so q4_1 requantizes it
almost losslessly) and stories260K's FFN width (172) fits no block, so this script makes
a third base: a llama2.c-shaped model (dim 256, FFN 768, 4 layers, 8 heads / 4 KV heads,
vocabulary 512: every row a multiple of 256, so k-quants and Hadamard rotations apply to
every matrix), trained from scratch with PyTorch (Debian's python3-torch; run with the
system python3, not the venv) on the middle of ../shared/data's TinyStories sample.
bench/quant.py evaluates on the first 100,000 bytes and calibrates on the last 500,000,
so both are held out from training.

It tokenizes with memwall's own tokenizer of stories260K's tok512 vocabulary (`memwall
tokenize`), trains on windows cut the way `memwall perplexity` cuts them (BOS first), and
writes the legacy llama2.c format that `memwall convert` reads. RoPE rotates adjacent pairs
as llama2.c (and GGUF's llama) do. Seeded, so a rerun makes the same model on the same
torch build.

    python3 bench/train_tiny_llama.py --memwall build/memwall -o trained.bin
"""
import argparse
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
STORIES = os.path.join(SHARED, "llama2c-stories260k")
TEXT = os.path.join(SHARED, "text", "tinystories", "tinystories_sample.txt")
BOS = 1

# Torch calls BLAS from its own threads; a threaded OpenBLAS underneath oversubscribes the
# cores (measured: 1.9 s/step with 2 BLAS threads, 1.5 s with 1).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("train_tiny_llama: needs PyTorch: apt-get install python3-torch, and run it with "
             "the system python3 (scripts/setup-bench installs it)")


def log(*a):
    print("[train]", *a, file=sys.stderr, flush=True)


def tokenize(memwall, text_bytes, workdir):
    """Token ids of the text under tok512, through memwall (BOS first, as perplexity does)."""
    gguf = os.path.join(workdir, "tok512.gguf")
    subprocess.run([memwall, "convert", "--llama2c", os.path.join(STORIES, "stories260K.bin"),
                    "--tokenizer", os.path.join(STORIES, "tok512.bin"), "-o", gguf],
                   check=True, capture_output=True)
    path = os.path.join(workdir, "text.txt")
    with open(path, "wb") as fh:
        fh.write(text_bytes)
    out = subprocess.run([memwall, "tokenize", "-m", gguf, "--file", path], check=True,
                         capture_output=True, text=True).stdout
    return [int(t) for t in out.split()]


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        hd = c.dim // c.heads
        self.wq = torch.nn.Linear(c.dim, c.heads * hd, bias=False)
        self.wk = torch.nn.Linear(c.dim, c.kv_heads * hd, bias=False)
        self.wv = torch.nn.Linear(c.dim, c.kv_heads * hd, bias=False)
        self.wo = torch.nn.Linear(c.heads * hd, c.dim, bias=False)
        self.w1 = torch.nn.Linear(c.dim, c.hidden, bias=False)  # gate
        self.w2 = torch.nn.Linear(c.hidden, c.dim, bias=False)  # down
        self.w3 = torch.nn.Linear(c.dim, c.hidden, bias=False)  # up
        self.rms_att = torch.nn.Parameter(torch.ones(c.dim))
        self.rms_ffn = torch.nn.Parameter(torch.ones(c.dim))
        self._causal = torch.triu(torch.ones(c.seq_len, c.seq_len, dtype=torch.bool), 1)

    @property
    def causal(self):
        return self._causal

    def forward(self, x, cos, sin):
        c = self.c
        B, T, _ = x.shape
        hd = c.dim // c.heads
        h = rmsnorm(x, self.rms_att)
        q = rope(self.wq(h).view(B, T, c.heads, hd), cos, sin).transpose(1, 2)
        k = rope(self.wk(h).view(B, T, c.kv_heads, hd), cos, sin).transpose(1, 2)
        v = self.wv(h).view(B, T, c.kv_heads, hd).transpose(1, 2)
        rep = c.heads // c.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(self.causal[:T, :T], float("-inf"))
        a = F.softmax(att, dim=-1) @ v
        x = x + self.wo(a.transpose(1, 2).reshape(B, T, c.dim))
        h = rmsnorm(x, self.rms_ffn)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


def rmsnorm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(head_size, seq_len):
    freqs = 1.0 / (10000.0 ** (torch.arange(0, head_size, 2).float() / head_size))
    ang = torch.outer(torch.arange(seq_len).float(), freqs)
    return torch.cos(ang), torch.sin(ang)


def rope(x, cos, sin):
    """Rotate adjacent pairs (x[2i], x[2i+1]), llama2.c's and GGUF llama's layout."""
    T = x.shape[1]
    c = cos[:T].view(1, T, 1, -1)
    s = sin[:T].view(1, T, 1, -1)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok = torch.nn.Embedding(c.vocab, c.dim)
        self.blocks = torch.nn.ModuleList(Block(c) for _ in range(c.layers))
        self.rms_final = torch.nn.Parameter(torch.ones(c.dim))
        cos, sin = rope_tables(c.dim // c.heads, c.seq_len)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        torch.nn.init.normal_(self.tok.weight, std=0.02)
        for b in self.blocks:
            for m in (b.wq, b.wk, b.wv, b.w1, b.w3):
                torch.nn.init.normal_(m.weight, std=0.02)
            for m in (b.wo, b.w2):  # GPT-2's scaled init of the residual writers
                torch.nn.init.normal_(m.weight, std=0.02 / math.sqrt(2 * c.layers))

    def forward(self, ids):
        x = self.tok(ids)
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        return rmsnorm(x, self.rms_final) @ self.tok.weight.t()  # tied classifier


def windows(tokens, seq, gen, batch):
    """A batch of seq+1-token windows at random offsets, BOS first (perplexity's cut)."""
    n = len(tokens) - seq - 1
    starts = torch.randint(0, n, (batch,), generator=gen)
    x = torch.stack([tokens[s:s + seq + 1] for s in starts.tolist()])
    x[:, 0] = BOS
    return x


@torch.no_grad()
def eval_ppl(model, tokens, seq):
    """llama.cpp's protocol on held-out text: windows of seq, BOS first, second half scored."""
    nll, n = 0.0, 0
    for i in range(len(tokens) // seq):
        w = tokens[i * seq:(i + 1) * seq].clone()
        w[0] = BOS
        logits = model(w[None, :-1])[0]
        lp = F.log_softmax(logits, dim=-1)
        tgt = w[1:]
        first = seq // 2  # llama.cpp scores logits seq/2 .. seq-2 (tokens seq/2+1 .. seq-1)
        nll -= lp[first:].gather(1, tgt[first:, None]).sum().item()
        n += seq - 1 - first
    return math.exp(nll / max(n, 1)), n


def write_llama2c(path, model, c):
    """Legacy llama2.c checkpoint: 7 int32 (vocab positive = shared classifier), then f32."""
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    with open(path, "wb") as fh:
        fh.write(struct.pack("7i", c.dim, c.hidden, c.layers, c.heads, c.kv_heads, c.vocab,
                             c.seq_len))

        def put(t):
            fh.write(t.numpy().astype("<f4").tobytes())

        put(sd["tok.weight"])
        for name in ("rms_att", "wq.weight", "wk.weight", "wv.weight", "wo.weight", "rms_ffn",
                     "w1.weight", "w2.weight", "w3.weight"):
            for i in range(c.layers):
                put(sd[f"blocks.{i}.{name}"])
        put(sd["rms_final"])
        cos, sin = rope_tables(c.dim // c.heads, c.seq_len)
        put(cos)
        put(sin)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--memwall", default=os.path.join(ROOT, "build", "memwall"))
    ap.add_argument("-o", "--output", required=True, help="llama2.c checkpoint to write")
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--held-out-head", type=int, default=100_000,
                    help="bytes at the start kept out of training (bench/quant.py's eval text)")
    ap.add_argument("--held-out-tail", type=int, default=500_000,
                    help="bytes at the end kept out of training (its calibration text)")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    c = ap.parse_args()
    torch.manual_seed(c.seed)
    torch.set_num_threads(c.threads)
    with open(c.text, "rb") as fh:
        raw = fh.read()
    train_bytes = raw[c.held_out_head:len(raw) - c.held_out_tail]
    # Cut at a line start so no story is split mid-word.
    train_bytes = train_bytes[train_bytes.index(b"\n") + 1:]
    with tempfile.TemporaryDirectory() as tmp:
        train = torch.tensor(tokenize(c.memwall, train_bytes, tmp), dtype=torch.long)
        held = torch.tensor(tokenize(c.memwall, raw[:c.held_out_head], tmp), dtype=torch.long)
    c.vocab = 512
    log(f"{len(train_bytes):,} training bytes -> {len(train):,} tokens; "
        f"{len(held):,} held-out tokens")
    model = Llama(c)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: dim {c.dim}, hidden {c.hidden}, {c.layers} layers, {c.heads} heads / "
        f"{c.kv_heads} KV, vocab {c.vocab}: {n_params / 1e6:.2f}M parameters")
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": c.weight_decay},
                             {"params": other, "weight_decay": 0.0}],
                            lr=c.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(c.seed)
    warmup = max(1, c.steps // 20)
    t0 = time.monotonic()
    for step in range(c.steps):
        lr = c.lr * min(1.0, (step + 1) / warmup) * \
            (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / c.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = windows(train, c.seq_len, gen, c.batch)
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, c.vocab), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == c.steps - 1:
            el = time.monotonic() - t0
            log(f"step {step + 1}/{c.steps} loss {loss.item():.3f} lr {lr:.2e} "
                f"({el:.0f}s, eta {el / (step + 1) * (c.steps - step - 1):.0f}s)")
    model.eval()
    ppl, n = eval_ppl(model, held, c.seq_len)
    epochs = c.steps * c.batch * c.seq_len / len(train)
    log(f"held-out perplexity {ppl:.3f} over {n} scored tokens ({epochs:.1f} epochs)")
    write_llama2c(c.output, model, c)
    print(f"{c.output}: held-out perplexity {ppl:.4f} ({n} tokens, ctx {c.seq_len}), "
          f"{n_params / 1e6:.2f}M parameters, {c.steps} steps x {c.batch} x {c.seq_len} "
          f"tokens ({epochs:.1f} epochs), seed {c.seed}")


if __name__ == "__main__":
    main()
