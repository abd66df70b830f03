"""TensorRT backend: the only module that imports tensorrt. Written against TensorRT 10.x and 11.x.

Engines are built from strongly typed networks, the only kind TensorRT 11 builds
(10.12 deprecated the precision flags): the graph carries the precision
(:mod:`edgekit.backends.tensorrt.graph` prepares the FP16/BF16 and INT8 graphs and checks
them with onnxruntime). From the target profile come the workspace limit, the
builder optimization level, 2:4 structured sparsity, the DLA core with GPU
fallback (Jetson), and one optimization profile for a dynamic batch. A timing
cache is kept in the target folder and reused by the next build of the target.

TensorRT and CUDA can abort the process, so the build and the first load of a
new engine run in a spawned worker process. The runner binds device buffers
(torch's CUDA allocator), runs ``execute_async_v3`` on a stream and times calls
with CUDA events. An engine only runs with the TensorRT version and the GPU model
it was built for; the runner checks both before deserializing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.base import BackendBase, ModelFacts, RunnerBase
from edgekit.backends.native_pool import run_isolated
from edgekit.core import provenance
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph
from edgekit.core.errors import BackendUnavailable, ConfigError, EdgekitError, InputError, ToolchainError
from edgekit.core.jsonio import write_json
from edgekit.core.precision import QuantPlan
from edgekit.core.schema import build, to_plain
from edgekit.core.targets import TargetProfile

__all__ = ["TensorRTBackend", "TensorRTOptions", "TrtBuildSettings", "build_settings", "unavailable_message"]

ENGINE = "model.engine"
GRAPH = "model.trt.onnx"
TIMING_CACHE = "timing.cache"
LAYERS = "layers.json"
LOG = "tensorrt.log"
GRAPH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "qdq-int8"}


@dataclass(frozen=True)
class TensorRTOptions:
    """``[backend_options]`` of a TensorRT target."""

    min_batch: int = field(default=1, metadata={"min": 1})
    opt_batch: int = field(default=1, metadata={"min": 1})  # the batch size the kernels are tuned for
    max_batch: int = field(default=4096, metadata={"min": 1})
    timing_cache: bool = True
    build_timeout_s: float = field(default=1800.0, metadata={"min": 1.0})


@dataclass(frozen=True)
class TrtBuildSettings:
    """Everything the builder is told, derived from the target profile (plain data, testable without TensorRT)."""

    graph: str  # float32, float16, bfloat16 or qdq-int8: what the strongly typed network computes in
    strongly_typed: bool
    workspace_bytes: int
    optimization_level: int
    sparse_weights: bool
    dla_core: int | None
    gpu_fallback: bool
    input_shapes: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]  # min, opt, max
    timing_cache: bool
    detailed_profiling: bool = True  # per-layer precision in the engine inspector's report


def unavailable_message() -> str:
    return "tensorrt is not installed"


INSTALL_HINT = (
    "on a machine with an NVIDIA GPU and driver: pip install 'edgekit[tensorrt]' (TensorRT 10 or 11 from "
    "NVIDIA's index); without one, gpu-inductor and cpu-onnxruntime-int8 run the same models"
)


def _trt() -> Any:
    try:
        import tensorrt
    except ImportError as err:
        raise BackendUnavailable(unavailable_message(), hint=INSTALL_HINT) from err
    return tensorrt


def _options(target: TargetProfile) -> TensorRTOptions:
    options = build(TensorRTOptions, target.backend_options, target.source, "backend_options")
    if not options.min_batch <= options.opt_batch <= options.max_batch:
        raise ConfigError(
            f"{target.source}: [backend_options] needs min_batch <= opt_batch <= max_batch, got "
            f"{options.min_batch}, {options.opt_batch}, {options.max_batch}"
        )
    return options


def build_settings(target: TargetProfile, input_shape: tuple[int, ...]) -> TrtBuildSettings:
    """The builder settings for ``target`` and a model whose samples have ``input_shape``."""
    if target.gpu is None:
        raise ConfigError(f"{target.source}: a TensorRT target needs a [gpu] table")
    if target.precision not in GRAPH_DTYPES:
        raise ConfigError(f"{target.source}: TensorRT takes precision fp32, fp16, bf16 or int8, not {target.precision}")
    options = _options(target)
    gpu = target.gpu
    if gpu.dla_core is not None and target.precision not in ("fp16", "int8"):
        raise ConfigError(f"{target.source}: the DLA runs FP16 or INT8 only, not {target.precision}")
    shapes = tuple((batch, *input_shape) for batch in (options.min_batch, options.opt_batch, options.max_batch))
    return TrtBuildSettings(
        graph=GRAPH_DTYPES[target.precision],
        strongly_typed=True,
        workspace_bytes=gpu.workspace_mib << 20,
        optimization_level=gpu.builder_optimization_level,
        sparse_weights=gpu.sparsity_2_4,
        dla_core=gpu.dla_core,
        gpu_fallback=gpu.gpu_fallback if gpu.dla_core is not None else False,
        input_shapes=shapes,  # type: ignore[arg-type]
        timing_cache=options.timing_cache,
    )


def _graph_for(settings: TrtBuildSettings, graph_path: Path, out_dir: Path) -> Path:
    """Write the graph the network is parsed from, and check it with onnxruntime against its source."""
    import onnx

    from edgekit.backends.tensorrt.graph import explicit_quantization_problems, prepare_qdq, to_half_precision

    source = onnx.load(str(graph_path))
    if settings.graph == "float32":
        prepared = source
    elif settings.graph == "qdq-int8":
        prepared = prepare_qdq(source)
        problems = explicit_quantization_problems(prepared)
        if problems:
            raise ConfigError(
                "the QCDQ graph breaks TensorRT's explicit-quantization rules:\n  " + "\n  ".join(problems),
                hint="quantize with the int8 family (--quant int8): 8-bit, symmetric, per-channel weights",
            )
    else:
        prepared = to_half_precision(source, settings.graph)
    try:
        onnx.checker.check_model(prepared, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:  # e.g. no bfloat16 Conv
        raise ConfigError(
            f"the {settings.graph} graph is not valid ONNX: {str(err).splitlines()[0][:300]}",
            hint="use an fp16 or fp32 target for this model",
        ) from err
    path = out_dir / GRAPH
    onnx.save(prepared, str(path))
    _check_with_onnxruntime(source, prepared, settings)
    return path


def _check_with_onnxruntime(source: Any, prepared: Any, settings: TrtBuildSettings) -> None:
    """The prepared graph computes what its source computes (exactly for INT8) on random inputs."""
    import onnxruntime as ort

    if settings.graph == "bfloat16":
        return  # onnxruntime's CPU kernels take no bfloat16 Gemm/Conv; the ONNX checker passed above
    shape = settings.input_shapes[1]
    x = np.random.default_rng(0).normal(size=(max(2, shape[0]), *shape[1:])).astype(np.float32)

    def run(model: Any) -> np.ndarray:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {model.graph.input[0].name: x})[0])

    expected, got = run(source), run(prepared)
    tolerance = 0.0 if settings.graph == "qdq-int8" else 2e-2 * max(1.0, float(np.abs(expected).max()))
    if not np.all(np.abs(got - expected) <= tolerance):
        raise ToolchainError(
            f"edgekit's {settings.graph} graph for TensorRT differs from its source on onnxruntime by "
            f"{float(np.abs(got - expected).max()):g} (allowed {tolerance:g})",
            hint="this is a bug in edgekit's graph preparation: please report it with the build folder",
        )


def _build_engine(graph: str, settings_plain: dict[str, Any], out_dir: str, old_cache: str | None) -> dict[str, Any]:
    """In the worker: parse, configure, build, serialize, then deserialize and run the engine once."""
    trt = _trt()
    settings = build(TrtBuildSettings, settings_plain)
    out = Path(out_dir)
    log_lines: list[str] = []

    class Logger(trt.ILogger):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            log_lines.append(f"[{severity}] {msg}")

    logger = Logger()
    try:
        builder = trt.Builder(logger)
        flags = 0
        strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if settings.strongly_typed and strongly is not None:
            flags |= 1 << int(strongly)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(graph):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise ToolchainError("TensorRT's ONNX parser refused the graph: " + "; ".join(errors)[:500])
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_bytes)
        config.builder_optimization_level = settings.optimization_level
        if settings.detailed_profiling:
            config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        if settings.sparse_weights:
            config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
        if settings.dla_core is not None:
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = settings.dla_core
            if settings.gpu_fallback:
                config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        cache = None
        if settings.timing_cache:
            cache = config.create_timing_cache(Path(old_cache).read_bytes() if old_cache else b"")
            config.set_timing_cache(cache, ignore_mismatch=True)
        profile = builder.create_optimization_profile()
        name = network.get_input(0).name
        low, opt, high = settings.input_shapes
        profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
        started = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        build_s = time.perf_counter() - started
        if serialized is None:
            raise ToolchainError("TensorRT could not build an engine (build_serialized_network returned None)")
        (out / ENGINE).write_bytes(bytes(serialized))
        if cache is not None:
            (out / TIMING_CACHE).write_bytes(bytes(config.get_timing_cache().serialize()))
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(bytes(serialized))
        if engine is None:
            raise ToolchainError("TensorRT could not deserialize the engine it had just built")
        inspector = engine.create_engine_inspector()
        layers = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
        write_json(out / LAYERS, layers)
        runner = _EngineRunner(trt, engine, name, tuple(settings.input_shapes[2][1:]))
        runner.run(np.zeros(settings.input_shapes[0], dtype=np.float32))  # the first load and run
        facts = {**_device_facts(trt), "build_s": build_s, "layers": _layer_summary(layers)}
    finally:
        (out / LOG).write_text("\n".join(log_lines) + "\n")
    return facts


def _device_facts(trt: Any) -> dict[str, Any]:
    import torch

    return {
        "tensorrt": str(trt.__version__),
        "gpu": torch.cuda.get_device_name(0),
        "compute_capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
        "cuda": str(torch.version.cuda),
    }


def _layer_summary(layers: dict[str, Any]) -> dict[str, Any]:
    """Layer count and the precisions TensorRT chose, from the inspector's JSON (its key names vary by release)."""
    entries = layers.get("Layers", []) if isinstance(layers, dict) else []
    precisions: dict[str, int] = {}
    for layer in entries:
        if not isinstance(layer, dict):
            continue
        found = {
            str(t.get("Format/Datatype", t.get("DataType", t.get("Datatype", "?"))))
            for key in ("Outputs", "Inputs")
            for t in layer.get(key, [])
            if isinstance(t, dict)
        }
        for value in found or {"?"}:
            precisions[value] = precisions.get(value, 0) + 1
    return {"count": len(entries), "tensor_formats": precisions}


