"""Fixtures for the reference tests: the memwall binary, the default model, its reference."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Make llama_ref / gguf_tokenizer importable whatever pytest's import mode is.
sys.path.insert(0, str(HERE))

import llama_ref  # noqa: E402

DEFAULT_MODEL = REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def memwall_bin() -> Path:
    path = Path(os.environ.get("MEMWALL_BIN") or REPO / "build" / "memwall")
    if not (path.is_file() and os.access(path, os.X_OK)):
        # A missing binary is a broken build, not a reason to skip.
        pytest.fail(f"memwall binary not found at {path}: build it first or set MEMWALL_BIN")
    return path


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = Path(os.environ.get("MEMWALL_MODEL") or DEFAULT_MODEL)
    if not path.is_file():
        pytest.skip(f"default model not found at {path}: run scripts/setup to fetch it, or set MEMWALL_MODEL")
    return path


@pytest.fixture(scope="session")
def ref_model(model_path: Path) -> llama_ref.Model:
    # Loading dequantizes every tensor (~10 s for the 135M model); do it once.
    return llama_ref.Model(model_path)
