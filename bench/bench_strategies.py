"""One jet tagger, three ways to build it for the VU13P: hls4ml latency, hls4ml distributed arithmetic, open RTL.

    python bench/bench_strategies.py [--out build/bench-strategies] [--tiny] [--json]

Each point (W6A8 dense and 75% pruned) trains and quantizes jet_tagger once and
compiles it for ``fpga-xcvu13p`` (hls4ml, latency strategy: multipliers
hard-wired by HLS), ``fpga-xcvu13p-da`` (hls4ml 1.3's ``distributed_arithmetic``
strategy: da4ml writes each layer's constant multiplications as one adder graph
that HLS then schedules) and ``fpga-xcvu13p-rtl`` (da4ml's pipelined Verilog
without HLS, counted by yosys; validated here through da4ml's interpreter to
keep the bench to minutes). Every build is checked bit for bit against brevitas
on the held-out jets. No Vivado runs here, so each LUT figure is named by its
source: edgekit's calibrated estimate for the latency strategy, da4ml's
adder-graph cost for the DA strategy (hls4ml records it per layer), yosys'
mapped count for the RTL. hls4ml's documentation claims DA takes "up to 30% of
the LUTs and all DSPs" of the latency strategy; this bench prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_rtl import bench_profile

from edgekit.core.progress import configure
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

POINTS: list[tuple[str, str | None]] = [("w6a8", None), ("w6a8", "0.75")]
HLS_TARGETS = ("fpga-xcvu13p", "fpga-xcvu13p-da")
RTL = "fpga-xcvu13p-rtl-bench"


def run_point(out: Path, rtl_profile: Path, quant: str, prune: str | None, tiny: bool) -> list[dict[str, Any]]:
    started = time.perf_counter()
    request = CompileRequest("jet_tagger", (*HLS_TARGETS, str(rtl_profile)), out=out, quant=quant, prune=prune,
                             tiny=tiny)  # fmt: skip
    result = compile_model(request)
    compiled = result.manifest["artifacts"]["compiled"]
    point = f"{quant}, {'pruned ' + prune if prune else 'dense'}"
    rows = []
    for target in result.report.targets:
        info = compiled.get(target.target, {}).get("info", {})
        if target.target == RTL:
            syn = info["synthesis"]
            lut, ff, dsp, source = syn["lut"], syn["ff"], syn["dsp"], f"yosys {syn.get('yosys', '')} synth_xilinx"
            latency = info["latency_ns"]
        elif "estimate" in info:
            est = info["estimate"]
            lut, ff, dsp, latency = est["lut"], est["ff"], est["dsp"], est["latency_ns"]
            source = "da4ml adder-graph cost" if target.target.endswith("-da") else "edgekit estimate (calibrated)"
        else:
            lut = ff = dsp = latency = None
            source = f"failed: {target.reason}"
        rows.append({
            "point": point,
            "target": target.target.replace("-bench", ""),
            "lut": lut,
            "ff": ff,
            "dsp": dsp,
            "latency_ns": latency,
            "source": source,
            "exact_vs_brevitas": target.max_abs_diff_vs_quantized == 0.0,
            "accuracy": target.accuracy,
            "point_wall_s": time.perf_counter() - started,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench-strategies"))
    parser.add_argument("--tiny", action="store_true", help="the tiny jet_tagger (a quick check of the bench itself)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        profile = bench_profile(Path(tmp))
        for quant, prune in POINTS:
            print(f"building jet_tagger {quant} {'pruned ' + prune if prune else 'dense'} ...", flush=True)
            rows += run_point(args.out, profile, quant, prune, args.tiny)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"\njet_tagger{' (tiny)' if args.tiny else ''} on xcvu13p at 200 MHz; {platform.machine()}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    header = (f"{'point':<18} {'target':<18} {'LUT':>8} {'FF':>7} {'DSP':>4} {'ns':>5} {'exact':>5} "
              f"{'vs latency':>10}  source")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in rows:
        base = next(b for b in rows if b["point"] == r["point"] and b["target"] == "fpga-xcvu13p")
        ratio = f"{r['lut'] / base['lut']:.2f}x" if r["lut"] is not None and base["lut"] else "-"
        numbers = (
            f"{r['lut']:>8,} {r['ff']:>7,} {r['dsp']:>4} {r['latency_ns']:>5.0f}"
            if r["lut"] is not None
            else f"{'-':>8} {'-':>7} {'-':>4} {'-':>5}"
        )
        exact = "yes" if r["exact_vs_brevitas"] else "NO"
        print(f"{r['point']:<18} {r['target']:<18} {numbers} {exact:>5} {ratio:>10}  {r['source']}")
    print("\nNo vendor synthesis ran: each LUT figure is its source's. The DA strategy's ns is its adder graphs'")
    print("depth at one adder level per ns (the RTL path's convention) and its FF edgekit's formula, uncalibrated")
    print("(no published DA design to fit them to); the latency strategy's figures are calibrated to arXiv:2103.05579.")


if __name__ == "__main__":
    main()
