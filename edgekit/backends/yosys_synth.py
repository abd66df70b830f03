"""Resource counts for generated RTL from yosys' ``synth_xilinx`` (synthesis-mapped cells, no timing).

yosys maps the design onto the part family's primitives (LUTs, carry chains,
flip-flops, wide multiplexers, DSPs, block RAM). That is a real synthesis
figure, but there is no place-and-route and no timing: open tools have no
timing models for UltraScale+. The report labels every number accordingly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import ConfigError, ToolchainError
from edgekit.tools import require_program, run_tool

__all__ = ["SynthCounts", "family_for_part", "find_yosys", "parse_stat", "run_yosys"]

LABEL = "synthesis-mapped (yosys), no timing"

# Cell name prefixes per category; every other cell is counted under "other".
_CATEGORIES = {
    "lut": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"),  # an inverter is a LUT1 on the part
    "ff": ("FDRE", "FDSE", "FDCE", "FDPE", "FDR", "FDS", "FDC", "FDP", "FD"),
    "carry": ("CARRY4", "CARRY8"),
    "mux": ("MUXF7", "MUXF8", "MUXF9"),
    "dsp": ("DSP48E1", "DSP48E2", "DSP48"),
    "bram": ("RAMB18E1", "RAMB36E1", "RAMB18E2", "RAMB36E2"),
    "lutram": ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1S", "SRL16E", "SRLC32E"),
}
_IGNORED = ("IBUF", "OBUF", "BUFG", "BUFGCE")  # pads and clock buffers of a standalone run, not of the design


@dataclass(frozen=True)
class SynthCounts:
    lut: int
    ff: int
    carry: int
    mux: int
    dsp: int
    bram: int
    lutram: int
    cells: dict[str, int] = field(default_factory=dict)
    family: str = ""
    wall_s: float = 0.0
    label: str = LABEL


def family_for_part(part: str) -> str:
    """yosys' ``synth_xilinx -family`` for an AMD part number."""
    p = part.lower()
    if p.startswith(("xc7", "xa7", "xq7")):
        return "xc7"
    if re.match(r"^(xczu|xcvu\d+p|xcku\d+p|xcau|xcve|xck26)", p):
        return "xcup"
    if p.startswith(("xcvu", "xcku")):
        return "xcu"
    raise ConfigError(
        f"yosys has no synth_xilinx family for part {part!r}",
        hint="the RTL backend's resource counts cover 7-series, UltraScale and UltraScale+ parts",
    )


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts from the last ``stat`` table in a yosys log."""
    cells: dict[str, int] = {}
    section = text[text.rfind("Number of cells:") :] if "Number of cells:" in text else ""
    for line in section.splitlines()[1:]:
        match = re.match(r"^\s+([A-Za-z0-9_$]+)\s+(\d+)\s*$", line)
        if not match:
            if cells:
                break
            continue
        cells[match.group(1)] = int(match.group(2))
    return cells


def _counts(cells: dict[str, int], family: str, wall_s: float) -> SynthCounts:
    def total(kind: str) -> int:
        return sum(n for c, n in cells.items() if c in _CATEGORIES[kind])

    return SynthCounts(
        lut=total("lut"), ff=total("ff"), carry=total("carry"), mux=total("mux"), dsp=total("dsp"),
        bram=total("bram"), lutram=total("lutram"), cells=dict(sorted(cells.items())), family=family, wall_s=wall_s,
    )  # fmt: skip


def find_yosys() -> str:
    return require_program(
        "yosys", "for the RTL resource counts",
        "apt-get install yosys, or set synthesis = false in the target's [backend_options]",
    )  # fmt: skip


def run_yosys(sources: Sequence[Path], top: str, part: str, work: Path, timeout_s: float) -> SynthCounts:
    """``synth_xilinx`` of ``top`` for ``part``'s family; log and cell counts in ``work``."""
    import time

    family = family_for_part(part)
    work = work.resolve()
    sources = [s.resolve() for s in sources]  # yosys runs in work/
    script = work / "synth.ys"
    script.write_text(
        "\n".join(
            [
                *(f"read_verilog -sv {s}" for s in sources),
                f"synth_xilinx -family {family} -flatten -noiopad -top {top}",
                "tee -o yosys_stat.txt stat",
                "",
            ]
        )
    )
    started = time.perf_counter()
    run_tool([find_yosys(), "-q", "-s", script.name], cwd=work, timeout_s=timeout_s, log_path=work / "yosys.log",
             name="yosys synth_xilinx")  # fmt: skip
    stat = work / "yosys_stat.txt"
    cells = parse_stat(stat.read_text()) if stat.is_file() else {}
    if not cells:
        raise ToolchainError("yosys finished but printed no cell statistics", log_path=work / "yosys.log")
    cells = {c: n for c, n in cells.items() if c not in _IGNORED}
    return _counts(cells, family, time.perf_counter() - started)
