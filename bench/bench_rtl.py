"""The jet tagger as open RTL at several (bits, sparsity) points: LUT/FF/DSP, latency, accuracy.

    python bench/bench_rtl.py [--out build/bench-rtl] [--tiny] [--no-ecp5] [--json]
    python bench/bench_rtl.py --calibrate [--levels 2,3,4,5]

Each point builds jet_tagger (full size unless --tiny) with one precision and one
pruning level, for three targets: the open RTL target of the VU13P at 200 MHz
(da4ml Verilog, counted by yosys 0.70's synth_xilinx), the routed open RTL target
of a Lattice ECP5-85F (yosys synth_ecp5, then nextpnr-ecp5 place, route and
timing: post-route LUT4/FF, the achieved Fmax, latency at that clock; pruned
points only, the dense design fills most of the part and routes for far longer) and
hls4ml's VU13P target (for its estimate). To keep the bench to minutes, the RTL
targets here validate through da4ml's interpreter instead of the Verilator
model; every point is still checked bit for bit against brevitas on the 30,000
held-out jets (the Verilator proof of the same design is what ``edgekit compile
... -t fpga-xcvu13p-rtl`` runs).

``--calibrate`` builds the 75%-pruned W6A8 point on the ECP5 target once per
number of adder levels per pipeline stage and prints the Fmax each reaches:
the measurement behind ``adder_levels_per_ns`` in ``targets/fpga-ecp5-85k-rtl.toml``.

The goal it reports against (as issue #5 states it): the published HGQ +
distributed-arithmetic jet tagger (da4ml: C. Sun et al., arXiv:2507.04535) uses
about 10k LUTs, no DSPs, and under 100 ns at 200 MHz, trained on the real hls4ml
jet dataset. edgekit's zoo jet_tagger trains on a synthetic stand-in, so its
accuracy is not comparable with the paper's; resources and latency are.
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

from edgekit.core.progress import configure
from edgekit.core.targets import targets_dir
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

# (weight/activation bits, pruning); the first point is the issue's w6a8
POINTS: list[tuple[str, str | None]] = [
    ("w6a8", None),
    ("w6a8", "0.75"),
    ("w4a6", "0.75"),
    ("w3a6", "0.85"),
]
GOAL = {"lut": 10_000, "dsp": 0, "latency_ns": 100.0}


ECP5 = "fpga-ecp5-85k-rtl"


def bench_profile(folder: Path, base: str = "fpga-xcvu13p-rtl", levels_per_ns: float | None = None) -> Path:
    """A copy of an RTL profile validated through da4ml's interpreter (synthesis and routing still run)."""
    name = f"{base}-bench" if levels_per_ns is None else f"{base}-levels{levels_per_ns:g}"
    text = (targets_dir() / f"{base}.toml").read_text()
    text = text.replace(f'name = "{base}"', f'name = "{name}"')
    text = text.replace('emulation = "verilator"', 'emulation = "interpreter"')
    if levels_per_ns is not None:
        lines = [f"adder_levels_per_ns = {levels_per_ns!r}" if line.startswith("adder_levels_per_ns") else line
                 for line in text.splitlines()]  # fmt: skip
        text = "\n".join(lines) + "\n"
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def _routed(info: dict[str, Any]) -> dict[str, Any]:
    route = info["route"]
    return {
        "ecp5_lut4": route["used"]["lut"],
        "ecp5_ff": route["used"]["ff"],
        "ecp5_fmax_mhz": route["fmax_mhz"],
        "ecp5_timing_met": route["timing_met"],
        "ecp5_constraint_mhz": route["constraint_mhz"],
        "ecp5_cycles": info["latency_cycles"],
        "ecp5_latency_ns": info["latency_ns"],
        "ecp5_levels_per_stage": info["adder_levels_per_stage"],
        "ecp5_route_s": route["wall_s"],
        "ecp5_critical_ns": (route["critical_path"] or {}).get("delay_ns"),
    }