class _EngineRunner:
    """Device buffers from torch's CUDA allocator, one execution context, CUDA-event timing."""

    def __init__(self, trt: Any, engine: Any, input_name: str, sample_shape: tuple[int, ...]) -> None:
        import torch

        self._torch = torch
        self._engine = engine
        self._context = engine.create_execution_context()
        self._input = input_name
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._output = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        low, _, high = engine.get_tensor_profile_shape(input_name, 0)
        self._batch_range = (int(low[0]), int(high[0]))
        self._stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]

    def _bind(self, x: np.ndarray) -> tuple[Any, Any]:
        """The input copied to the GPU and an output buffer, both bound to the context (on the runner's stream)."""
        torch = self._torch
        low, high = self._batch_range
        if not low <= len(x) <= high:
            raise InputError(
                f"batch of {len(x)} is outside the engine's optimization profile {low}..{high}",
                hint="change backend_options min_batch/max_batch in the target profile and rebuild",
            )
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).cuda()
        self._context.set_input_shape(self._input, tuple(xt.shape))
        shape = tuple(self._context.get_tensor_shape(self._output))
        out = torch.empty(shape, dtype=torch.float32, device="cuda")
        self._context.set_tensor_address(self._input, xt.data_ptr())
        self._context.set_tensor_address(self._output, out.data_ptr())
        return xt, out

    def _execute(self) -> None:
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise ToolchainError("TensorRT's execute_async_v3 reported a failure")

    def run(self, x: np.ndarray) -> np.ndarray:
        with self._torch.cuda.stream(self._stream):
            _, out = self._bind(x)
            self._execute()
        self._stream.synchronize()
        return np.asarray(out.cpu().numpy())

    def timed_run(self, x: np.ndarray) -> float:
        """Device time of ``execute_async_v3`` alone: the host-to-device copy is enqueued before the first event."""
        torch = self._torch
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(self._stream):
            buffers = self._bind(x)  # noqa: F841 (kept alive until the call has run)
            begin.record(self._stream)
            self._execute()
            end.record(self._stream)
        end.synchronize()
        return float(begin.elapsed_time(end)) * 1e3


