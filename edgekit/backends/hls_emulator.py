"""Run hls4ml's compiled C++ model (its bit-accurate emulation) in worker processes.

hls4ml's own ``predict`` is one C call per sample on one core, and a crash in the
native library (a missing weights file makes it call ``exit(1)``) would take the
caller down. Here the library is loaded only in worker processes, which split a
batch between them; a dead worker becomes a ToolchainError. This module imports
nothing heavier than numpy, so the workers start quickly.
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

__all__ = ["EmulatorPool"]

_worker: dict[str, object] = {}


def _init(library: str, firmware_dir: str, top: str, n_in: int, n_out: int) -> None:
    os.chdir(firmware_dir)  # the library reads its weights from ./weights on the first call
    lib = ctypes.cdll.LoadLibrary(library)
    fn = getattr(lib, f"{top}_double")
    fn.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double)]
    fn.restype = None
    _worker.update(fn=fn, n_in=n_in, n_out=n_out)


def _emulate(x: np.ndarray) -> np.ndarray:
    fn, n_out = _worker["fn"], int(_worker["n_out"])  # type: ignore[call-overload]
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.zeros((len(x), n_out), dtype=np.float64)
    pointer = ctypes.POINTER(ctypes.c_double)
    for i in range(len(x)):
        fn(x[i].ctypes.data_as(pointer), out[i].ctypes.data_as(pointer))  # type: ignore[operator]
    return out


class EmulatorPool:
    """A pool of worker processes, each with the emulation library loaded, splitting batches between them."""

    def __init__(self, library: Path, top: str, n_in: int, n_out: int, workers: int | None = None) -> None:
        self.workers = workers or max(1, min(os.cpu_count() or 1, 8))
        self._library = library
        self._n_in = n_in
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(str(library), str(library.parent), top, n_in, n_out),
        )

    def run(self, x: np.ndarray) -> np.ndarray:
        """Outputs (float64) for ``x`` of shape (N, n_in); batches of 32 or more are split across the workers."""
        parts = 1 if len(x) < 32 else self.workers
        chunks = [c for c in np.array_split(x.reshape(len(x), self._n_in), parts) if len(c)]
        try:
            results = list(self._pool.map(_emulate, chunks))
        except BrokenProcessPool as err:
            raise ToolchainError(
                f"the hls4ml emulation library {self._library} crashed its worker process",
                hint="a missing firmware/weights folder or a failed build; re-run edgekit compile --force",
            ) from err
        return np.concatenate(results)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