def run_point(out: Path, profiles: list[Path], quant: str, prune: str | None, tiny: bool) -> dict[str, Any]:
    started = time.perf_counter()
    if prune is None and not tiny:  # the dense design fills most of the ECP5 and routes for far longer
        profiles = [p for p in profiles if not p.stem.startswith(ECP5)]
    targets = (*map(str, profiles), "fpga-xcvu13p")
    result = compile_model(CompileRequest("jet_tagger", targets, out=out, quant=quant, prune=prune, tiny=tiny))
    rtl = result.report.targets[0]
    compiled = result.manifest["artifacts"]["compiled"]
    info = compiled["fpga-xcvu13p-rtl-bench"]["info"]
    syn, est = info["synthesis"], info["da4ml_estimate"]
    hls_est = compiled["fpga-xcvu13p"]["info"]["estimate"] if "fpga-xcvu13p" in compiled else {}
    routed = _routed(compiled[f"{ECP5}-bench"]["info"]) if f"{ECP5}-bench" in compiled else {}
    exact = all(t.max_abs_diff_vs_quantized == 0.0 for t in result.report.targets)
    return {
        "point": f"{quant}, {'pruned ' + prune if prune else 'dense'}",
        "float_accuracy": result.report.reference.accuracy,
        "float_roc_auc": result.report.reference.metric,
        "accuracy": rtl.accuracy,
        "roc_auc": rtl.metric,
        "exact_vs_brevitas": exact,
        "samples": rtl.n_samples,
        "yosys_lut": syn["lut"],
        "yosys_ff": syn["ff"],
        "yosys_dsp": syn["dsp"],
        "yosys_carry": syn["carry"],
        "yosys_wall_s": syn["wall_s"],
        "da4ml_lut": est["lut"],
        "da4ml_ff": est["ff"],
        "hls4ml_lut": hls_est.get("lut"),
        "hls4ml_dsp": hls_est.get("dsp"),
        "latency_cycles": info["latency_cycles"],
        "latency_ns": info["latency_ns"],
        "yosys": syn.get("yosys", ""),
        **routed,
        "wall_s": time.perf_counter() - started,
    }


