"""The self-checking testbenches an RTL build leaves beside its golden vectors, one per top, and ``design.f``.

Each testbench reads ``stimulus.hex`` and ``response.hex`` (one sample per line,
written by the backend's ``write_vectors``), drives its top and prints ``PASS`` or
``FAIL``: the core one sample per clock; ``<top>_stream`` with gaps between valid
samples; ``<top>_axis`` at full rate, then with pseudo-random gaps and
backpressure, checking the AXI4-Stream rule that an offered result stays until
taken. ``design.f`` lists the design files relative to the vectors folder, so
``verilator --binary ... -f design.f`` works where the testbenches are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgekit.backends.rtl.firmware import TopNames, design_sources, whole_bytes

__all__ = [
    "axis_testbench",
    "core_testbench",
    "design_list",
    "stream_testbench",
    "write_testbenches",
]


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
    in_bus, out_bus = whole_bytes(bits_in), whole_bytes(bits_out)
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


def write_testbenches(folder: Path, project: Path, vectors: dict[str, Any]) -> None:
    """A self-checking testbench per top, and ``design.f``: every design file, relative to ``folder``."""
    names = TopNames(vectors["tops"]["core"])
    (folder / "design.f").write_text(design_list(design_sources(project, names, "axi_stream"), folder))
    (folder / f"tb_{names.core}.sv").write_text(core_testbench(vectors))
    (folder / f"tb_{names.stream}.sv").write_text(stream_testbench(vectors))
    (folder / f"tb_{names.axis}.sv").write_text(axis_testbench(vectors))
