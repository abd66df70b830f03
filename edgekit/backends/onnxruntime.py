"""ONNX Runtime backend: the only module that imports onnxruntime.

"Compiling" runs ONNX Runtime's graph optimizer once and saves the optimized
graph, so the artifact on disk is what the session executes, and the runner
loads it with optimizations off (they were already applied).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekit.backends.base import BackendBase, ModelFacts, RunnerBase
from edgekit.core import provenance
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph
from edgekit.core.errors import BackendUnavailable, ConfigError, InputError, ToolchainError
from edgekit.core.precision import QuantPlan
from edgekit.core.progress import say
from edgekit.core.schema import build
from edgekit.core.targets import TargetProfile

__all__ = ["OnnxRuntimeBackend", "OnnxRuntimeOptions", "resolve_providers", "trace_quantized"]

ARTIFACT_NAME = "model.ort.onnx"
QCDQ_DISABLED_OPTIMIZERS = ("DoubleQDQPairsRemover",)  # see OnnxRuntimeBackend.compile


@dataclass(frozen=True)
class OnnxRuntimeOptions:
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    # Execution providers in order of preference; "auto": TensorRT, then CUDA, then the CPU, as installed.
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    inter_op_threads: int = field(default=1, metadata={"min": 0})


AUTO_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def resolve_providers(requested: tuple[str, ...], available: list[str]) -> list[str]:
    """The providers to ask for: ``auto`` becomes the installed ones of TensorRT, CUDA and the CPU, in that order."""
    resolved: list[str] = []
    for name in requested:
        for provider in [p for p in AUTO_ORDER if p in available] if name == "auto" else [name]:
            if provider not in resolved:
                resolved.append(provider)
    return resolved


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailable(
            "onnxruntime is not installed",
            hint="pip install onnxruntime (it is a core dependency of edgekit: reinstall edgekit)",
        ) from err
    return onnxruntime


def _options(target: TargetProfile) -> OnnxRuntimeOptions:
    return build(OnnxRuntimeOptions, target.backend_options, target.source, "backend_options")


class OnnxRuntimeRunner(RunnerBase):
    def __init__(self, session: Any, input_name: str, output_name: str, description: str) -> None:
        self._session = session
        self._input = input_name
        self._output = output_name
        self.description = description
        # Every clock times one call; on a GPU execution provider that call includes the copies to and from it.
        on_gpu = any(p != "CPUExecutionProvider" for p in session.get_providers())
        self.clock = (
            "wall clock (time.perf_counter_ns) around one call, host arrays in and out (GPU copies included)"
            if on_gpu
            else "wall clock (time.perf_counter_ns), host CPU"
        )

    def run(self, x: np.ndarray) -> np.ndarray:
        result = self._session.run([self._output], {self._input: x})
        return np.asarray(result[0])

    def synchronize(self) -> None:
        """ONNX Runtime's CPU run() returns when the work is done."""

    def close(self) -> None:
        self._session = None


