"""How long full-size float training takes on the zoo's small models, against a fixed torch workload.

    python bench/bench_training.py [--out build/bench-training] [--json]

Trains each model at full size (``edgekit compile NAME --target cpu-onnxruntime``,
the recipe's own epochs) and prints the float training stage's wall time, its
goal (under a minute on 2 cores) and its ratio to a baseline measured in the
same run: a fixed torch workload (an MLP trained for a fixed number of steps)
timed just before each model, so a loaded or slow machine shows in both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from edgekit.core.progress import configure
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

MODELS = ("jet_tagger", "lenet_digits", "tpc_autoencoder")
GOAL_S = 60.0
BASELINE_STEPS = 400


def baseline_s() -> float:
    """Wall time of a fixed training workload: 400 Adam steps of a 16-64-64-5 MLP on batches of 1,024."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(1024, 16, generator=gen), torch.randint(0, 5, (1024,), generator=gen)
    net = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                              torch.nn.ReLU(), torch.nn.Linear(64, 5))  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    started = time.perf_counter()
    for _ in range(BASELINE_STEPS):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return time.perf_counter() - started


def run(model: str, out: Path) -> dict[str, Any]:
    base = baseline_s()
    result = compile_model(CompileRequest(model, ("cpu-onnxruntime",), out=out / model))
    train = next(s for s in result.manifest["stages"] if s["name"] == "train")
    ref = result.report.reference
    return {"model": model, "train_s": train["wall_s"], "baseline_s": base, "ratio": train["wall_s"] / base,
            "metric": ref.metric, "metric_name": result.report.metric_name, "goal_met": train["wall_s"] < GOAL_S,
            "exit_code": result.exit_code}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench-training"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    rows = [run(model, args.out) for model in MODELS]
    if args.json:
        print(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(), "rows": rows}, indent=2))
        return
    print(f"{'model':<16} {'train':>8} {'baseline':>9} {'ratio':>6}  {'metric':>14}  goal (< {GOAL_S:.0f} s)")
    for r in rows:
        metric = f"{r['metric_name']} {r['metric']:.4g}"
        print(f"{r['model']:<16} {r['train_s']:7.1f}s {r['baseline_s']:8.2f}s {r['ratio']:6.1f}  {metric:>14}  "
              f"{'met' if r['goal_met'] else 'NOT met'}")  # fmt: skip
    print(
        f"\nbaseline: {BASELINE_STEPS} Adam steps of a 16-64-64-5 MLP, batch 1,024, timed before each model; "
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
