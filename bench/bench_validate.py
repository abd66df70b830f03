"""How long re-validating a build takes: 10,000 held-out samples on every target of a zoo model.

    python bench/bench_validate.py [--model jet_tagger] [--samples 10000] [--out build/bench-validate] [--json]

Builds the model once for every CPU and FPGA target that runs here (not timed),
then times ``edgekit validate`` (``validate_build``) on ``--samples`` samples:
outputs of every target and emulator, metrics, agreement, gates and latency.
It prints the wall time and the CPU time of this process and its workers, whose
ratio shows how many cores were busy (the goal: well under a minute on 2 cores,
with both in use).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from edgekit.core.progress import configure
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.reopen import validate_build
from edgekit.pipeline.request import CompileRequest

TARGETS = ("cpu-onnxruntime", "cpu-onnxruntime-int8", "cpu-inductor", "fpga-xcvu13p", "fpga-xcvu13p-rtl")
GOAL_S = 60.0


def cpu_seconds() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jet_tagger")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("build/bench-validate"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    # 8-bit weights and activations: both quantizer families (fixed for the FPGA targets, int8 for ONNX
    # Runtime INT8) can take them.
    compile_model(CompileRequest(args.model, TARGETS, out=args.out, quant="int8"))
    overrides = (f"validation.max_samples={args.samples}",)
    started_cpu, started = cpu_seconds(), time.perf_counter()
    result = validate_build(args.out, overrides)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - started_cpu
    rows = [
        {
            "target": t.target,
            "status": t.status,
            "samples": t.n_samples,
            "exact_vs_quantized": t.max_abs_diff_vs_quantized,
        }
        for t in result.report.targets
    ]
    summary = {"model": args.model, "samples": args.samples, "wall_s": wall, "cpu_s": cpu,
               "cores_busy": cpu / wall, "cpus": os.cpu_count(), "targets": rows}  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    print(f"\nedgekit validate {args.out}: {args.model}, {args.samples} samples on {len(rows)} target rows")
    for row in rows:
        print(f"  {row['target']:<40} {row['status']:<8} {row['samples']:>6} samples")
    verdict = "met" if wall < GOAL_S else "not met"
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s: {cpu / wall:.2f} of {os.cpu_count()} cores busy "
          f"(goal: well under {GOAL_S:.0f} s: {verdict})")  # fmt: skip


if __name__ == "__main__":
    main()