class TensorRTRunner(RunnerBase):
    device_timer = True
    clock = "CUDA events around execute_async_v3 only (device time of one call; input already on the GPU, no copies)"

    def __init__(self, runner: _EngineRunner, description: str) -> None:
        self._runner = runner
        self.description = description

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._runner.run(x)

    def timed_run(self, x: np.ndarray) -> float:
        return self._runner.timed_run(x)

    def synchronize(self) -> None:
        self._runner._stream.synchronize()

    def close(self) -> None:
        self._runner = None  # type: ignore[assignment]


class TensorRTBackend(BackendBase):
    name = "tensorrt"

    def unavailable_reason(self) -> str | None:
        try:
            _trt()
        except BackendUnavailable as err:
            return f"{err.message}; {err.hint}"
        return None

    def versions(self) -> dict[str, str]:
        # onnx and onnxruntime prepare and check the graph TensorRT builds from
        return {**provenance.versions(("onnx", "onnxruntime")), "tensorrt": str(_trt().__version__)}

    def quant_problems(self, plan: QuantPlan, model: ModelFacts, target: TargetProfile) -> list[str]:
        """TensorRT's explicit quantization takes signed 8-bit Q/DQ pairs only."""
        problems = []
        for layer in plan.deployed():
            if layer.weight_bits is not None and layer.weight_bits != 8:
                problems.append(f"{layer.name}: {layer.weight_bits}-bit weights: TensorRT INT8 takes 8-bit weights")
            if layer.activation_bits != 8:
                problems.append(
                    f"{layer.name}: {layer.activation_bits}-bit activations: TensorRT INT8 takes 8-bit activations"
                )
            if not layer.activation_signed:
                problems.append(f"{layer.name}: unsigned activations: TensorRT's Q/DQ layers are signed INT8")
        return problems

    def check_target(self, target: TargetProfile) -> None:
        build_settings(target, (1,))
        from edgekit.backends.cuda_device import cuda_missing_reason

        reason = cuda_missing_reason()
        if reason:
            raise BackendUnavailable(reason, hint="TensorRT engines build and run on an NVIDIA GPU only")

    def compile(self, graph: ExportedGraph, graph_path: Path, target: TargetProfile, out_dir: Path) -> CompiledArtifact:
        import onnx

        expected = "qcdq" if target.precision == "int8" else "onnx-float"
        if graph.format != expected:
            raise ConfigError(f"{target.name} ({target.precision}) builds from a {expected} graph, not {graph.format}")
        model = onnx.load(str(graph_path), load_external_data=False)
        dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:]
        settings = build_settings(target, tuple(int(d) for d in dims))
        out_dir = out_dir.resolve()
        prepared = _graph_for(settings, graph_path, out_dir)
        previous = out_dir.parent / target.name / TIMING_CACHE  # the last build of this target, if any
        old_cache = str(previous) if settings.timing_cache and previous.is_file() else None
        what = "TensorRT (engine build and first load)"
        try:
            args = (str(prepared), to_plain(settings), str(out_dir), old_cache)
            timeout = _options(target).build_timeout_s
            facts = run_isolated(_build_engine, *args, timeout_s=timeout, what=what, log_path=out_dir / LOG)
        except EdgekitError as err:
            raise ToolchainError(err.message, log_path=out_dir / LOG, hint=err.hint) from err
        info = {"settings": to_plain(settings), "graph": GRAPH, "timing_cache_reused": old_cache is not None, **facts}
        return CompiledArtifact(target=target.name, backend=self.name, path=ENGINE, input_name=graph.input_name,
                                output_name=graph.output_name, info=info)  # fmt: skip

    def load(self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile) -> TensorRTRunner:
        trt = _trt()
        from edgekit.backends.cuda_device import cuda_missing_reason

        reason = cuda_missing_reason()
        if reason:
            raise BackendUnavailable(reason, hint="run the engine on the GPU it was built for")
        if not artifact_path.is_file():
            raise InputError(f"the TensorRT engine {artifact_path} is missing", hint="re-run edgekit compile")
        info = artifact.info
        here = _device_facts(trt)
        for key in ("tensorrt", "gpu", "compute_capability"):
            if info.get(key) != here[key]:
                raise InputError(
                    f"{artifact_path} was built for {info.get('gpu')} (compute {info.get('compute_capability')}) "
                    f"with TensorRT {info.get('tensorrt')}; this is {here['gpu']} (compute "
                    f"{here['compute_capability']}) with TensorRT {here['tensorrt']}",
                    hint="engines are tied to one GPU model and TensorRT version: rebuild with edgekit compile --force",
                )
        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        engine = runtime.deserialize_cuda_engine(artifact_path.read_bytes())
        if engine is None:
            raise InputError(
                f"TensorRT could not deserialize {artifact_path}", hint="rebuild it: edgekit compile --force"
            )
        settings = info["settings"]
        runner = _EngineRunner(trt, engine, artifact.input_name, tuple(settings["input_shapes"][2][1:]))
        where = f"DLA core {settings['dla_core']}" if settings["dla_core"] is not None else here["gpu"]
        description = f"TensorRT {here['tensorrt']} engine, {settings['graph']}, {where}"
        return TensorRTRunner(runner, description)
