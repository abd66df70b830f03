"""The ``[backend_options]`` of an hls4ml target, and what a target refuses before anything builds.

A model whose io_parallel convolutions would give g++ more window copies than it compiles in time
(:func:`size_problems`, asked while planning), and the ``distributed_arithmetic`` strategy without da4ml
or with a reuse factor above 1 (:func:`check_distributed_arithmetic`, the backend's ``check_target``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from edgekit.core.errors import BackendUnavailable, ConfigError
from edgekit.core.schema import build
from edgekit.core.targets import TargetProfile

__all__ = ["BUILD_TIMEOUT_S", "MAX_WINDOW_COPIES", "Hls4mlOptions", "check_distributed_arithmetic", "size_problems"]

BUILD_TIMEOUT_S = 900.0
# io_parallel convolutions copy each output position's input window element by element, one C++ statement per
# (output position, kernel position, input channel) of every Conv (hls4ml's generated fill_buffer functions),
# and g++ compiles all of them. Measured on a 2-core x86_64 machine (g++ 12, -O3): the full-size DS-CNN's
# 164,864 copies compiled in 335 s (W8A8) and 376 s (W6A8); the full-size ResNet-8's 494,592 did not finish
# within 900 s. 250,000 keeps a build within BUILD_TIMEOUT_S; io_stream (line buffers) has no such statements.
MAX_WINDOW_COPIES = 250_000


@dataclass(frozen=True)
class Hls4mlOptions:
    """``[backend_options]`` of an hls4ml target."""

    emulation_workers: int = field(default=0, metadata={"min": 0})  # 0: one per core
    float_width_bits: int = field(default=18, metadata={"min": 4, "max": 64})  # float path: total bits per type
    build_timeout_s: float = field(default=BUILD_TIMEOUT_S, metadata={"min": 1.0})  # the emulation's g++ build
    max_window_copies: int = field(default=MAX_WINDOW_COPIES, metadata={"min": 1})  # io_parallel only, see above


def check_distributed_arithmetic(target: TargetProfile) -> None:
    """hls4ml 1.3's ``distributed_arithmetic`` strategy: da4ml writes each layer's constant multiplications."""
    assert target.fpga is not None
    if importlib.util.find_spec("da4ml") is None:
        raise BackendUnavailable(
            f"{target.source}: strategy 'distributed_arithmetic' needs da4ml (hls4ml calls it to write each layer)",
            hint="pip install 'edgekit[rtl]' (da4ml 0.6.0), or use strategy = \"latency\"",
        )
    if target.fpga.reuse_factor != 1:
        raise ConfigError(
            f"{target.source}: strategy 'distributed_arithmetic' builds every multiplication in logic, once: "
            f"reuse_factor must be 1, not {target.fpga.reuse_factor}",
            hint='set reuse_factor = 1, or strategy = "resource" to share multipliers',
        )


def size_problems(target: TargetProfile, copies: list[tuple[str, int]]) -> list[str]:
    """Why an io_parallel ``target`` refuses a model of these (convolution, window copies) before building."""
    assert target.fpga is not None
    options = build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
    total = sum(count for _, count in copies)
    if target.fpga.io_type != "io_parallel" or total <= options.max_window_copies:
        return []
    layer, largest = max(copies, key=lambda item: item[1])
    return [
        f"{target.name}: hls4ml's io_parallel convolutions copy every input window element by element, one C++ "
        f"statement per output position, kernel position and input channel, and this model's convolutions make "
        f"{total:,} of them (the most in layer {layer}: {largest:,}); g++ compiles every one, and the target "
        f"builds up to {options.max_window_copies:,} (backend_options.max_window_copies; the default, "
        f"{MAX_WINDOW_COPIES:,}, compiles within the default build limit of {BUILD_TIMEOUT_S:g} s on 2 cores)"
    ]
