"""Learned precision against uniform precision: the same jet tagger, the same upper bounds, the open RTL target.

    python bench/bench_learned.py [--out build/bench-learned] [--tiny] [--resource-weight 0.05 0.5 ...] [--json]

For each point (``w6a8`` dense, ``w6a8`` pruned 75%) the jet tagger is quantized from one trained float model
with uniform QAT, and with ``quant.method = "learned"`` (each output channel's weight bits learned under the
resource term) at each ``--resource-weight``, every build for
``fpga-xcvu13p-rtl`` (yosys-mapped LUT and FF, da4ml's pipeline latency; validated through da4ml's interpreter
to keep the bench to minutes) and checked bit for bit against brevitas on the held-out jets. It prints the
accuracy, the LUT and FF counts, the latency and each learned build's LUT as a fraction of the uniform one,
measured in the same run.
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
RTL = "fpga-xcvu13p-rtl-bench"


def run(out: Path, profile: Path, quant: str, prune: str | None, tiny: bool, weight: float | None) -> dict[str, Any]:
    overrides = () if weight is None else ("quant.method=learned", f"quant.resource_weight={weight}")
    started = time.perf_counter()
    result = compile_model(
        CompileRequest("jet_tagger", (str(profile),), out=out, quant=quant, prune=prune, tiny=tiny, overrides=overrides)
    )
    (target,) = result.report.targets
    info = result.manifest["artifacts"]["compiled"][RTL]["info"]
    quantized = result.manifest["artifacts"]["quantized"]["fixed"]
    bits = [b for layer in (quantized.get("learned_bits") or {}).values() for b in layer]
    return {
        "point": f"{quant}, {'pruned ' + prune if prune else 'dense'}",
        "method": "uniform" if weight is None else f"learned, weight {weight:g}",
        "accuracy": target.accuracy,
        "exact": target.status == "ok" and target.max_abs_diff_vs_quantized == 0.0,
        "lut": info["synthesis"]["lut"],
        "ff": info["synthesis"]["ff"],
        "latency_ns": info["latency_ns"],
        "mean_bits": sum(bits) / len(bits) if bits else None,
        "wall_s": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="build folder (default: a temporary one)")
    parser.add_argument("--tiny", action="store_true", help="the tiny variant (seconds; a smoke test)")
    parser.add_argument("--resource-weight", type=float, nargs="+", default=[0.05, 0.5], help="learned points' weights")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-learned-") as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        profile = bench_profile(root)
        rows = []
        for quant, prune in POINTS:
            base = root / f"{quant}-{prune or 'dense'}"
            rows.append(run(base / "uniform", profile, quant, prune, args.tiny, None))
            for weight in args.resource_weight:
                rows.append(run(base / f"learned-{weight:g}", profile, quant, prune, args.tiny, weight))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'point':<18} {'method':<22} {'accuracy':>8} {'exact':>5} {'yosys LUT':>9} {'FF':>6} {'ns':>4} "
          f"{'mean bits':>9} {'vs uniform':>10}")  # fmt: skip
    uniform: dict[str, int] = {}
    for row in rows:
        if row["method"] == "uniform":
            uniform[row["point"]] = row["lut"]
        ratio = row["lut"] / uniform[row["point"]]
        bits = f"{row['mean_bits']:.2f}" if row["mean_bits"] is not None else "-"
        print(f"{row['point']:<18} {row['method']:<22} {row['accuracy']:>8.4f} {'yes' if row['exact'] else 'NO':>5} "
              f"{row['lut']:>9,} {row['ff']:>6,} {row['latency_ns']:>4.0f} {bits:>9} {ratio:>9.2f}x")  # fmt: skip
    print(f"\nLUT/FF: yosys synth_xilinx -family xcup (mapped, no timing); ns: da4ml's pipeline at the profile's "
          f"clock; mean bits: the bits per output channel after QAT (sign included). {platform.machine()}, "
          f"{os.cpu_count()} cores, {time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
