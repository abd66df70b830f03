"""The runner interface every backend's artifact (and the torch reference) is run through."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Runner"]


@runtime_checkable
class Runner(Protocol):
    """Runs a compiled artifact on a batch. ``clock`` names how its latency is timed."""

    clock: str
    description: str

    def run(self, x: np.ndarray) -> np.ndarray: ...

    def synchronize(self) -> None: ...

    def close(self) -> None: ...
