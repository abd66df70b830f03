"""hls4ml backend: the Backend class, its hooks, and the runner of a compiled emulation.

Takes the cleaned QONNX export of a fixed-point quantized model, writes an HLS
project for the target part (Vitis or Vivado HLS, clock, io type, strategy,
reuse factor from the profile), builds hls4ml's bit-accurate C++ emulation with
g++ through edgekit's tool runner (log file, timeout, checked exit code), and
runs it in worker processes (:mod:`edgekit.backends.hls4ml.emulator`).

The conversion itself is in :mod:`~edgekit.backends.hls4ml.convert` (with the graph checks of
:mod:`~edgekit.backends.hls4ml.graph_prep` and the fixed-point types of
:mod:`~edgekit.backends.hls4ml.precision`), the project files and the emulation build in
:mod:`~edgekit.backends.hls4ml.project`, the target's options in :mod:`~edgekit.backends.hls4ml.options`,
and what the report and the estimate read from hls4ml's model in :mod:`~edgekit.backends.hls4ml.layer_facts`.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.base import BackendBase, ModelFacts, ModelSize, RunnerBase
from edgekit.backends.hls4ml import legality
from edgekit.backends.hls4ml.convert import from_qonnx, from_torch, import_hls4ml, trace_worker
from edgekit.backends.hls4ml.emulator import EmulatorPool
from edgekit.backends.hls4ml.estimate import estimate
from edgekit.backends.hls4ml.layer_facts import layer_facts, layer_precisions
from edgekit.backends.hls4ml.options import Hls4mlOptions, check_distributed_arithmetic, size_problems
from edgekit.backends.hls4ml.precision import input_type
from edgekit.backends.hls4ml.project import PROJECT, PROJECT_DIR, build_emulator, final_folder, portable_config
from edgekit.backends.native_pool import without_main_script
from edgekit.core import provenance
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph
from edgekit.core.errors import BackendUnavailable, ConfigError, ToolchainError
from edgekit.core.lifetime import worker_pool
from edgekit.core.precision import QuantPlan
from edgekit.core.schema import build, to_plain
from edgekit.core.targets import TargetProfile

__all__ = ["Hls4mlBackend", "HlsEmulatorRunner"]


class HlsEmulatorRunner(RunnerBase):
    clock = "wall clock of the C++ emulation on the host CPU (not FPGA latency: see the estimates)"

    def __init__(self, pool: EmulatorPool, channels_last: bool, n_out: int, description: str) -> None:
        self._pool = pool
        self._channels_last = channels_last
        self._n_out = n_out
        self.description = description

    def run(self, x: np.ndarray) -> np.ndarray:
        if self._channels_last and x.ndim > 2:
            x = np.moveaxis(x, 1, -1)
        out = self._pool.run(x.reshape(len(x), -1))
        return out.astype(np.float32).reshape(len(x), self._n_out)

    def synchronize(self) -> None:
        """Each run returns when the workers have answered."""

    def close(self) -> None:
        self._pool.close()


class Hls4mlBackend(BackendBase):
    name = "hls4ml"
    float_graph = "torch"  # without --quant, hls4ml's PyTorch frontend converts the torch model itself
    traces_graph = True  # a tracing copy of the emulation, built in a worker process

    def unavailable_reason(self) -> str | None:
        try:
            import_hls4ml()
        except BackendUnavailable as err:
            return f"{err.message}; {err.hint}"
        if shutil.which("g++") is None:
            return "g++ is not on PATH: hls4ml's emulation is C++ (apt-get install g++)"
        return None

    def versions(self) -> dict[str, str]:
        # qonnx and onnx read the quantized graph; torch loads the float model (the float path); g++ builds
        return {
            **provenance.versions(("hls4ml", "qonnx", "onnx", "torch", "numpy")),
            "g++": provenance.tool_version("g++"),
        }

    def check_target(self, target: TargetProfile) -> None:
        build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
        if target.fpga is None:
            raise ConfigError(f"{target.source}: an hls4ml target needs an [fpga] table")
        if target.fpga.strategy == "distributed_arithmetic":
            check_distributed_arithmetic(target)

    def compile(self, graph: ExportedGraph, graph_path: Path, target: TargetProfile, out_dir: Path) -> CompiledArtifact:
        if graph.format not in ("qonnx-clean", "torch-float"):
            raise ConfigError(
                f"{target.name} compiles a cleaned QONNX graph or a float torch model, not {graph.format}"
            )
        assert target.fpga is not None
        hls4ml = import_hls4ml()
        project = out_dir / PROJECT_DIR
        top = graph.top_name or PROJECT  # the project, its top function and files: firmware/<top>.cpp
        common = {
            "output_dir": str(project),
            "project_name": top,
            "backend": target.fpga.hls_backend,
            "io_type": target.fpga.io_type,
            "part": target.fpga.part,
            "clock_period": target.fpga.clock_period_ns,
        }
        try:
            # hls4ml prints every layer it converts; keep that in a log, not in the user's (--json) stdout.
            with (
                warnings.catch_warnings(),
                (out_dir / "hls4ml_convert.log").open("w") as log,
                contextlib.redirect_stdout(log),
            ):
                warnings.simplefilter("ignore")
                if graph.format == "qonnx-clean":
                    hls_model, config, extra = from_qonnx(graph_path, target, common)
                else:
                    hls_model, config, extra = from_torch(graph_path, target, common)
                hls_model.write()
            model_file = "model.qonnx.onnx" if graph.format == "qonnx-clean" else "model.pt"
            shutil.copyfile(graph_path, project / model_file)
            portable_config(project, (final_folder(out_dir) / PROJECT_DIR).resolve(), model_file)
        except (ConfigError, ToolchainError):
            raise
        except Exception as err:  # hls4ml raises bare Exceptions for unsupported layers
            raise ToolchainError(
                f"hls4ml could not convert the model for {target.name}: {str(err).splitlines()[0][:300]}",
                hint="a layer hls4ml does not support; the message names it",
            ) from err
        options = build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
        build_emulator(project, out_dir / "build_lib.log", options.build_timeout_s)
        library = next(iter(sorted((project / "firmware").glob(f"{top}-*.so"))))
        n_in = int(np.prod(hls_model.get_input_variables()[0].shape))
        n_out = int(np.prod(hls_model.get_output_variables()[0].shape))
        self._smoke_test(library, top, n_in, n_out, out_dir / "build_lib.log")
        if graph.format == "torch-float":
            extra["saturated_logit_fraction"] = self._saturation(
                library, top, graph_path.parent / "calibration_inputs.npy", n_in, n_out, hls_model
            )
        info = {
            "hls4ml": hls4ml.__version__,
            "project": top,
            "path": "QONNX (bit-exact)" if graph.format == "qonnx-clean" else "PyTorch frontend (float)",
            "hls_backend": target.fpga.hls_backend,
            "part": target.fpga.part,
            "clock_period_ns": target.fpga.clock_period_ns,
            "io_type": target.fpga.io_type,
            "strategy": target.fpga.strategy,
            "reuse_factor": target.fpga.reuse_factor,
            "input_precision": input_type(config),
            "n_inputs": n_in,
            "n_outputs": n_out,
            "precisions": layer_precisions(hls_model),
            "estimate": to_plain(estimate(layer_facts(hls_model), target.fpga)),
            **extra,
        }
        return CompiledArtifact(
            target=target.name,
            backend=self.name,
            path=str(library.relative_to(out_dir)),
            input_name=graph.input_name,
            output_name=graph.output_name,
            info=info,
        )

    @staticmethod
    def _saturation(library: Path, top: str, inputs_path: Path, n_in: int, n_out: int, hls_model: Any) -> float:
        """The fraction of emulated logits on calibration data that sit at the output type's limits."""
        result = hls_model.get_output_variables()[0].type.precision
        integer, width = int(result.integer), int(result.width)
        largest = 2.0 ** (integer - 1) - 2.0 ** (integer - width)
        x = np.load(inputs_path)
        pool = EmulatorPool(library, top, n_in, n_out)
        try:
            y = pool.run(x.reshape(len(x), -1))
        finally:
            pool.close()
        return float(np.mean(np.abs(y) >= largest))

    @staticmethod
    def _smoke_test(library: Path, top: str, n_in: int, n_out: int, log: Path) -> None:
        pool = EmulatorPool(library, top, n_in, n_out, workers=1)
        try:
            pool.run(np.zeros((1, n_in)))
        except ToolchainError as err:
            raise ToolchainError(err.message, hint=err.hint, log_path=log) from err
        finally:
            pool.close()

    def quant_problems(self, plan: QuantPlan, model: ModelFacts, target: TargetProfile) -> list[str]:
        return legality.quant_problems(plan, model, target)

    def check_size(self, target: TargetProfile, quantized: bool, size: ModelSize) -> None:
        """io_parallel writes one C++ statement per copied window element: refused when g++ would take too long."""
        if target.fpga is None or target.fpga.io_type != "io_parallel":
            return
        problems = size_problems(target, size.window_copies(quantized))
        if problems:
            raise ConfigError(
                "the model's convolutions are too large for the target(s):\n  " + "\n  ".join(problems),
                hint="build it with io_stream (fpga-xczu7ev-stream: line buffers instead of copied windows) or try "
                "its tiny variant (--tiny); to build it anyway, raise backend_options.max_window_copies and "
                "backend_options.build_timeout_s in a copy of the profile and pass its path (-t ./my-fpga.toml)",
            )

    def resources(self, artifact: CompiledArtifact) -> tuple[dict[str, float], str] | None:
        """The estimate's totals and latency, for the resource and latency budget gates."""
        est = artifact.info.get("estimate")
        if not est:
            return None
        keys = ("lut", "ff", "dsp", "bram_18k", "latency_ns")
        return {k: float(est[k]) for k in keys}, "estimate"

    def trace(self, graph_path: Path, target: TargetProfile, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        """Every layer's output for ``x`` (a few samples), from a tracing build made in a worker process.

        Only for the bit-exact QONNX path; used to name the first layer that departs from brevitas.
        """
        with worker_pool(1) as pool:
            with without_main_script():
                future = pool.submit(trace_worker, str(graph_path), to_plain(target), x)
            try:
                return future.result()
            except BrokenProcessPool as err:
                raise ToolchainError("the hls4ml tracing build crashed its worker process") from err

    def load(self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile) -> HlsEmulatorRunner:
        if not artifact_path.is_file():
            raise ToolchainError(f"the emulation library {artifact_path} is missing", hint="re-run edgekit compile")
        options = build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
        info = artifact.info
        top = str(info.get("project", PROJECT))  # builds before top names were hls4ml's default project
        pool = EmulatorPool(artifact_path, top, int(info["n_inputs"]), int(info["n_outputs"]),
                            workers=options.emulation_workers or None)  # fmt: skip
        description = (
            f"hls4ml {info['hls4ml']} C++ emulation ({info['hls_backend']}, {info['io_type']}, "
            f"{info['strategy']}, reuse {info['reuse_factor']}), {pool.workers} worker processes"
        )
        return HlsEmulatorRunner(pool, bool(info["channels_last_input"]), int(info["n_outputs"]), description)
