"""The CLI contract other tools rely on: stdout carries only results, errors
are one `error: ...` line with a non-zero exit, every command has --help."""
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("MEMWALL_BIN", os.path.join(ROOT, "build", "memwall"))
MODEL = os.environ.get("MEMWALL_MODEL", os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
COMMANDS = ["run", "chat", "tokenize", "info", "convert", "synth", "logits", "bench", "profile"]


def memwall(*args, input=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, input=input, timeout=300)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.gguf"
    r = memwall("synth", "-o", str(path), "--type", "q8_0", "--n-embd", "64", "--n-ff", "128",
                "--n-layer", "2", "--n-head", "4", "--n-head-kv", "2", "--vocab", "400", "--ctx", "64")
    assert r.returncode == 0, r.stderr
    return str(path)


def assert_one_line_error(r):
    assert r.returncode != 0
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    r = memwall(command, "--help")
    assert r.returncode == 0
    assert "Usage" in r.stdout or "usage" in r.stdout.lower()


def test_top_level_help_lists_every_command():
    r = memwall("--help")
    assert r.returncode == 0
    for command in COMMANDS:
        assert command in r.stdout


@pytest.mark.parametrize("args", [
    ["run", "-m", "/nonexistent.gguf", "-p", "hi"],
    ["info", "/nonexistent.gguf"],
    ["run", "--no-such-flag"],
    ["frobnicate"],
    ["run", "-p", "hi", "--temp", "-1"],
    ["run", "-p", "hi", "--top-p", "0"],
    ["run", "-p", "hi", "-n", "-3"],
    ["run", "--tokens", "1 two 3"],
    ["run", "--tokens", "999999999"],
    ["synth", "-o", "/tmp/x.gguf", "--type", "q9_9"],
    ["synth", "-o", "/tmp/x.gguf", "--n-head", "5"],
    ["bench", "-m", "TINY", "-r", "0"],
    ["bench", "-m", "TINY", "--precision", "x"],
    ["bench", "-m", "/nonexistent.gguf"],
    ["run", "-p", "hi", "--precision", "x"],
])
def test_bad_input_is_one_error_line(args, tiny_model):
    args = [tiny_model if a == "TINY" else a for a in args]
    if args[0] == "run" and "-m" not in args:
        args = args[:1] + ["-m", tiny_model] + args[1:]
    assert_one_line_error(memwall(*args))


def test_prompt_longer_than_context_is_refused(tiny_model):
    assert_one_line_error(memwall("run", "-m", tiny_model, "-p", "word " * 200, "-c", "16", "-n", "4"))


def test_non_gguf_file_is_refused(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    assert_one_line_error(memwall("run", "-m", str(bad), "-p", "hi"))
    assert_one_line_error(memwall("info", str(bad)))


def test_run_prints_only_the_continuation(tiny_model):
    r = memwall("run", "-m", tiny_model, "-p", "hello world", "-n", "8", "--temp", "0", "--ignore-eos",
                "--output-ids")
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    assert len(ids) == 8 and all(i.isdigit() for i in ids)
    assert "decode" in r.stderr and "peak RSS" in r.stderr


def test_same_seed_same_text_and_greedy_is_deterministic(tiny_model):
    args = ["run", "-m", tiny_model, "-p", "the", "-n", "12", "--ignore-eos", "--output-ids"]
    a = memwall(*args, "--temp", "1", "--seed", "5").stdout
    b = memwall(*args, "--temp", "1", "--seed", "5").stdout
    assert a == b
    g1 = memwall(*args, "--temp", "0").stdout
    g2 = memwall(*args, "--temp", "0", "--seed", "99").stdout
    assert g1 == g2


def test_prompt_file_equals_prompt_flag(tiny_model, tmp_path):
    f = tmp_path / "prompt.txt"
    f.write_text("the quick brown fox")
    a = memwall("run", "-m", tiny_model, "-f", str(f), "-n", "6", "--temp", "0", "--output-ids")
    b = memwall("run", "-m", tiny_model, "-p", "the quick brown fox", "-n", "6", "--temp", "0", "--output-ids")
    assert a.returncode == 0 and a.stdout == b.stdout


def test_info_json_describes_the_default_model():
    if not os.path.exists(MODEL):
        pytest.skip("default model not fetched")
    r = memwall("info", MODEL, "--json", "--tensors")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["architecture"] == "llama"
    assert info["parameters"] == 134515008
    assert info["formats"]["q4_1"]["tensors"] == 210
    assert len(info["tensors"]) == 272
    assert info["metadata"]["llama.block_count"] == 30


def test_default_model_is_used_without_m():
    if not os.path.exists(MODEL):
        pytest.skip("default model not fetched")
    r = memwall("tokenize", "Hello world")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "19556 905"


def test_chat_answers_with_history(tiny_model):
    r = memwall("chat", "-m", tiny_model, "-n", "4", "--temp", "0", input="hi\nagain\n")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("decode:") == 2  # one stats line per turn
    turns = [l for l in r.stderr.splitlines() if "decode:" in l]
    assert "cached" in turns[-1]  # the second turn reused the first's prefix
    assert r.stderr.splitlines()[-1].startswith("memory: budget")  # the ledger at exit
