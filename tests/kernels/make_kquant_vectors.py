#!/usr/bin/env python3
"""Golden vectors for the k-quant and ternary codecs (tests/data/kquant).

Quantizes a few rows with llama.cpp itself (libggml-base from the
llama-cpp-python wheel, through ctypes: ggml_quantize_chunk, with and without
an importance matrix) and dequantizes the reference bytes with the PyPI
`gguf` package, an independent implementation. kquant_codecs_test.cpp checks
memwall's codecs against these files byte for byte and float for float.

Run from the repo root: .venv/bin/python tests/kernels/make_kquant_vectors.py
"""
import ctypes
import importlib.metadata
import pathlib
import sys

import numpy as np
import gguf
from gguf.quants import dequantize

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "kquant"
N = 512  # weights per row: two super-blocks

# GGUF type ids (ggml_type) and their memwall names.
TYPES = {"q4_k": 12, "q5_k": 13, "q6_k": 14, "tq1_0": 34, "tq2_0": 35}


def load_ggml():
    import llama_cpp

    lib_dir = pathlib.Path(llama_cpp.__file__).parent / "lib"
    lib = ctypes.CDLL(str(lib_dir / "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
        ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    return lib


def make_rows() -> np.ndarray:
    """8 rows of N floats: 4 normal rows of different spread, outliers, zeros,
    tiny values (scales near f16's smallest), a constant."""
    rng = np.random.default_rng(20240601)
    rows = [rng.normal(0.0, s, N) for s in (1.0, 0.02, 3.0)]
    rows.append(rng.uniform(-1.0, 1.0, N) + 0.5)  # skewed: k-quant minimums matter
    outliers = rng.normal(0.0, 0.5, N)
    outliers[rng.choice(N, 6, replace=False)] = rng.choice([-40.0, 25.0, 60.0], 6)
    rows.append(outliers)
    rows.append(np.zeros(N))
    rows.append(rng.normal(0.0, 1e-6, N))
    rows.append(np.full(N, 0.37))
    return np.ascontiguousarray(np.stack(rows).astype(np.float32))


def quantize(lib, type_id: int, x: np.ndarray, imatrix) -> bytes:
    rows, n = x.shape
    size = lib.ggml_row_size(type_id, n) * rows
    dst = (ctypes.c_uint8 * size)()
    lib.ggml_quantize_init(type_id)
    im = imatrix.ctypes.data if imatrix is not None else None
    got = lib.ggml_quantize_chunk(type_id, x.ctypes.data, dst, 0, rows, n, im)
    assert got == size, (got, size)
    return bytes(dst)


def main() -> int:
    lib = load_ggml()
    OUT.mkdir(parents=True, exist_ok=True)
    x = make_rows()
    rng = np.random.default_rng(7)
    importance = np.ascontiguousarray(np.exp(rng.normal(0.0, 1.0, N)).astype(np.float32))
    x.tofile(OUT / "input.f32")
    importance.tofile(OUT / "importance.f32")
    for name, type_id in TYPES.items():
        ref = quantize(lib, type_id, x, None)
        weighted = quantize(lib, type_id, x, importance)
        qtype = gguf.GGMLQuantizationType(type_id)
        deq = dequantize(np.frombuffer(ref, dtype=np.uint8).reshape(x.shape[0], -1), qtype)
        (OUT / f"{name}.ref.bin").write_bytes(ref)
        (OUT / f"{name}.imatrix.bin").write_bytes(weighted)
        np.ascontiguousarray(deq.astype(np.float32)).tofile(OUT / f"{name}.deq.f32")
        print(f"{name}: {len(ref)} bytes per set, importance changes "
              f"{sum(a != b for a, b in zip(ref, weighted))} bytes")
    versions = {p: importlib.metadata.version(p) for p in ("llama_cpp_python", "gguf", "numpy")}
    (OUT / "README.md").write_text(f"""# k-quant golden vectors

Made by `tests/kernels/make_kquant_vectors.py` (run it from the repo root with
the project's .venv) with llama-cpp-python {versions['llama_cpp_python']} (its bundled
libggml-base.so), gguf {versions['gguf']} and numpy {versions['numpy']}.
Checked by tests/kernels/kquant_codecs_test.cpp.

All files are little-endian, rows of {N} weights (two 256-weight super-blocks):

| file | contents |
| --- | --- |
| input.f32 | {x.shape[0]} rows of f32: normal (sigma 1, 0.02, 3), skewed uniform, outliers, zeros, tiny (sigma 1e-6), constant 0.37 |
| importance.f32 | {N} f32 importance values (one per column, as an imatrix), exp(normal) |
| TYPE.ref.bin | llama.cpp `ggml_quantize_chunk(type, input, ..., imatrix=NULL)` (= quantize_row_TYPE_ref) |
| TYPE.imatrix.bin | the same with the importance vector as imatrix (ternary types ignore it) |
| TYPE.deq.f32 | `gguf.quants.dequantize` of TYPE.ref.bin |

TYPE is one of {', '.join(TYPES)}.
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
