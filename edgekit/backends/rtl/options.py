"""An RTL target's ``[backend_options]`` and what they decide before any build.

:class:`RtlOptions` is the table as read from the profile; :func:`size_problems`
refuses a model with more multiplications than the target builds (the planner
asks before any work), and :func:`latency_cutoff` turns the profile's clock and
``adder_levels_per_ns`` into the adder levels da4ml puts in one pipeline stage.
This module imports nothing foreign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from edgekit.backends.rtl.firmware import Interface
from edgekit.core.schema import build
from edgekit.core.targets import TargetProfile

__all__ = ["MAX_MULTIPLIES", "RtlOptions", "latency_cutoff", "size_problems", "target_options"]

MAX_MULTIPLIES = 20_000


@dataclass(frozen=True)
class RtlOptions:
    """``[backend_options]`` of an RTL target."""

    # How many adder levels fit in one nanosecond of the clock period: the pipeline puts a register stage
    # after every clock_period_ns * adder_levels_per_ns levels. 1.0 is the convention of da4ml's own
    # examples (5 levels at 5 ns); there is no open timing model for UltraScale+ to check it against.
    adder_levels_per_ns: float = field(default=1.0, metadata={"min": 0.05, "max": 100.0})
    emulation: Literal["verilator", "interpreter"] = "verilator"  # what validation runs as the target
    synthesis: bool = True  # yosys synth_xilinx resource counts
    emulation_workers: int = field(default=0, metadata={"min": 0})  # 0: one per core
    build_timeout_s: float = field(default=1800.0, metadata={"min": 1.0})
    synthesis_timeout_s: float = field(default=1800.0, metadata={"min": 1.0})
    # The design unrolls every multiplication by a non-zero weight into adders of its own; a model with more
    # (planned) is refused before any work. Measured on a 2-core x86_64 machine (W6A8, dense, other work
    # beside it): Verilator built 3,200 in 89 s, 7,584 in 205 s and 25,408 in 404 s; yosys synth_xilinx took
    # 167 s for 3,200; a 44,624 ResNet-8 did not build within 1,800 s. 20,000 keeps both within their limits.
    max_multiplies: int = field(default=MAX_MULTIPLIES, metadata={"min": 1})
    # Place, route and time the synthesized netlist with nextpnr-ecp5 (Lattice ECP5 parts only).
    place_and_route: bool = False
    route_timeout_s: float = field(default=1800.0, metadata={"min": 1.0})
    router: Literal["router1", "router2"] = "router2"  # router1 took over 1,600 s on a model router2 routes
    placement_seed: int = field(default=1, metadata={"min": 1})
    # The top that synthesis, place and route, the project script and the constraints take: the core
    # (clk only), its valid-handshake wrapper with a reset, or its AXI4-Stream wrapper (edgekit.backends.rtl.firmware).
    interface: Interface = "core"


def target_options(target: TargetProfile) -> RtlOptions:
    """``target``'s ``[backend_options]`` as :class:`RtlOptions` (a ConfigError names a bad entry)."""
    return build(RtlOptions, target.backend_options, target.source, "backend_options")


def size_problems(target: TargetProfile, multiplies: list[tuple[str, int]]) -> list[str]:
    """Why ``target`` refuses a model of these (layer, multiplications by non-zero weights) before building."""
    options = target_options(target)
    total = sum(count for _, count in multiplies)
    if total <= options.max_multiplies:
        return []
    layer, largest = max(multiplies, key=lambda item: item[1])
    return [
        f"{target.name}: the RTL path builds every multiplication by a non-zero weight as logic of its own, and "
        f"this model has about {total:,} of them (the most in layer {layer}: {largest:,}); the target builds up "
        f"to {options.max_multiplies:,} (backend_options.max_multiplies)"
    ]


def latency_cutoff(target: TargetProfile, options: RtlOptions) -> int:
    """Adder levels in one pipeline stage: the profile's clock period times ``adder_levels_per_ns``, at least 1."""
    assert target.fpga is not None
    return max(1, math.floor(target.fpga.clock_period_ns * options.adder_levels_per_ns + 1e-9))
