"""The tool runs of an RTL build, once da4ml has written the Verilog: the Verilator model beside synthesis.

Two threads, each driving one process on one core: Verilator builds the
simulation library (:mod:`edgekit.backends.rtl.verilator`) while yosys counts the
chosen top's cells (:mod:`edgekit.backends.rtl.yosys`) and, for an ECP5 part with
``place_and_route``, nextpnr places, routes and times it
(:mod:`edgekit.backends.rtl.nextpnr`). Each run is timed on the progress stream.
The tool modules are imported inside the functions, as they are needed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from edgekit.backends.rtl.firmware import TopNames, design_sources
from edgekit.backends.rtl.options import RtlOptions
from edgekit.core.progress import say
from edgekit.core.targets import TargetProfile
from edgekit.core.tools import available_cpus

__all__ = ["run_tools"]


def _timed(label: str, work: Any, *args: Any) -> Any:
    started = time.perf_counter()
    result = work(*args)
    say(f"  {label} done in {time.perf_counter() - started:.0f} s")
    return result


def run_tools(
    project: Path, names: TopNames, target: TargetProfile, options: RtlOptions, out_dir: Path
) -> tuple[Any, ...]:
    """The Verilator library beside synthesis (then place and route): each is one process on one core.

    Returns the library's path, yosys' counts and nextpnr's route, each None when the options skip it."""
    from edgekit.backends.rtl.verilator import build_library

    assert target.fpga is not None
    fpga = target.fpga
    with ThreadPoolExecutor(max_workers=2) as pool:
        library = implementation = None
        if options.emulation == "verilator":
            say(f"  {target.name}: Verilator model of the RTL (log: targets/{target.name}/verilator.log)")
            jobs = available_cpus()
            library = pool.submit(
                _timed, "Verilator model", build_library, project, names.core, jobs, out_dir,
                options.build_timeout_s,
            )  # fmt: skip
        if options.synthesis or options.place_and_route:
            top = names.of(options.interface)
            sources = design_sources(project, names, options.interface)
            implementation = pool.submit(_implement, sources, top, fpga, target.name, options, out_dir)
        built = library.result() if library is not None else None
        counts, route = implementation.result() if implementation is not None else (None, None)
    return built, counts, route


def _implement(
    sources: list[Path], top: str, fpga: Any, name: str, options: RtlOptions, out_dir: Path
) -> tuple[Any, Any]:
    """yosys' mapped cells, then (place_and_route) nextpnr's placed, routed and timed design."""
    from edgekit.backends.rtl.yosys import family_for_part, run_yosys

    work = out_dir / "yosys"
    work.mkdir()
    family = family_for_part(fpga.part)
    say(f"  {name}: yosys {'synth_ecp5' if family == 'ecp5' else 'synth_xilinx'} (log: targets/{name}/yosys/yosys.log)")
    counts = _timed("yosys", run_yosys, sources, top, fpga.part, work, options.synthesis_timeout_s)
    if not options.place_and_route:
        return counts, None
    from edgekit.backends.rtl.nextpnr import run_nextpnr

    say(f"  {name}: nextpnr-ecp5 place and route, {options.router} (log: targets/{name}/yosys/nextpnr.log)")
    route = _timed("place and route", run_nextpnr, work, fpga.part, 1000.0 / fpga.clock_period_ns,
                   options.route_timeout_s, options.router, options.placement_seed)  # fmt: skip
    met = "met" if route.timing_met else "NOT met"
    say(f"  {name}: Fmax {route.fmax_mhz:.1f} MHz, timing {met} at {route.constraint_mhz:g} MHz")
    return counts, route
