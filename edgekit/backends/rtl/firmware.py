"""What a firmware engineer receives with an RTL build, and the tops: da4ml's core and edgekit's two wrappers.

da4ml writes the core: ``<top>`` (``clk``, ``model_inp``, ``model_out``), a new
sample every clock, ``latency`` cycles from input to output, no reset and no
stall (it is a pipeline of registers with no clock enable). Around it edgekit
writes, in ``rtl/src/`` (this module):

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
that synthesis, place and route, the Vivado script and the constraints take.
The project scripts and constraints for the part's vendor flow are written by
:mod:`edgekit.backends.rtl.project_scripts`, the self-checking testbenches of each
top and ``design.f`` by :mod:`edgekit.backends.rtl.testbenches`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "Interface",
    "TopNames",
    "axis_top",
    "design_sources",
    "fifo_depth",
    "stream_top",
    "whole_bytes",
    "write_tops",
]

Interface = Literal["core", "valid", "axi_stream"]


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
                "s_axis_tready": ("output", 1), "s_axis_tdata": ("input", whole_bytes(bits_in)),
                "m_axis_tvalid": ("output", 1), "m_axis_tready": ("input", 1),
                "m_axis_tdata": ("output", whole_bytes(bits_out))}  # fmt: skip


def whole_bytes(bits: int) -> int:
    """``bits`` rounded up to whole bytes: the width of an AXI4-Stream ``tdata`` bus."""
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
    in_bus, out_bus = whole_bytes(bits_in), whole_bytes(bits_out)
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
    # project for an AMD part cannot build): replaced by write_project_files (project_scripts) for the part and
    # chosen top
    for stale in (project / "build_vivado_prj.tcl", project / "build_quartus_prj.tcl",
                  src / f"{names.core}.xdc", src / f"{names.core}.sdc"):  # fmt: skip
        stale.unlink(missing_ok=True)
