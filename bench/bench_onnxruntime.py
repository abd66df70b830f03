"""ONNX Runtime vs torch eager latency on the CPU, both zoo models, batch 1 and 1024.

Both runners are timed in the same process, in alternating rounds, so machine
noise hits both alike; the printed ratio (ORT p50 / torch p50) is what to
compare between machines, not the absolute microseconds.

    python bench/bench_onnxruntime.py [--rounds 5] [--out build/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import numpy as np

from edgekit.backends import get_backend
from edgekit.core.artifacts import CompiledArtifact, FloatModel
from edgekit.core.config import LatencySettings
from edgekit.core.latency import measure_latency
from edgekit.core.progress import configure
from edgekit.core.schema import build
from edgekit.core.targets import load_target
from edgekit.model.torch_model import TorchRunner, load_float_model
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest


def bench_model(name: str, out: Path, rounds: int, cfg: LatencySettings) -> list[dict[str, object]]:
    result = compile_model(CompileRequest(name, ("cpu-onnxruntime",), out=out / name))
    root = result.build_dir
    float_model = build(FloatModel, result.manifest["artifacts"]["float_model"])
    artifact = build(CompiledArtifact, result.manifest["artifacts"]["compiled"]["cpu-onnxruntime"])
    target = load_target("cpu-onnxruntime")
    ort_runner = get_backend("onnxruntime").load(artifact, root / "targets" / target.name / artifact.path, target)
    torch_runner = TorchRunner(load_float_model(float_model, root / "float"))
    sample = np.load(root / "float" / "golden_inputs.npy")[:1024]
    rows = []
    for batch in cfg.batch_sizes:
        p50 = {"torch": [], "onnxruntime": []}  # type: dict[str, list[float]]
        for _ in range(rounds):
            for label, runner in (("torch", torch_runner), ("onnxruntime", ort_runner)):
                p50[label].append(measure_latency(runner, sample, batch, cfg).p50_us)
        torch_us, ort_us = statistics.median(p50["torch"]), statistics.median(p50["onnxruntime"])
        rows.append(
            {"model": name, "batch": batch, "torch_eager_p50_us": torch_us, "onnxruntime_p50_us": ort_us,
             "ratio_ort_over_torch": ort_us / torch_us}
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    cfg = LatencySettings(batch_sizes=(1, 1024), warmup_iters=20, min_iters=50, min_time_s=0.2, max_time_s=1.0)
    rows = []
    for name in ("jet_tagger", "lenet_digits"):
        rows += bench_model(name, args.out, args.rounds, cfg)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    import onnxruntime
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}")
    print(f"p50 of one call, median over {args.rounds} alternating rounds, wall clock\n")
    print(f"{'model':<13} {'batch':>5} {'torch eager':>12} {'onnxruntime':>12} {'ORT/torch':>10}")
    for r in rows:
        print(
            f"{r['model']:<13} {r['batch']:>5} {r['torch_eager_p50_us']:>9.1f} us "
            f"{r['onnxruntime_p50_us']:>9.1f} us {r['ratio_ort_over_torch']:>9.2f}x"
        )


if __name__ == "__main__":
    main()
