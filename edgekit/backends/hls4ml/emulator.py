"""Run hls4ml's compiled C++ model (its bit-accurate emulation) in worker processes.

hls4ml's own ``predict`` is one C call per sample on one core, and a crash in the
native library (a missing weights file makes it call ``exit(1)``) would take the
caller down. Here the library is loaded only in worker processes
(:class:`~edgekit.backends.native_pool.NativePool`), which split a batch between
them; a dead worker becomes a ToolchainError.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from edgekit.backends.native_pool import NativePool

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


class EmulatorPool(NativePool):
    """Worker processes with the emulation library loaded; batches of 32 or more are split between them."""

    def __init__(self, library: Path, top: str, n_in: int, n_out: int, workers: int | None = None) -> None:
        library = library.resolve()  # absolute: each worker changes into firmware/ before loading it
        super().__init__(
            library, _init, (str(library), str(library.parent), top, n_in, n_out), _emulate, n_in,
            what="the hls4ml emulation library",
            hint="a missing firmware/weights folder or a failed build; re-run edgekit compile --force",
            workers=workers,
        )  # fmt: skip
