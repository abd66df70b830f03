"""PyTorch-native compiled target: ``torch.export`` + AOTInductor packages (``.pt2``), on CUDA or the CPU.

The float model (or the pruned float model) is exported with a dynamic batch
axis and compiled ahead of time by Inductor into one package file. Inductor and
its generated C++/CUDA can kill a process without an exception (a segmentation
fault inside ``aoti_load_package`` was seen on CUDA), so the export, the
compile and the first load run in a spawned worker process: a crash there is a
ToolchainError with the log, and the caller and earlier artifacts survive. The
runner loads the package once it has loaded cleanly in the worker.

On CUDA, ``cuda_graphs = true`` captures one call per batch size into a CUDA
graph and replays it: at these sizes the per-kernel launch cost is most of the
time (a one-op graph replay costs 8 us on an H200, an eager MLP call 75 us).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.base import BackendBase, RunnerBase
from edgekit.backends.cuda_device import cuda_missing_reason
from edgekit.backends.native_pool import run_isolated
from edgekit.core import provenance
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph
from edgekit.core.errors import BackendUnavailable, ConfigError, EdgekitError, InputError, ToolchainError
from edgekit.core.schema import build
from edgekit.core.targets import TargetProfile

__all__ = ["InductorBackend", "InductorOptions"]

PACKAGE = "model.pt2"
LOG = "inductor.log"
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class InductorOptions:
    """``[backend_options]`` of an inductor target."""

    max_batch: int = field(default=4096, metadata={"min": 2})  # the dynamic batch axis covers 1..max_batch
    cuda_graphs: bool = False  # CUDA only: replay one captured graph per batch size
    max_autotune: bool = False  # Inductor's kernel autotuning (minutes, not seconds)
    build_timeout_s: float = field(default=1800.0, metadata={"min": 1.0})


def _options(target: TargetProfile) -> InductorOptions:
    return build(InductorOptions, target.backend_options, target.source, "backend_options")


def _device(target: TargetProfile) -> str:
    return "cuda" if target.family == "gpu" else "cpu"


def _build(source: dict[str, Any], weights: str, sample: np.ndarray, device: str, precision: str,
           options: dict[str, Any], out_dir: str) -> dict[str, Any]:  # fmt: skip
    """In the worker: export, compile, package, load once, and compare with eager on ``sample``."""
    import torch

    from edgekit.core.artifacts import ModelSource
    from edgekit.core.schema import build as build_artifact
    from edgekit.model.torch_model import load_module

    log = Path(out_dir) / LOG
    with log.open("a", buffering=1) as fh:
        # The worker is thrown away afterwards: point its stdout/stderr file descriptors at the log, so Python's
        # prints and the C++ compiler Inductor starts both land there.
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        dtype = getattr(torch, DTYPES[precision])
        model: Any
        if source["kind"] == "exported":  # a model object of the parent's session, handed over as its graph
            model = torch.export.load(source["location"]).module().to(device=device, dtype=dtype)
        else:
            model = load_module(build_artifact(ModelSource, source), Path(weights)).to(device=device, dtype=dtype)
        x = torch.from_numpy(sample).to(device=device, dtype=dtype)
        batch = torch.export.Dim("batch", min=1, max=int(options["max_batch"]))
        started = time.perf_counter()
        # Exported outside no_grad: exporting, packaging and loading all inside no_grad crashed on CUDA.
        exported = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
        export_s = time.perf_counter() - started
        inductor_configs = {"max_autotune": bool(options["max_autotune"])}
        started = time.perf_counter()
        with torch.no_grad():
            path = torch._inductor.aoti_compile_and_package(
                exported, package_path=str(Path(out_dir) / PACKAGE), inductor_configs=inductor_configs
            )
        compile_s = time.perf_counter() - started
        started = time.perf_counter()
        loaded = torch._inductor.aoti_load_package(path)
        with torch.no_grad():
            got = loaded(x).float()
            expected = model(x).float()
        load_s = time.perf_counter() - started
        print(
            f"edgekit: export {export_s:.1f} s, compile {compile_s:.1f} s, first load and run {load_s:.1f} s",
            flush=True,
        )
    facts = {
        "torch": torch.__version__,
        "export_s": export_s,
        "compile_s": compile_s,
        "first_load_s": load_s,
        "self_check_max_abs_diff_vs_eager": float((got - expected).abs().max()),
        "self_check_samples": len(sample),
    }
    if device == "cuda":
        facts["cuda_device"] = torch.cuda.get_device_name(0)
        facts["cuda_capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        facts["cuda"] = torch.version.cuda
    return facts


def _export_object(source: dict[str, Any], weights: Path, sample: np.ndarray, options: InductorOptions,
                   out_dir: Path) -> str:  # fmt: skip
    """A model object (``edgekit.compile(net)``) as a saved ``torch.export`` program, on the CPU in fp32."""
    import torch

    from edgekit.core.artifacts import ModelSource
    from edgekit.core.schema import build as build_artifact
    from edgekit.model.torch_model import load_module

    model = load_module(build_artifact(ModelSource, source), weights)
    batch = torch.export.Dim("batch", min=1, max=int(options.max_batch))
    try:
        program = torch.export.export(model, (torch.from_numpy(sample),), dynamic_shapes=({0: batch},))
    except Exception as err:  # torch.export raises many types for what it cannot trace
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise ToolchainError(
            f"torch.export could not trace the model object: {type(err).__name__}: {first}",
            hint="an operation torch.export cannot trace (Python control flow on tensor values)",
        ) from err
    path = out_dir / "object.pt2"
    torch.export.save(program, str(path))
    return str(path.resolve())


class InductorRunner(RunnerBase):
    device_timer = True  # CUDA events on a GPU, the wall clock around one call on the CPU

    def __init__(self, model: Any, device: str, precision: str, max_batch: int, cuda_graphs: bool, description: str):
        import torch

        self._torch = torch
        self._model = model
        self._device = device
        self._dtype = getattr(torch, DTYPES[precision])
        self._max_batch = max_batch
        self._graphs: dict[int, tuple[Any, Any, Any]] = {}  # batch size -> (graph, static input, static output)
        self._cuda_graphs = cuda_graphs and device == "cuda"
        self.description = description
        self.clock = (
            "CUDA events around the forward only (device time of one call; input already on the GPU, no copies)"
            if device == "cuda"
            else "wall clock (time.perf_counter_ns), host CPU"
        )

    def _call(self, x: Any) -> Any:
        if not self._cuda_graphs:
            return self._model(x)
        torch = self._torch
        captured = self._graphs.get(len(x))
        if captured is None:
            static_in = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up on a side stream before capture, as CUDA graphs require
                    self._model(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._model(static_in)
            captured = self._graphs[len(x)] = (graph, static_in, static_out)
        graph, static_in, static_out = captured
        static_in.copy_(x)
        graph.replay()
        return static_out

    def _input(self, x: np.ndarray) -> Any:
        if not 1 <= len(x) <= self._max_batch:
            raise InputError(
                f"batch of {len(x)} is outside the package's dynamic batch range 1..{self._max_batch}",
                hint="raise backend_options.max_batch in the target profile and rebuild, or use smaller batches",
            )
        return self._torch.from_numpy(np.ascontiguousarray(x)).to(device=self._device, dtype=self._dtype)

    def run(self, x: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            out = self._call(self._input(x))
            return np.asarray(out.float().cpu().numpy())

    def timed_run(self, x: np.ndarray) -> float:
        """Device time of one call in microseconds (CUDA events); wall clock on the CPU."""
        from edgekit.core.latency import call_time_us

        with self._torch.no_grad():
            xt = self._input(x)
            return call_time_us(lambda: self._call(xt), self._device == "cuda")

    def synchronize(self) -> None:
        if self._device == "cuda":
            self._torch.cuda.synchronize()

    def close(self) -> None:
        self._graphs.clear()
        self._model = None


class InductorBackend(BackendBase):
    name = "inductor"
    float_graph = "torch"  # compiles the float torch model, not an ONNX graph

    def unavailable_reason(self) -> str | None:
        try:
            import torch._inductor  # noqa: F401
        except ImportError as err:
            return f"torch's Inductor cannot be imported: {err}"
        return None

    def versions(self) -> dict[str, str]:
        import torch

        # Inductor writes C++ that g++ compiles on the CPU; CUDA kernels depend on the CUDA build
        return {
            **provenance.versions(("torch",)),
            "cuda": str(torch.version.cuda),
            "g++": provenance.tool_version("g++"),
        }

    def check_target(self, target: TargetProfile) -> None:
        _options(target)
        if target.precision not in DTYPES:
            raise ConfigError(
                f"{target.source}: the inductor backend compiles fp32, fp16 or bf16 models, not {target.precision!r}",
                hint="INT8 runs through the onnxruntime or tensorrt backends (their *-int8 targets)",
            )
        if target.family == "fpga":
            raise ConfigError(f"{target.source}: the inductor backend runs on a CPU or a GPU, not an FPGA")
        if _device(target) == "cuda":
            reason = cuda_missing_reason()
            if reason:
                raise BackendUnavailable(
                    reason, hint="run on a machine with an NVIDIA GPU and CUDA torch; cpu-inductor builds the same "
                    "kind of package for the CPU",
                )  # fmt: skip

    def compile(self, graph: ExportedGraph, graph_path: Path, target: TargetProfile, out_dir: Path) -> CompiledArtifact:
        import json

        if graph.format != "torch-float":
            raise ConfigError(f"{target.name} compiles the float torch model, not a {graph.format} graph")
        options = _options(target)
        device = _device(target)
        profile = json.loads((graph_path.parent / "profile.json").read_text())
        sample = np.load(graph_path.parent / "calibration_inputs.npy")[: min(64, options.max_batch)]
        settings = {"max_batch": options.max_batch, "max_autotune": options.max_autotune}
        source = profile["source"]
        if source["kind"] == "object":  # the worker is a new process, without the session's object: its graph
            source = {"kind": "exported", "location": _export_object(source, graph_path, sample, options, out_dir)}
        args = (source, str(graph_path), sample, device, target.precision, settings, str(out_dir.resolve()))
        what = "AOTInductor (export, compile and first load of the package)"
        try:
            facts = run_isolated(_build, *args, timeout_s=options.build_timeout_s, what=what, log_path=out_dir / LOG)
        except EdgekitError:
            raise
        except Exception as err:  # torch.export and Inductor raise many types for what they cannot take
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            raise ToolchainError(
                f"torch.export / AOTInductor could not compile {target.name}: {type(err).__name__}: {first}",
                log_path=out_dir / LOG,
                hint="an operation torch.export cannot trace; the log has the details",
            ) from err
        info = {
            "device": device,
            "precision": target.precision,
            "max_batch": options.max_batch,
            "cuda_graphs": options.cuda_graphs and device == "cuda",
            "max_autotune": options.max_autotune,
            **facts,
        }
        return CompiledArtifact(target=target.name, backend=self.name, path=PACKAGE, input_name=graph.input_name,
                                output_name=graph.output_name, info=info)  # fmt: skip

    def load(self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile) -> InductorRunner:
        import torch

        if not artifact_path.is_file():
            raise InputError(f"the AOTInductor package {artifact_path} is missing", hint="re-run edgekit compile")
        info = artifact.info
        device = str(info["device"])
        if device == "cuda":
            reason = cuda_missing_reason()
            if reason:
                raise BackendUnavailable(
                    reason, hint="validate this build on the machine with the GPU it was built for"
                )
            here = torch.cuda.get_device_name(0)
            if here != info.get("cuda_device"):
                raise InputError(
                    f"{artifact_path} was compiled for {info.get('cuda_device')} (CUDA {info.get('cuda')}); "
                    f"this machine has {here} (CUDA {torch.version.cuda})",
                    hint="rebuild it here: edgekit compile ... --force",
                )
        try:
            model = torch._inductor.aoti_load_package(str(artifact_path))
        except Exception as err:  # torch raises RuntimeError and others for a corrupt or foreign package
            raise InputError(
                f"{artifact_path} cannot be loaded as an AOTInductor package: {str(err).splitlines()[0][:300]}",
                hint="the file is corrupt or from another torch version; rebuild with edgekit compile --force",
            ) from err
        where = info.get("cuda_device", "CPU") if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        graphs = ", CUDA graphs" if info.get("cuda_graphs") else ""
        description = f"AOTInductor package (torch {info['torch']}), {info['precision']}, {where}{graphs}"
        return InductorRunner(model, device, str(info["precision"]), int(info["max_batch"]),
                              bool(info.get("cuda_graphs")), description)  # fmt: skip
