"""Accuracy retained by quantization and pruning on the zoo models, against the float model of the same run.

    python bench/bench_compression.py [--out build/bench-compression] [--json]

Each row builds the full-size model with one compression recipe and prints its
held-out accuracy as a fraction of the float model's (trained once per model,
in the same build directory, so every ratio compares models from the same run),
with the goal it is held to.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from edgekit.core.progress import configure
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

# (model, label, quant, prune, targets, goal on retained accuracy, goal on MACs removed)
CASES: list[tuple[str, str, str | None, str | None, tuple[str, ...], float, float | None]] = [
    ("jet_tagger", "QAT w6a8, FPGA fixed-point", "w6a8", None, ("fpga-xcvu13p",), 0.99, None),
    ("jet_tagger", "QAT int8, ONNX Runtime INT8", "int8", None, ("cpu-onnxruntime-int8",), 0.99, None),
    ("jet_tagger", "PTQ int8, ONNX Runtime INT8", "int8", None, ("cpu-onnxruntime-int8",), 0.98, None),
    ("jet_tagger", "80% unstructured + fine-tune", None, "0.8", ("cpu-onnxruntime",), 0.98, None),
    ("lenet_digits", "QAT w6a8, FPGA fixed-point", "w6a8", None, ("fpga-xcvu13p",), 0.99, None),
    ("lenet_digits", "QAT int8, ONNX Runtime INT8", "int8", None, ("cpu-onnxruntime-int8",), 0.99, None),
    ("lenet_digits", "80% unstructured + fine-tune", None, "0.8", ("cpu-onnxruntime",), 0.98, None),
    ("lenet_digits", "50% channels (structured) + fine-tune", None, "structured:0.5", ("cpu-onnxruntime",), 0.97, 0.40),
]


def run_case(
    out: Path, model: str, label: str, quant: str | None, prune: str | None, targets: tuple[str, ...]
) -> dict[str, Any]:
    overrides = ("quant.method=ptq",) if label.startswith("PTQ") else ()
    started = time.perf_counter()
    result = compile_model(
        CompileRequest(model, targets, out=out / model, quant=quant, prune=prune, overrides=overrides)
    )
    report = result.report
    compressed = report.extra_references[-1]  # the quantized reference, or the pruned one
    row: dict[str, Any] = {
        "model": model,
        "case": label,
        "float_accuracy": report.reference.accuracy,
        "accuracy": compressed.accuracy,
        "retained": compressed.accuracy / report.reference.accuracy,
        "wall_s": time.perf_counter() - started,
    }
    pruning = result.manifest.get("pruning")
    if pruning:
        row["macs_removed"] = 1 - pruning["after"]["totals"]["nonzero_macs"] / pruning["before"]["totals"]["macs"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench-compression"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    rows = []
    for model, label, quant, prune, targets, goal, mac_goal in CASES:
        row = run_case(args.out, model, label, quant, prune, targets)
        row["goal_retained"] = goal
        row["goal_macs_removed"] = mac_goal
        row["meets_goal"] = row["retained"] >= goal and (mac_goal is None or row["macs_removed"] >= mac_goal)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; held-out accuracy, full-size zoo models\n")
    print(f"{'model':<13} {'case':<38} {'float':>6} {'compr.':>6} {'retained':>8} {'MACs removed':>12}  goal")
    for r in rows:
        macs = f"{r['macs_removed']:.0%}" if "macs_removed" in r else "-"
        goal = f">= {r['goal_retained']:.0%}" + (
            f", >= {r['goal_macs_removed']:.0%} MACs" if r["goal_macs_removed"] else ""
        )
        verdict = "met" if r["meets_goal"] else "MISSED"
        print(
            f"{r['model']:<13} {r['case']:<38} {r['float_accuracy']:>6.4f} {r['accuracy']:>6.4f} "
            f"{r['retained']:>8.2%} {macs:>12}  {goal} {verdict}"
        )


if __name__ == "__main__":
    main()
