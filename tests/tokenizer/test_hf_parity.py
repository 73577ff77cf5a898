"""memwall's tokenizer against HF `tokenizers` on the default model (SmolLM2).

Two independent references:
  * an HF tokenizer built from the GGUF's own vocabulary and merges with the
    SmolLM pre-tokenizer (Digits(individual) + ByteLevel) and the control tokens
    as special added tokens;
  * SmolLM (v1)'s tokenizer.json from ../shared/data/smollm-tokenizer, with its
    padding and truncation switched off.
Over 1500 strings (a hand-written list of nasty cases plus seeded random ones),
memwall runs once in batch mode (`memwall tokenize --jsonl`), and every string
is its own test case so a mismatch names the string and the first differing token.

Environment: MEMWALL_BIN (default <repo>/build/memwall), MEMWALL_MODEL
(default <repo>/models/SmolLM2-135M-Instruct.Q4_1.gguf).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
BIN = Path(os.environ.get("MEMWALL_BIN", REPO / "build" / "memwall"))
MODEL = Path(os.environ.get("MEMWALL_MODEL", REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
SMOLLM_JSON = SHARED / "smollm-tokenizer" / "tokenizer.json"

# ---------------------------------------------------------------- test strings

NASTY = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t \n", "a ", "a  ", "a\n",
    "a \n", " a", "  a", "   a", "\ta", "\na", "a\n\nb", "a \n b", "a  \t b", "x\r\ny",
    "trailing spaces   ", "trailing newline\n", "trailing mixed \t\n \n",
    "    def f(x):\n        return x * 2\n", "if (a && b) {\n\treturn c;\n}\n",
    "for i in range(10):\n    print(i)", "#include <stdio.h>\nint main(){printf(\"%d\\n\", 42);}",
    "x = [1, 2, 3]  # comment", "SELECT * FROM t WHERE id=7;", "a_b-c.d/e\\f",
    "0", "7", "12", "123", "1234567890", "3.14159", "1,000,000", "v1.2.3", "x2y3", " 42 ",
    "٣٤٥", "一二三", "１２３", "Ⅻ", "½ ¼ ²",
    "😀", "😀😀", " 😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇩🇪", "❤️", "🤖 robots", "a😀b",
    "日本語のテキスト", "中文字符测试", "한국어 텍스트", " 漢字", "カタカナ",
    "café", "cafe\u0301", "naïve", "Ångström", "e\u0301\u0300\u0302", "Zürich", "ñandú",
    "\u00a0", "a\u00a0b", "\u3000", "a\u2009b", "\u2028", "\u2029", "\u0085", "a\u0085b",
    "\u000b", "\u000c", "\u001c\u001d\u001e\u001f", "\u200b", "a\u200bb", "\u180e", "\ufeff",
    "\x00", "a\x00b", "\x7f", "\u00ad",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start", "im_end|>", "<|im_start|><|im_end|>", "<<|im_start|>>", "<repo_name>x<file_sep>",
    " <|im_end|> ", "text<|endoftext|>more", "<|IM_START|>",
    "I'm", "you're", "they've", "we'll", "he'd", "it's", "'s", "'S", "'ll've", "Don't STOP",
    "' era", "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
    "!!!!!!", "??", "...", "---===", "''''''```````\"\"\"\"......!!!!!!??????",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Привет мир", "Γειά σου",
    "ḁ̶̢̛͔̈́b̷̧̰̈́c̵̦̈́", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "\U0001F600\U0001F601\U0001F602", "\U00020000\U0002A6D6", "\U0001D400\U0001D401",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ℌ𝔢𝔩𝔩𝔬", "ﬁ ﬂ", "Ⓐⓑⓒ",
    " " * 100, "\n" * 50, "\t " * 40, "a" * 300, "😀" * 30, "1" * 200, "ab " * 200,
]


def random_strings(n: int, seed: int = 20240917) -> list[str]:
    rng = random.Random(seed)
    words = ["the", "quick", "brown", "fox", "Hello", "world", "tokenizer", "memory", "wall",
             "SmolLM", "model", "don't", "it's", "HTTP", "JSON", "x", "I", "a", "über", "naïve"]
    whitespace = [" ", " ", " ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\u2009", "\x0b",
                  "\x0c", "\u0085", "\u2028", "\u202f"]
    punct = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["…", "—", "«", "»", "¿", "¡", "€", "©"]
    emoji = ["😀", "😂", "🥲", "👍", "👍🏿", "👩‍💻", "🏳️‍🌈", "🇯🇵", "✅", "❤️", "🔥", "🤖", "🎉"]
    cjk_ranges = [(0x4E00, 0x9FFF), (0x3040, 0x309F), (0x30A0, 0x30FF), (0xAC00, 0xD7A3)]
    specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<file_sep>", "<|im_", "|>", "<"]
    code = ["def ", "return ", "    ", "\n    ", "()", "{}", "[]", " = ", " == ", "->", "::", "//",
            "/* */", "#!", "0x1F", "self.", "std::vector<int>", "i++", "&&", "||", "\"\"\""]
    combining = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0303", "\u20dd", "\u0489"]

    def random_code_point() -> str:
        # Mostly the BMP, some astral planes; never surrogates (not encodable).
        while True:
            cp = rng.randint(0x20, 0xFFFF) if rng.random() < 0.8 else rng.randint(0x10000, 0x10FFFF)
            if not 0xD800 <= cp <= 0xDFFF:
                return chr(cp)

    def fragment(kind: str) -> str:
        if kind == "word":
            return rng.choice(words)
        if kind == "ws":
            return "".join(rng.choice(whitespace) for _ in range(rng.randint(1, 6)))
        if kind == "digits":
            return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 10)))
        if kind == "punct":
            return "".join(rng.choice(punct) for _ in range(rng.randint(1, 4)))
        if kind == "emoji":
            return "".join(rng.choice(emoji) for _ in range(rng.randint(1, 3)))
        if kind == "cjk":
            lo, hi = rng.choice(cjk_ranges)
            return "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 5)))
        if kind == "accent":
            return rng.choice("aeiouAEIOUnc") + "".join(
                rng.choice(combining) for _ in range(rng.randint(1, 3)))
        if kind == "special":
            return rng.choice(specials)
        if kind == "code":
            return rng.choice(code)
        return "".join(random_code_point() for _ in range(rng.randint(1, 4)))

    kinds = ["word", "ws", "digits", "punct", "emoji", "cjk", "accent", "special", "code", "random"]
    out = []
    for _ in range(n):
        # Each string leans on a few kinds so some are whitespace-heavy, some code, ...
        favoured = rng.sample(kinds, 3)
        parts = []
        for _ in range(rng.randint(1, 14)):
            kind = rng.choice(favoured) if rng.random() < 0.7 else rng.choice(kinds)
            parts.append(fragment(kind))
            if rng.random() < 0.4:
                parts.append(" ")
        out.append("".join(parts))
    return out


STRINGS = NASTY + random_strings(1500 - len(NASTY))

# ---------------------------------------------------------------- references


def hf_from_gguf(path: Path) -> Tokenizer:
    reader = gguf.GGUFReader(str(path))
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert reader.fields["tokenizer.ggml.pre"].contents() == "smollm"
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in reader.fields["tokenizer.ggml.merges"].contents()]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    # llama.cpp token types: 3 = control, 4 = user-defined.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty in (3, 4)])
    return tok


def hf_from_json(path: Path) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    return tok


def run_memwall(strings: list[str], tmp_path: Path) -> list[list[int]]:
    if not BIN.exists():
        pytest.fail(f"memwall binary not found at {BIN}: build it or set MEMWALL_BIN")
    jsonl = tmp_path / "inputs.jsonl"
    jsonl.write_text("".join(json.dumps(s) + "\n" for s in strings), encoding="utf-8")
    proc = subprocess.run([str(BIN), "tokenize", "-m", str(MODEL), "--no-bos", "--jsonl", str(jsonl)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"memwall tokenize failed: {proc.stderr}"
    lines = proc.stdout.split("\n")
    assert lines[-1] == "", "output must end with a newline"
    lines = lines[:-1]
    assert len(lines) == len(strings), f"{len(lines)} output lines for {len(strings)} inputs"
    return [[int(x) for x in line.split()] for line in lines]


@pytest.fixture(scope="module")
def gguf_reference() -> Tokenizer:
    return hf_from_gguf(MODEL)


@pytest.fixture(scope="module")
def json_reference() -> Tokenizer:
    return hf_from_json(SMOLLM_JSON)


@pytest.fixture(scope="module")
def memwall_ids(tmp_path_factory) -> list[list[int]]:
    return run_memwall(STRINGS, tmp_path_factory.mktemp("tokenize"))


def first_mismatch(text: str, got: list[int], want: list[int], ref: Tokenizer) -> str:
    k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    piece = lambda ids: [ref.id_to_token(i) for i in ids]  # noqa: E731
    return (f"text {text!r}\n  first difference at token {k}"
            f" (memwall {len(got)} tokens, reference {len(want)})\n"
            f"  memwall   ...{got[max(0, k - 2):k + 3]} {piece(got[max(0, k - 2):k + 3])}\n"
            f"  reference ...{want[max(0, k - 2):k + 3]} {piece(want[max(0, k - 2):k + 3])}")


# ---------------------------------------------------------------- tests


def test_string_set_is_large_and_varied():
    assert len(STRINGS) >= 1000
    assert len(set(STRINGS)) > 1400


@pytest.mark.parametrize("i", range(len(STRINGS)))
def test_matches_hf_built_from_gguf(i, memwall_ids, gguf_reference):
    want = gguf_reference.encode(STRINGS[i], add_special_tokens=False).ids
    got = memwall_ids[i]
    assert got == want, first_mismatch(STRINGS[i], got, want, gguf_reference)


@pytest.mark.parametrize("i", range(len(STRINGS)))
def test_matches_smollm_tokenizer_json(i, memwall_ids, json_reference):
    want = json_reference.encode(STRINGS[i], add_special_tokens=False).ids
    got = memwall_ids[i]
    assert got == want, first_mismatch(STRINGS[i], got, want, json_reference)


def test_smollm_json_has_the_gguf_vocabulary_and_merges():
    reader = gguf.GGUFReader(str(MODEL))
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    model = json.loads(SMOLLM_JSON.read_text(encoding="utf-8"))["model"]
    assert model["type"] == "BPE"
    assert model["vocab"] == {t: i for i, t in enumerate(tokens)}
    json_merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    assert json_merges == merges


def test_pad_token_is_the_only_added_token_difference(json_reference, tmp_path):
    # The shared tokenizer.json was saved by a fine-tuning project that added
    # [PAD] = 49152, which SmolLM2's GGUF does not have: the text "[PAD]" is one
    # token there and ordinary text for memwall.
    assert json_reference.encode("[PAD]", add_special_tokens=False).ids == [49152]
    (ids,) = run_memwall(["[PAD]"], tmp_path)
    assert 49152 not in ids and len(ids) > 1


def test_default_bos_rule_and_special_parsing(tmp_path):
    # SmolLM2 sets add_bos_token = false, so the default adds nothing;
    # special tokens in the text are parsed by default.
    proc = subprocess.run([str(BIN), "tokenize", "-m", str(MODEL), "<|im_start|>user\nhi<|im_end|>"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1 4093 198 6004 2\n"


def test_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('"ok"\n{"not": "a string"}\n', encoding="utf-8")
    proc = subprocess.run([str(BIN), "tokenize", "-m", str(MODEL), "--jsonl", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "line 2" in proc.stderr


def test_whole_wikitext_file_matches(gguf_reference):
    # One 1.3 MB input: exercises the long-input path (per-call word cache)
    # on real text with CRLF line ends.
    path = SHARED / "text" / "wikitext-2-raw" / "wiki.test.raw"
    proc = subprocess.run([str(BIN), "tokenize", "-m", str(MODEL), "--no-bos", "--file", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = [int(x) for x in proc.stdout.split()]
    want = gguf_reference.encode(path.read_bytes().decode("utf-8"), add_special_tokens=False).ids
    assert got == want, first_mismatch("<wiki.test.raw>", got, want, gguf_reference)
