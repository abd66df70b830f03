"""The runner interface every backend's artifact (and the torch reference) is run through."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Runner", "RunnerBase"]


@runtime_checkable
class Runner(Protocol):
    """Runs a compiled artifact on a batch. ``clock`` names how its latency is timed.

    ``device_timer``: the runner times a call itself with the device's own clock (``timed_run``, CUDA
    events); otherwise latency is the wall clock around ``run`` and ``synchronize``.
    """

    clock: str
    description: str
    device_timer: bool

    def run(self, x: np.ndarray) -> np.ndarray: ...

    def synchronize(self) -> None: ...

    def close(self) -> None: ...

    def timed_run(self, x: np.ndarray) -> float:
        """One call on ``x``, timed by the device's clock, in microseconds (``device_timer`` runners)."""
        ...


class RunnerBase:
    """Defaults of :class:`Runner`: no device timer, nothing to wait for, nothing to release."""

    clock = "wall clock (time.perf_counter_ns), host CPU"
    description = ""
    device_timer = False

    def synchronize(self) -> None:
        """Each run returns when its outputs are ready."""

    def close(self) -> None:
        """Nothing held."""

    def timed_run(self, x: np.ndarray) -> float:
        raise NotImplementedError(f"{type(self).__name__} has no device timer (device_timer is False)")
