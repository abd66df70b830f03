"""One latency protocol for every runner: warm-up, timed iterations, percentiles.

Each measurement records its clock and sample count, so a number in a report
always says where it came from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgekit.core.config import LatencySettings
from edgekit.core.runner import Runner

__all__ = ["LatencyStat", "call_time_us", "measure_latency"]


@dataclass(frozen=True)
class LatencyStat:
    batch_size: int
    p50_us: float
    p99_us: float
    mean_us: float
    throughput_per_s: float  # samples (not batches) per second, from the mean
    iterations: int
    clock: str


def measure_latency(runner: Runner, sample: np.ndarray, batch_size: int, cfg: LatencySettings) -> LatencyStat:
    """Time ``runner.run`` on a batch made by repeating ``sample`` rows.

    Runs ``warmup_iters`` untimed calls, then timed calls until both ``min_iters``
    and ``min_time_s`` are reached, stopping at ``max_iters`` or ``max_time_s``.
    """
    reps = -(-batch_size // len(sample))
    batch = np.ascontiguousarray(np.concatenate([sample] * reps)[:batch_size])
    # A runner with a device timer (CUDA events) times its own calls; the others are timed by the wall clock
    # around a call and a device synchronization. Either way ``runner.clock`` names the clock.
    timed_run = runner.timed_run if runner.device_timer else None
    for _ in range(cfg.warmup_iters):
        runner.run(batch)
    runner.synchronize()
    times_us: list[float] = []
    start = time.perf_counter()
    while True:
        if timed_run is not None:
            times_us.append(float(timed_run(batch)))
        else:
            t0 = time.perf_counter_ns()
            runner.run(batch)
            runner.synchronize()
            times_us.append((time.perf_counter_ns() - t0) / 1e3)
        elapsed = time.perf_counter() - start
        enough = len(times_us) >= cfg.min_iters and elapsed >= cfg.min_time_s
        if enough or len(times_us) >= cfg.max_iters or elapsed >= cfg.max_time_s:
            break
    us = np.asarray(times_us, dtype=np.float64)
    mean = float(us.mean())
    return LatencyStat(
        batch_size=batch_size,
        p50_us=float(np.percentile(us, 50)),
        p99_us=float(np.percentile(us, 99)),
        mean_us=mean,
        throughput_per_s=batch_size / (mean / 1e6),
        iterations=len(times_us),
        clock=runner.clock,
    )


def call_time_us(call: Callable[[], object], cuda: bool) -> float:
    """One call's time in microseconds: CUDA events around it on the GPU (device time), else the wall clock."""
    if not cuda:
        start = time.perf_counter_ns()
        call()
        return (time.perf_counter_ns() - start) / 1e3
    import torch

    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
    begin.record()
    call()
    end.record()
    end.synchronize()
    return float(begin.elapsed_time(end)) * 1e3
