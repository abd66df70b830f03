"""Eager PyTorch against the gpu-inductor package: p50 latency at batch 1 and 1024, their ratio, max |diff|.

    python bench/bench_gpu.py [--device cuda|cpu] [--out build/bench-gpu] [--json]

Made for one short run on a borrowed GPU machine: it needs nothing but edgekit's
own code and torch (a CUDA build for ``--device cuda``): no training data, no
brevitas, no onnxruntime. Each zoo model is built with seeded, untrained
weights (latency does not depend on the values; agreement is measured on the
same random inputs for both), compiled by edgekit's inductor backend exactly as
``edgekit compile -t gpu-inductor`` does (torch.export, AOTInductor, first load
in a worker process, CUDA graphs), and timed with edgekit's latency protocol:
CUDA events around one call, after warm-up, for both sides. ``--device cpu``
runs the same comparison against the cpu-inductor package, to check the script
itself on a machine without a GPU.

The goal (issue #6): gpu-inductor at batch 1 at most 0.5x eager for
lenet_digits. Torch-TensorRT reports LeNet about 4x faster than eager, for scale.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.backends.inductor import InductorBackend
from edgekit.core.artifacts import ExportedGraph
from edgekit.core.config import LatencySettings, merge_settings
from edgekit.core.latency import call_time_us, measure_latency
from edgekit.core.schema import to_plain
from edgekit.core.targets import load_target
from edgekit.model.torch_model import instantiate
from edgekit.model.zoo import resolve_model

MODELS = ("jet_tagger", "lenet_digits")
BATCHES = (1, 1024)
PROTOCOL = LatencySettings(warmup_iters=50, min_iters=200, max_iters=20_000, min_time_s=0.5, max_time_s=5.0)


class EagerRunner:
    """The float model in torch eager mode on ``device``, timed like every edgekit runner."""

    def __init__(self, model: torch.nn.Module, device: str) -> None:
        self._model = model.to(device).eval()
        self._device = device
        self.description = f"torch {torch.__version__} eager, fp32, {device}"
        self.clock = "CUDA events (device time of one call, synchronized)" if device == "cuda" else "wall clock"

    def run(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self._model(torch.from_numpy(x).to(self._device))
        return np.asarray(out.float().cpu().numpy())

    def timed_run(self, x: np.ndarray) -> float:
        xt = torch.from_numpy(x).to(self._device)
        with torch.no_grad():
            return call_time_us(lambda: self._model(xt), self._device == "cuda")

    def synchronize(self) -> None:
        if self._device == "cuda":
            torch.cuda.synchronize()

    def close(self) -> None:
        pass


def bench_model(name: str, device: str, out: Path) -> list[dict[str, Any]]:
    spec = resolve_model(name)
    settings = merge_settings(list(spec.recipe.settings_layers(False)))
    source = replace(spec.source, options=settings.model_options)
    torch.manual_seed(0)
    model = instantiate(source).eval()
    folder = out / name
    (folder / "targets").mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    rng = np.random.default_rng(0)
    shape = tuple(spec.recipe.input_shape)
    np.save(folder / "calibration_inputs.npy", rng.normal(size=(64, *shape)).astype(np.float32))
    (folder / "profile.json").write_text(json.dumps({"source": to_plain(source), "input_shape": list(shape)}))
    profile = load_target("gpu-inductor" if device == "cuda" else "cpu-inductor")
    backend = InductorBackend()
    backend.check_target(profile)
    package_dir = folder / "targets" / profile.name
    package_dir.mkdir(exist_ok=True)
    graph = ExportedGraph("model.pt", "torch-float", "input", "logits", 0, "bench_gpu")
    started = time.perf_counter()
    artifact = backend.compile(graph, folder / "model.pt", profile, package_dir)
    compile_s = time.perf_counter() - started
    compiled = backend.load(artifact, package_dir / artifact.path, profile)
    eager = EagerRunner(model, device)
    x = rng.normal(size=(max(BATCHES), *shape)).astype(np.float32)
    max_diff = float(np.max(np.abs(compiled.run(x) - eager.run(x))))
    rows = []
    for batch in BATCHES:
        e = measure_latency(eager, x, batch, PROTOCOL)
        c = measure_latency(compiled, x, batch, PROTOCOL)
        rows.append(
            {
                "model": name,
                "batch": batch,
                "eager_p50_us": e.p50_us,
                "inductor_p50_us": c.p50_us,
                "ratio": c.p50_us / e.p50_us,
                "max_abs_diff": max_diff,
                "eager_clock": e.clock,
                "inductor_clock": c.clock,
                "compile_s": compile_s,
                "target": profile.name,
                "runner": compiled.description,
            }
        )
    compiled.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--out", type=Path, default=Path("build/bench-gpu"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"no CUDA device: torch {torch.__version__} sees no GPU (use --device cpu to check the script)"
        )
    rows = [row for name in MODELS for row in bench_model(name, args.device, args.out)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    where = torch.cuda.get_device_name(0) if args.device == "cuda" else "host CPU"
    print(f"\neager vs {rows[0]['target']} on {where}; torch {torch.__version__}; clock: {rows[0]['inductor_clock']}")
    print(f"{'model':<14} {'batch':>5} {'eager p50':>10} {'inductor p50':>12} {'ratio':>6} {'max|diff|':>9}")
    for r in rows:
        print(
            f"{r['model']:<14} {r['batch']:>5} {r['eager_p50_us']:>8.1f} us {r['inductor_p50_us']:>9.1f} us "
            f"{r['ratio']:>5.2f}x {r['max_abs_diff']:>9.2e}"
        )
    lenet = next(r for r in rows if r["model"] == "lenet_digits" and r["batch"] == 1)
    verdict = "met" if lenet["ratio"] <= 0.5 else "not met"
    print(f"goal: lenet_digits batch-1 p50 at most 0.5x eager: {lenet['ratio']:.2f}x, {verdict}")


if __name__ == "__main__":
    main()
