"""The hls4ml FPGA target: edgekit's overhead over bare hls4ml, the cached rebuild, parallel emulation.

    python bench/bench_hls4ml.py [--model jet_tagger] [--samples 20000] [--out build/bench-hls4ml]

All three ratios are measured in one run on this machine:

1. edgekit's FPGA compile stage (convert, write, g++ build, a smoke run in a worker)
   vs bare hls4ml ``convert_from_onnx_model`` + ``compile()`` of the same cleaned
   QONNX graph with the same configuration (goal <= 1.5);
2. the compile stage of an unchanged rebuild (cache hit) vs the first build (goal <= 0.1);
3. emulation throughput, in two like-for-like steps: edgekit with one worker
   process vs hls4ml's single-process ``predict`` (the same library, the same
   samples: the difference is per-call overhead of the two Python loops, not
   parallelism), then all workers vs one worker (the parallelism alone; goal
   >= 1.7 on 2 cores). Their product is the end-to-end speedup.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from edgekit.backends.hls4ml.convert import qonnx_config
from edgekit.backends.hls4ml.emulator import EmulatorPool
from edgekit.backends.hls4ml.project import PROJECT
from edgekit.core.progress import configure
from edgekit.core.targets import load_target
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

TARGET = "fpga-xcvu13p"


def _compile_stage_s(manifest: dict) -> tuple[float, bool]:  # type: ignore[type-arg]
    stage = next(s for s in manifest["stages"] if s["directory"] == f"targets/{TARGET}")
    return float(stage["wall_s"]), bool(stage["cached"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default="jet_tagger")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=Path("build/bench-hls4ml"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    request = CompileRequest(args.model, (TARGET,), out=args.out / args.model, quant="w6a8")

    first = compile_model(request)
    first_s, _ = _compile_stage_s(first.manifest)
    second = compile_model(request)
    cached_s, was_cached = _compile_stage_s(second.manifest)
    assert was_cached, "the second compile should have reused the compile stage"

    import hls4ml  # the bare baseline calls hls4ml directly
    from qonnx.core.modelwrapper import ModelWrapper

    graph = first.build_dir / "export-fixed" / "model.qonnx.clean.onnx"
    target = load_target(TARGET)
    assert target.fpga is not None
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        model = ModelWrapper(str(graph))
        config = qonnx_config(model, target)
        bare = hls4ml.converters.convert_from_onnx_model(
            model, output_dir=tmp, project_name=PROJECT, hls_config=config, backend=target.fpga.hls_backend,
            io_type=target.fpga.io_type, part=target.fpga.part, clock_period=target.fpga.clock_period_ns,
        )  # fmt: skip
        bare.compile()
        bare_s = time.perf_counter() - started

        x = np.load(first.build_dir / "float" / "golden_inputs.npy")[: args.samples]
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1) if x.ndim == 4 else x)
        started = time.perf_counter()
        bare_out = np.asarray(bare.predict(x)).reshape(len(x), -1)
        predict_s = time.perf_counter() - started

    artifact = first.manifest["artifacts"]["compiled"][TARGET]
    library = first.build_dir / "targets" / TARGET / artifact["path"]
    n_in, n_out = artifact["info"]["n_inputs"], artifact["info"]["n_outputs"]

    def timed(workers: int | None) -> tuple[float, int]:
        pool = EmulatorPool(library, artifact["info"]["project"], n_in, n_out, workers=workers)
        pool.run(x[:64].reshape(64, -1))  # start the workers and load the library before timing
        started = time.perf_counter()
        out = pool.run(x.reshape(len(x), -1))
        seconds = time.perf_counter() - started
        count = pool.workers
        pool.close()
        assert np.array_equal(out.astype(np.float32), bare_out.astype(np.float32)), "both emulations must agree"
        return seconds, count

    single_s, _ = timed(1)
    pool_s, workers = timed(None)

    rows = {
        "edgekit_compile_stage_s": first_s,
        "bare_hls4ml_convert_compile_s": bare_s,
        "overhead_ratio": first_s / bare_s,
        "cached_compile_stage_s": cached_s,
        "cached_ratio": cached_s / first_s,
        "samples": len(x),
        "hls4ml_predict_s": predict_s,
        "edgekit_one_worker_s": single_s,
        "edgekit_workers_s": pool_s,
        "workers": workers,
        "one_worker_vs_predict": predict_s / single_s,
        "workers_vs_one_worker": single_s / pool_s,
        "emulation_speedup": predict_s / pool_s,
    }
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    print(f"machine: {machine}; {args.model} w6a8 on {TARGET}, hls4ml {hls4ml.__version__}\n")
    print(f"edgekit compile stage      {first_s:7.2f} s   bare hls4ml convert+compile {bare_s:6.2f} s"
          f"   ratio {rows['overhead_ratio']:.2f} (goal <= 1.5)")  # fmt: skip
    print(f"cached rebuild, compile    {cached_s:7.3f} s   first build {first_s:6.2f} s"
          f"                  ratio {rows['cached_ratio']:.3f} (goal <= 0.1)")  # fmt: skip
    print(f"emulation, 1 worker        {single_s:7.2f} s   hls4ml predict {predict_s:6.2f} s"
          f"  ({len(x)} samples) ratio {rows['one_worker_vs_predict']:.2f}x (per-call overhead only)")  # fmt: skip
    print(f"emulation, {workers} workers       {pool_s:7.2f} s   1 worker {single_s:6.2f} s"
          f"        ratio {rows['workers_vs_one_worker']:.2f}x (parallelism; goal >= 1.7)")  # fmt: skip
    print(f"end to end: {workers} workers vs hls4ml predict {rows['emulation_speedup']:.2f}x")


if __name__ == "__main__":
    main()
