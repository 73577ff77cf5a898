"""HF `tokenizers` byte-level BPE built from a GGUF's own vocab and merges.

Used to produce prompt token ids for the reference tests, independently of
memwall's tokenizer. Matches GPT-2-style GGUFs whose pre-tokenizer splits
digits one by one (SmolLM/SmolLM2, tokenizer.ggml.pre = "smollm").
"""
from __future__ import annotations

import gguf
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

# llama.cpp token types: 3 = control (<|im_start|> ...), 4 = user-defined.
_SPECIAL_TYPES = (3, 4)


def tokenizer_from_gguf(src: "str | gguf.GGUFReader") -> Tokenizer:
    """src: a GGUF path, or an open reader (parsing the vocab arrays takes seconds)."""
    reader = src if isinstance(src, gguf.GGUFReader) else gguf.GGUFReader(str(src))
    model = reader.fields["tokenizer.ggml.model"].contents()
    if model != "gpt2":
        raise NotImplementedError(f"tokenizer.ggml.model {model!r}: only byte-level BPE (gpt2) is supported")
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in reader.fields["tokenizer.ggml.merges"].contents()]

    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty in _SPECIAL_TYPES])
    return tok