class OnnxRuntimeBackend(BackendBase):
    name = "onnxruntime"
    brevitas_int8 = True  # a brevitas network's QCDQ export runs as it is, held exact to its forward
    traces_artifact = True  # reads every activation quantizer (or ReLU) of the compiled file

    def unavailable_reason(self) -> str | None:
        try:
            _ort()
        except BackendUnavailable as err:
            return str(err)
        return None

    def versions(self) -> dict[str, str]:
        return provenance.versions(("onnxruntime", "onnx", "numpy"))

    def quant_problems(self, plan: QuantPlan, model: ModelFacts, target: TargetProfile) -> list[str]:
        """QCDQ's QuantizeLinear holds int8 or uint8: at most 8 bits of weights or activations."""
        return [
            f"{layer.name}: {bits}-bit {what}: QuantizeLinear holds at most 8 bits (int8/uint8)"
            for layer in plan.deployed()
            for what, bits in (("weights", layer.weight_bits), ("activations", layer.activation_bits))
            if bits is not None and bits > 8
        ]

    def check_target(self, target: TargetProfile) -> None:
        options = _options(target)
        available = set(_ort().get_available_providers())
        missing = [p for p in options.providers if p not in available and p != "auto"]
        if missing:
            raise ConfigError(
                f"{target.source}: execution provider(s) {', '.join(missing)} are not in this onnxruntime",
                hint=f"available here: {', '.join(sorted(available))}",
            )
        if target.precision not in ("fp32", "int8"):
            raise ConfigError(
                f"{target.source}: the onnxruntime backend runs fp32 graphs and int8 QCDQ graphs, "
                f"not precision {target.precision!r}"
            )

    def _session_options(self, target: TargetProfile, level: str) -> Any:
        ort = _ort()
        options = _options(target)
        so = ort.SessionOptions()
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[level]
        so.intra_op_num_threads = target.cpu.threads if target.cpu else 0
        so.inter_op_num_threads = options.inter_op_threads
        so.log_severity_level = 3
        return so

    def compile(
        self,
        graph: ExportedGraph,
        graph_path: Path,
        target: TargetProfile,
        out_dir: Path,
    ) -> CompiledArtifact:
        ort = _ort()
        expected = "qcdq" if target.precision == "int8" else "onnx-float"
        if graph.format != expected:
            raise ConfigError(f"{target.name} ({target.precision}) runs a {expected} graph, not {graph.format}")
        options = _options(target)
        so = self._session_options(target, options.graph_optimization)
        unfused = _unfused_reasons(graph_path) if expected == "qcdq" else []
        if unfused:
            # Unfused, ONNX Runtime computes exactly the QCDQ arithmetic (the float ops between Q/DQ pairs);
            # only the Q/DQ fusions are off, not the other optimizations.
            so.add_session_config_entry("session.disable_quant_qdq", "1")
            if any(reason.startswith(SATURATION) for reason in unfused):
                say(
                    f"  note: {target.name}: ONNX Runtime's fused INT8 kernels are off ({unfused[-1]}); "
                    "weights of at most 7 bits (--quant w7a8) keep them exact on this CPU"
                )
        artifact_path = out_dir / ARTIFACT_NAME
        so.optimized_model_filepath = str(artifact_path)
        # ONNX Runtime's DoubleQDQPairsRemover (on from the "basic" level) drops a DQ -> Q pair between two
        # scales, the requantization that joins branches with one scale (torch.cat, a residual sum): the graph
        # then computes other numbers than the QCDQ arithmetic. It is off for every QCDQ graph.
        disabled = list(QCDQ_DISABLED_OPTIMIZERS) if expected == "qcdq" else []
        try:
            session = ort.InferenceSession(
                str(graph_path),
                so,
                providers=resolve_providers(options.providers, ort.get_available_providers()),
                disabled_optimizers=disabled,
            )
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ToolchainError(
                f"onnxruntime could not build a session from {graph_path}: {err}",
                hint="check the exported ONNX with onnx.checker; re-run with a fresh --out directory",
            ) from err
        info = {
            "providers": list(session.get_providers()),
            "provider_ran": session.get_providers()[0],
            "graph_optimization": options.graph_optimization,
            "qdq_fusion": f"off ({'; '.join(unfused)})" if unfused else "on",
            "disabled_optimizers": disabled,
            "intra_op_threads": so.intra_op_num_threads,
            "onnxruntime": ort.__version__,
        }
        return CompiledArtifact(
            target=target.name,
            backend=self.name,
            path=ARTIFACT_NAME,
            input_name=graph.input_name,
            output_name=graph.output_name,
            info=info,
        )

    def trace_artifact(
        self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile, x: np.ndarray
    ) -> list[tuple[str, str, np.ndarray]]:
        """Layer outputs of the compiled graph itself: activation quantizers (QCDQ) or ReLUs (a float graph)."""
        if target.precision == "int8":
            return trace_quantized(artifact_path, artifact.input_name, x)
        return trace_float(artifact_path, artifact.input_name, x)

    def load(self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile) -> OnnxRuntimeRunner:
        ort = _ort()
        if not artifact_path.is_file():
            raise InputError(
                f"compiled artifact {artifact_path} is missing",
                hint="re-run edgekit compile",
            )
        options = _options(target)
        # The saved graph is already optimized; optimizing again would only cost load time.
        so = self._session_options(target, "disable")
        try:
            session = ort.InferenceSession(
                str(artifact_path), so, providers=resolve_providers(options.providers, ort.get_available_providers())
            )
        except Exception as err:
            raise InputError(
                f"compiled artifact {artifact_path} cannot be loaded by onnxruntime: {err}",
                hint="the file is corrupt or from another onnxruntime version; re-run edgekit compile",
            ) from err
        providers = session.get_providers()
        return OnnxRuntimeRunner(
            session,
            artifact.input_name,
            artifact.output_name,
            f"onnxruntime {ort.__version__} ({providers[0]}, {so.intra_op_num_threads or 'all'} threads)",
        )