def calibrate(out: Path, levels: list[int], tiny: bool) -> None:
    """The ECP5 target at each number of adder levels per stage (one build each), and the Fmax it reaches."""
    from edgekit.core.targets import load_target

    fpga = load_target(ECP5).fpga
    assert fpga is not None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for level in levels:
            profile = bench_profile(Path(tmp), ECP5, level / fpga.clock_period_ns)
            print(f"building jet_tagger w6a8 pruned 0.75 at {level} adder levels per stage ...", flush=True)
            result = compile_model(CompileRequest("jet_tagger", (str(profile),), out=out / "calibrate", quant="w6a8",
                                                  prune="0.75", tiny=tiny))  # fmt: skip
            compiled = result.manifest["artifacts"]["compiled"]
            if not compiled:  # the route failed or ran past route_timeout_s: say so and go on
                reason = result.report.targets[0].reason if result.report.targets else "no target was built"
                print(f"  {level} levels per stage: not routed ({reason.splitlines()[0][:160]})", flush=True)
                continue
            rows.append(_routed(next(iter(compiled.values()))["info"]))
    print(f"\njet_tagger{' (tiny)' if tiny else ''} w6a8 pruned 0.75 on {fpga.part}, nextpnr-ecp5 router2, "
          f"constraint {1000 / fpga.clock_period_ns:g} MHz; {platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip
    header = (
        f"{'levels/stage':>12} {'stages':>6} {'Fmax MHz':>8} {'critical ns':>11} {'ns/level':>8} {'latency ns':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        per_level = r["ecp5_critical_ns"] / r["ecp5_levels_per_stage"] if r["ecp5_critical_ns"] else float("nan")
        critical = r["ecp5_critical_ns"] or float("nan")
        print(f"{r['ecp5_levels_per_stage']:>12} {r['ecp5_cycles']:>6} {r['ecp5_fmax_mhz']:>8.1f} "
              f"{critical:>11.2f} {per_level:>8.2f} {r['ecp5_latency_ns']:>10.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench-rtl"))
    parser.add_argument("--tiny", action="store_true", help="the tiny jet_tagger (a quick check of the bench itself)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-ecp5", action="store_true", help="leave out the routed ECP5 target (minutes per point)")
    parser.add_argument("--calibrate", action="store_true", help="Fmax per adder levels per stage on the ECP5")
    parser.add_argument("--levels", default="2,3,4,5", help="adder levels per stage for --calibrate")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    if args.calibrate:
        calibrate(args.out, [int(v) for v in args.levels.split(",")], args.tiny)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        profiles = [bench_profile(Path(tmp))] + ([] if args.no_ecp5 else [bench_profile(Path(tmp), ECP5)])
        for quant, prune in POINTS:
            print(f"building jet_tagger {quant} {'pruned ' + prune if prune else 'dense'} ...", flush=True)
            rows.append(run_point(args.out, profiles, quant, prune, args.tiny))
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"\njet_tagger{' (tiny)' if args.tiny else ''} on xcvu13p at 200 MHz; {platform.machine()}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    header = (
        f"{'point':<22} {'accuracy':>8} {'roc_auc':>7} {'exact':>5} {'yosys LUT':>9} {'FF':>6} {'DSP':>3} "
        f"{'da4ml LUT':>9} {'hls4ml LUT':>10} {'cycles':>6} {'ns':>4} {'vs 10k LUT':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        hls = f"{r['hls4ml_lut']:,}" if r["hls4ml_lut"] is not None else "-"
        exact = "yes" if r["exact_vs_brevitas"] else "NO"
        print(
            f"{r['point']:<22} {r['accuracy']:>8.4f} {r['roc_auc']:>7.4f} {exact:>5} "
            f"{r['yosys_lut']:>9,} {r['yosys_ff']:>6,} {r['yosys_dsp']:>3} {r['da4ml_lut']:>9,.0f} {hls:>10} "
            f"{r['latency_cycles']:>6} {r['latency_ns']:>4.0f} {r['yosys_lut'] / GOAL['lut']:>9.2f}x"
        )
    print(f"\nfloat reference: accuracy {rows[0]['float_accuracy']:.4f}, roc_auc {rows[0]['float_roc_auc']:.4f}; "
          f"{rows[0]['samples']} held-out jets per point")  # fmt: skip
    print(
        f"LUT/FF/DSP: synthesis-mapped (yosys {rows[0]['yosys']} synth_xilinx -family xcup), no timing; da4ml LUT: "
        "its cost model; hls4ml LUT: edgekit's analytical estimate of the hls4ml latency-strategy design "
        "(no synthesis)."
    )
    routed = [r for r in rows if "ecp5_lut4" in r]
    if routed:
        print(
            "\nthe same designs placed and routed on the Lattice ECP5-85F (yosys synth_ecp5 + nextpnr-ecp5, post-route)"
        )
        header = (f"{'point':<22} {'LUT4':>7} {'FF':>6} {'levels':>6} {'cycles':>6} {'Fmax MHz':>8} {'met':>4} "
                  f"{'ns':>5} {'route s':>7}")  # fmt: skip
        print(header)
        print("-" * len(header))
        for r in (r for r in rows if "ecp5_lut4" in r):
            print(f"{r['point']:<22} {r['ecp5_lut4']:>7,} {r['ecp5_ff']:>6,} {r['ecp5_levels_per_stage']:>6} "
                  f"{r['ecp5_cycles']:>6} {r['ecp5_fmax_mhz']:>8.1f} {'yes' if r['ecp5_timing_met'] else 'no':>4} "
                  f"{r['ecp5_latency_ns']:>5.0f} {r['ecp5_route_s']:>7.0f}")  # fmt: skip
        print(
            f"constraint {routed[0]['ecp5_constraint_mhz']:g} MHz; ns = cycles / the achieved Fmax; the dense point "
            "is not routed here (it fills most of the ECP5-85F and its route takes far longer than the rest)"
        )
    print(
        f"goal (HGQ + da4ml jet tagger): about {GOAL['lut']:,} LUT, {GOAL['dsp']} DSP, < {GOAL['latency_ns']:.0f} ns "
        "at 200 MHz; 'vs 10k LUT' is yosys LUT / 10,000."
    )


if __name__ == "__main__":
    main()
