"""Worker processes that each load one native library and share the batches run through it.

Freshly built native code (hls4ml's C++ emulation, a Verilator model) can kill
its process without a Python exception. It is therefore loaded only in spawned
worker processes: a crash breaks the pool and becomes a ToolchainError naming the
library, and the caller's process survives. A batch large enough is split
between the workers, one core each. This module imports nothing heavier than numpy.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import ToolchainError
from edgekit.core.lifetime import worker_pool
from edgekit.core.tools import available_cpus

__all__ = ["NativePool", "run_isolated", "without_main_script"]


@contextlib.contextmanager
def without_main_script() -> Iterator[None]:
    """Processes spawned inside this block do not run the caller's main script again.

    A spawned child normally re-executes the parent's ``__main__`` file before it unpickles its work. Our
    workers need nothing from it (their functions live in edgekit's modules), and it can be costly: in a Ray
    worker, which runs every sweep point, the main script is Ray's own worker module, and re-running it took
    0.3 s per child on an idle 2-core machine (two children per hls4ml point). Python leaves the main script
    alone when ``__main__`` names no file, so the block stands a bare module in its place; spawning is
    synchronous in the calling thread (ProcessPoolExecutor starts its workers in ``submit``).
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


class NativePool:
    """``initializer(*initargs)`` loads the library in each worker; ``work(chunk)`` runs rows of a batch there."""

    def __init__(
        self,
        library: Path,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...],
        work: Callable[[np.ndarray], np.ndarray],
        n_in: int,
        *,
        what: str,
        hint: str,
        workers: int | None = None,
        split_from: int = 32,
    ) -> None:
        self.workers = workers or max(1, min(available_cpus(), 8))
        self._library = library
        self._work = work
        self._n_in = n_in
        self._what = what
        self._hint = hint
        self._split_from = split_from
        self._pool = worker_pool(self.workers, initializer, initargs)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The work function's rows for ``x`` of shape (N, n_in), in order."""
        parts = 1 if len(x) < self._split_from else self.workers
        chunks = [c for c in np.array_split(x.reshape(len(x), self._n_in), parts) if len(c)]
        try:
            with without_main_script():  # workers start on the first submit
                pending = self._pool.map(self._work, chunks)
            results = list(pending)
        except BrokenProcessPool as err:
            raise ToolchainError(f"{self._what} {self._library} crashed its worker process", hint=self._hint) from err
        return np.concatenate(results)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def run_isolated(fn: Callable[..., Any], *args: Any, timeout_s: float, what: str, log_path: Path) -> Any:
    """``fn(*args)`` in a fresh spawned process: a crash or a timeout there is a ToolchainError naming ``what``.

    Exceptions ``fn`` raises come back as they are (EdgekitErrors keep their message, not their hint).
    """
    with worker_pool(1) as pool:
        with without_main_script():
            future = pool.submit(fn, *args)
        try:
            return future.result(timeout=timeout_s)
        except BrokenProcessPool as err:
            raise ToolchainError(
                f"{what} crashed its worker process", log_path=log_path,
                hint="the log ends where it died; the rest of the build is unaffected",
            ) from err  # fmt: skip
        except FutureTimeout as err:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            raise ToolchainError(f"{what} did not finish within {timeout_s:g} s", log_path=log_path) from err
