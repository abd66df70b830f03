"""Run the Verilator-built simulation of the generated RTL in worker processes.

The library is freshly compiled native code: it is loaded only in spawned worker
processes, so a crash in it becomes a ToolchainError instead of killing the
caller. Each worker clocks its own copy of the pipelined design, one sample per
cycle, and reads each output ``latency`` cycles later (da4ml's C++ binder).
This module imports nothing heavier than numpy.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from edgekit.errors import ToolchainError

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


class VerilatorPool:
    """Worker processes with the simulation library loaded; a batch is split between them."""

    def __init__(self, library: Path, n_in: int, n_out: int, workers: int | None = None) -> None:
        self.workers = workers or max(1, min(os.cpu_count() or 1, 8))
        self._library = library
        self._n_in = n_in
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(str(library), n_in, n_out),
        )

    def run(self, words: np.ndarray) -> np.ndarray:
        """int32 output words for int32 input words of shape (N, n_in)."""
        parts = 1 if len(words) < 256 else self.workers
        chunks = [c for c in np.array_split(words.reshape(len(words), self._n_in), parts) if len(c)]
        try:
            results = list(self._pool.map(_simulate, chunks))
        except BrokenProcessPool as err:
            raise ToolchainError(
                f"the Verilator simulation library {self._library} crashed its worker process",
                hint="re-run edgekit compile --force; if it persists, the log of the build is in the target folder",
            ) from err
        return np.concatenate(results)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