def _activation_quantizers(model: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(output, scale, zero point) of each QuantizeLinear of an activation, in graph order.

    Read at the QuantizeLinear rather than at a DequantizeLinear: onnxruntime's optimizer fuses the last ones
    into QGemm/QLinearConv, and may move signed zero points to unsigned (``qdq_s8_to_u8``).
    """
    from onnx import numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in consts:
            has_zero = len(node.input) > 2 and node.input[2] in consts
            zero: np.ndarray = consts[node.input[2]] if has_zero else np.zeros((), np.uint8)
            found.append((str(node.output[0]), consts[node.input[1]], zero))
    return found


def _traced_run(model: Any, input_name: str, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """Run ``model`` (already optimized: no further optimization) with ``names`` added to its outputs."""
    import onnx

    ort = _ort()
    known = {o.name for o in model.graph.output}
    for name in names:
        if name not in known:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return [np.asarray(v) for v in session.run(names, {input_name: x})]
    except Exception as err:  # onnxruntime's own error types
        raise InputError(
            f"onnxruntime cannot trace the compiled artifact: {err}", hint="re-run edgekit compile"
        ) from err


def _per_sample(array: np.ndarray) -> np.ndarray:
    """Flattened per sample, channels last for images (as :func:`edgekit.model.localize.torch_trace` records layers)."""
    if array.ndim > 2:
        array = np.moveaxis(array, 1, -1)
    return array.astype(np.float32).reshape(len(array), -1)


def _load_onnx(artifact_path: Path) -> Any:
    import onnx

    try:
        return onnx.load(str(artifact_path))
    except Exception as err:  # protobuf's DecodeError and OSError
        raise InputError(f"compiled artifact {artifact_path} is not a readable ONNX file: {err}") from err


def trace_float(artifact_path: Path, input_name: str, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """The output of every ReLU of a float ONNX Runtime artifact, for ``x``, in graph order.

    onnxruntime's optimizer fuses a ReLU into the layer before it (``FusedConv``, ``FusedGemm``, the NCHWc
    ``Conv``, each with ``activation="Relu"``); such a node's output is the ReLU's, back in plain NCHW
    after the ``ReorderOutput`` that follows a blocked-layout convolution.
    """
    from onnx import helper

    model = _load_onnx(artifact_path)
    reorder = {n.input[0]: str(n.output[0]) for n in model.graph.node if n.op_type == "ReorderOutput"}
    names = []
    for node in model.graph.node:
        activation = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "activation"), b"")
        if node.op_type == "Relu" or activation == b"Relu":
            names.append(reorder.get(str(node.output[0]), str(node.output[0])))
    values = _traced_run(model, input_name, x, names)
    return [(name, "relu", _per_sample(value)) for name, value in zip(names, values, strict=True)]


def trace_quantized(artifact_path: Path, input_name: str, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """The value every activation quantizer of a QCDQ artifact passes on, for ``x``.

    The first is the input quantizer ("input"), the others follow ReLUs ("relu"); values are dequantized,
    flattened per sample, channels last for images, as :func:`edgekit.model.localize.torch_trace` records them.
    """
    model = _load_onnx(artifact_path)
    quantizers = _activation_quantizers(model)
    values = _traced_run(model, input_name, x, [name for name, _, _ in quantizers])
    traced = []
    for index, ((name, scale, zero), value) in enumerate(zip(quantizers, values, strict=True)):
        array = (value.astype(np.float64) - zero.astype(np.float64)) * scale.astype(np.float64)
        traced.append((name, "input" if index == 0 else "relu", _per_sample(array)))
    return traced


# Operators whose fused Q/DQ kernel in ONNX Runtime does not compute what the QCDQ graph says (onnxruntime
# 1.32): QLinearAveragePool computed a 4x4 global average up to 0.58 away from brevitas, QLinearSigmoid's
# table was 1 LSB off; a LeakyReLU tagger's fused graph (QGemm, QLinearLeakyRelu) was 0.175 off its logits.
INEXACT_FUSED_OPS = ("AveragePool", "GlobalAveragePool", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid")
SATURATION = "int8 weights whose products can saturate"
# Without VNNI, x86 ONNX Runtime multiplies u8 activations by s8 weights with vpmaddubsw, which adds two
# products into a saturating int16 (ONNX Runtime's quantization docs describe it): the sum of the two
# largest |weights| feeding one output must be at most 128 (255 * 128 = 32640 fits, 255 * 129 does not).
PAIR_LIMIT = 128
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _unfused_reasons(graph_path: Path) -> list[str]:
    """Why the Q/DQ fusions must stay off for this QCDQ graph on this CPU; empty when fused kernels are exact."""
    import onnx

    model = onnx.load(str(graph_path))
    found = {n.op_type for n in model.graph.node}
    reasons = []
    inexact = [op for op in INEXACT_FUSED_OPS if op in found]
    if inexact:
        reasons.append(f"the graph has {', '.join(inexact)}")
    risky = saturating_layers(model)
    if risky and not has_vnni():
        shown = ", ".join(risky[:3]) + (f" and {len(risky) - 3} more" if len(risky) > 3 else "")
        reasons.append(f"{SATURATION} in ONNX Runtime's int16 pair sums on a CPU without VNNI: {shown}")
    return reasons


def has_vnni() -> bool:
    """Whether this x86 CPU has VNNI (AVX512-VNNI, AVX-VNNI or AMX), whose u8s8 products sum in 32 bits.

    True off x86 (the saturating int16 path is x86's) and where /proc/cpuinfo cannot be read is False.
    """
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return True
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def saturating_layers(model: Any) -> list[str]:
    """Weighted nodes of a QCDQ graph whose int8 weights could saturate an int16 sum of two u8*s8 products."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    producers = {out: n for n in model.graph.node for out in n.output}
    risky = []
    for node in model.graph.node:
        if node.op_type not in WEIGHTED_OPS or len(node.input) < 2:
            continue
        dq = producers.get(node.input[1])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        source, low, high = dq.input[0], None, None
        clip = producers.get(source)
        if clip is not None and clip.op_type == "Clip":  # brevitas' QCDQ: int8 codes -> Clip -> DequantizeLinear
            source = clip.input[0]
            low, high = (
                numpy_helper.to_array(inits[b]) if b in inits else None for b in [*clip.input[1:3], "", ""][:2]
            )
        if source not in inits or numpy_helper.to_array(inits[source]).dtype not in (np.int8, np.uint8):
            continue
        codes = np.clip(numpy_helper.to_array(inits[source]).astype(np.int64), low, high)
        if len(dq.input) > 2 and dq.input[2] in inits:  # zero points (brevitas' weights are symmetric: 0)
            zero = numpy_helper.to_array(inits[dq.input[2]]).astype(np.int64)
            if zero.ndim:
                axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
                zero = np.expand_dims(zero, [d for d in range(codes.ndim) if d != axis])
            codes = codes - zero
        if _worst_pair(np.abs(codes), node) > PAIR_LIMIT:
            risky.append(node.name or node.output[0])
    return risky


def _worst_pair(magnitude: np.ndarray, node: Any) -> int:
    """The largest sum of the two largest weights feeding one output of ``node``."""
    if node.op_type == "Conv":  # (M, C/g, kh, kw): one output channel per row
        columns = magnitude.reshape(magnitude.shape[0], -1)
    elif node.op_type == "ConvTranspose":  # (C, M/g, kh, kw): each output sums over the input channels
        columns = magnitude.reshape(magnitude.shape[0], -1).T
    elif node.op_type == "Gemm" and next((a.i for a in node.attribute if a.name == "transB"), 0):
        columns = magnitude.reshape(magnitude.shape[0], -1)  # (N, K)
    else:  # Gemm (K, N), MatMul (..., K, N)
        columns = np.moveaxis(magnitude, -2, -1).reshape(-1, magnitude.shape[-2])
    if columns.shape[1] < 2:
        return int(columns.max(initial=0))
    top = np.sort(columns, axis=1)[:, -2:]
    return int(top.sum(axis=1).max(initial=0))
