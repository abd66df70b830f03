"""Parse the C-synthesis report of Vitis HLS / Vivado HLS (``<top>_csynth.xml``) into plain numbers.

The XML is the tools' machine-readable report: ``UserAssignments`` (part, target
clock), ``PerformanceEstimates`` (estimated clock, latency in cycles, interval)
and ``AreaEstimates`` (used and available resources). Vivado HLS names DSPs
``DSP48E``, Vitis HLS ``DSP``; both come out as ``dsp``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import InputError

__all__ = ["CsynthReport", "parse_csynth_xml"]

_RESOURCES = {"LUT": "lut", "FF": "ff", "DSP": "dsp", "DSP48E": "dsp", "BRAM_18K": "bram_18k", "URAM": "uram"}


@dataclass(frozen=True)
class CsynthReport:
    tool_version: str
    part: str
    target_clock_ns: float
    estimated_clock_ns: float
    latency_best_cycles: int
    latency_worst_cycles: int
    interval_min_cycles: int
    interval_max_cycles: int
    resources: dict[str, int]
    available: dict[str, int]

    @property
    def latency_worst_ns(self) -> float:
        return self.latency_worst_cycles * self.target_clock_ns

    def utilization(self) -> dict[str, float]:
        return {k: v / self.available[k] for k, v in self.resources.items() if self.available.get(k)}


def _text(root: ET.Element, path: str, report: Path) -> str:
    node = root.find(path)
    if node is None or node.text is None:
        raise InputError(f"{report} has no {path}: not a complete C-synthesis report")
    return node.text.strip()


def _number(text: str, report: Path, what: str) -> float:
    try:
        return float(text.split()[0])
    except (ValueError, IndexError) as err:
        raise InputError(f"{report}: {what} is {text!r}, not a number") from err


def _resources(node: ET.Element | None) -> dict[str, int]:
    if node is None:
        return {}
    out = {}
    for child in node:
        key = _RESOURCES.get(child.tag)
        if key and child.text and child.text.strip().isdigit():
            out[key] = int(child.text.strip())
    return out


def parse_csynth_xml(report: Path) -> CsynthReport:
    if not report.is_file():
        raise InputError(f"C-synthesis report {report} does not exist", hint="did C synthesis run to the end?")
    try:
        root = ET.parse(report).getroot()
    except ET.ParseError as err:
        raise InputError(f"{report} is not valid XML: {err}") from err
    latency = "PerformanceEstimates/SummaryOfOverallLatency"
    cycles = {
        tag: int(_number(_text(root, f"{latency}/{tag}", report), report, tag))
        for tag in ("Best-caseLatency", "Worst-caseLatency", "Interval-min", "Interval-max")
    }
    version = root.find("ReportVersion/Version")
    return CsynthReport(
        tool_version=(version.text or "").strip() if version is not None else "",
        part=_text(root, "UserAssignments/Part", report),
        target_clock_ns=_number(_text(root, "UserAssignments/TargetClockPeriod", report), report, "target clock"),
        estimated_clock_ns=_number(
            _text(root, "PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod", report),
            report,
            "estimated clock",
        ),
        latency_best_cycles=cycles["Best-caseLatency"],
        latency_worst_cycles=cycles["Worst-caseLatency"],
        interval_min_cycles=cycles["Interval-min"],
        interval_max_cycles=cycles["Interval-max"],
        resources=_resources(root.find("AreaEstimates/Resources")),
        available=_resources(root.find("AreaEstimates/AvailableResources")),
    )
