"""Run the Verilator-built simulation of the generated RTL in worker processes.

The library is freshly compiled native code: it is loaded only in spawned worker
processes (:class:`~edgekit.backends.native_pool.NativePool`), so a crash in it
becomes a ToolchainError instead of killing the caller. Each worker clocks its
own copy of the pipelined design, one sample per cycle, and reads each output
``latency`` cycles later (da4ml's C++ binder).
This module imports nothing heavier than numpy.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from edgekit.backends.native_pool import NativePool

__all__ = ["VerilatorPool"]

_worker: dict[str, object] = {}


def _init(library: str, n_in: int, n_out: int) -> None:
    lib = ctypes.CDLL(library)
    fn = lib.inference
    pointer = ctypes.POINTER(ctypes.c_int32)
    fn.argtypes = [pointer, pointer, ctypes.c_size_t, ctypes.c_size_t]
    fn.restype = None
    _worker.update(fn=fn, n_in=n_in, n_out=n_out)


def _simulate(words: np.ndarray) -> np.ndarray:
    fn, n_out = _worker["fn"], int(_worker["n_out"])  # type: ignore[call-overload]
    words = np.ascontiguousarray(words, dtype=np.int32)
    out = np.zeros((len(words), n_out), dtype=np.int32)
    pointer = ctypes.POINTER(ctypes.c_int32)
    fn(words.ctypes.data_as(pointer), out.ctypes.data_as(pointer), len(words), 1)  # type: ignore[operator]
    return out


class VerilatorPool(NativePool):
    """Worker processes with the simulation library loaded; batches of 256 or more are split between them."""

    def __init__(self, library: Path, n_in: int, n_out: int, workers: int | None = None) -> None:
        super().__init__(
            library, _init, (str(library), n_in, n_out), _simulate, n_in,
            what="the Verilator simulation library",
            hint="re-run edgekit compile --force; the build's logs are in the target folder",
            workers=workers, split_from=256,
        )  # fmt: skip
