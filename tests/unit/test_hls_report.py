"""The C-synthesis report parser, on reports in the vendor tools' XML form (fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.backends.hls4ml.reports import parse_csynth_xml
from edgekit.core.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_vitis_report() -> None:
    report = parse_csynth_xml(FIXTURES / "vitis_csynth.xml")
    assert report.tool_version == "2024.1" and report.part == "xcvu13p-flga2577-2-e"
    assert report.target_clock_ns == 5.0 and report.estimated_clock_ns == pytest.approx(3.641)
    assert (report.latency_best_cycles, report.latency_worst_cycles) == (14, 15)
    assert (report.interval_min_cycles, report.interval_max_cycles) == (1, 1)
    assert report.resources == {"bram_18k": 0, "dsp": 12, "ff": 9876, "lut": 43210, "uram": 0}
    assert report.latency_worst_ns == 75.0
    assert report.utilization()["lut"] == pytest.approx(43210 / 1728000)


def test_vivado_report_names_dsps_differently() -> None:
    report = parse_csynth_xml(FIXTURES / "vivado_csynth.xml")
    assert report.resources["dsp"] == 12 and report.available["dsp"] == 220
    assert report.part == "xc7z020clg400-1"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("<Worst-caseLatency>15</Worst-caseLatency>", ""), "no PerformanceEstimates"),
        (lambda t: t.replace("<Interval-min>1</Interval-min>", "<Interval-min>undef</Interval-min>"), "not a number"),
        (lambda t: t[: len(t) // 2], "not valid XML"),
    ],
)
def test_incomplete_or_corrupt_reports(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "myproject_csynth.xml"
    path.write_text(edit((FIXTURES / "vitis_csynth.xml").read_text()))
    with pytest.raises(InputError, match=message):
        parse_csynth_xml(path)


def test_missing_report(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        parse_csynth_xml(tmp_path / "none.xml")
