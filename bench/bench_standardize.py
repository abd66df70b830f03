"""Accuracy on the FPGA with and without train.standardize, for a tagger fed features of very different ranges.

    python bench/bench_standardize.py [--out build/bench-standardize] [--json]

A planted five-class problem on ten features: eight of order one, an energy in GeV (mean 300, spread 100) and
a multiplicity (mean 40, spread 15); the class needs both kinds. The same MLP is built for fpga-xcvu13p at w6a8
three ways: plain (raw features into the 8-bit input), plain with a 16-bit input (--quant w6a8i16), and with
train.standardize (edgekit picks the input and first-layer widths). Prints the float and the FPGA accuracy of
each (every FPGA build is checked bit-exact against brevitas) and the FPGA's retention of its float model.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import edgekit
from edgekit.core.progress import configure


def events(n: int = 6000) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(21)
    x = rng.normal(size=(n, 10)).astype(np.float32)
    x[:, 8] = x[:, 8] * 100 + 300  # an energy in GeV
    x[:, 9] = np.round(x[:, 9] * 15 + 40)  # a multiplicity
    y = (x[:, 0] - x[:, 3] > 0).astype(np.int64) + 2 * (x[:, 8] > 300) + (x[:, 9] > 55)
    split = int(0.8 * n)
    return x[:split], y[:split], x[split:], y[split:]


def tagger() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="build folders (default: a temporary folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    out = args.out or Path(tempfile.mkdtemp(prefix="edgekit-bench-standardize-"))
    data = events()
    rows: list[dict[str, Any]] = []
    for label, quant, standardize in (
        ("raw features, 8-bit input", "w6a8", False),
        ("raw features, 16-bit input", "w6a8i16", False),
        ("train.standardize", "w6a8", True),
    ):
        settings = {"train": {"epochs": 30, "batch_size": 64, "standardize": standardize}}
        result = edgekit.compile(tagger(), data=data, targets=["fpga-xcvu13p"], quant=quant, settings=settings,
                                 out=out / label.replace(" ", "-").replace(",", ""))  # fmt: skip
        fpga = next(t for t in result.report.targets if t.target == "fpga-xcvu13p")
        overrides = [o for o in result.manifest["request"]["overrides"] if o.startswith("quant.")]
        rows.append({
            "build": label, "quant": quant, "float_accuracy": result.report.reference.metric,
            "fpga_accuracy": fpga.metric, "retention": fpga.metric / result.report.reference.metric,
            "exact": fpga.max_abs_diff_vs_quantized == 0, "raised": overrides,
        })  # fmt: skip
    if args.json:
        print(json.dumps({"machine": platform.platform(), "rows": rows}, indent=2))
        return
    print(f"machine: {platform.platform()}, torch {torch.__version__}")
    print(f"{'build':<28} {'quant':<8} {'float':>6} {'FPGA':>6} {'kept':>6}  exact  raised")
    for r in rows:
        print(f"{r['build']:<28} {r['quant']:<8} {r['float_accuracy']:6.3f} {r['fpga_accuracy']:6.3f} "
              f"{r['retention']:6.1%}  {'yes' if r['exact'] else 'NO':<5}  {' '.join(r['raised']) or '-'}")  # fmt: skip


if __name__ == "__main__":
    main()
