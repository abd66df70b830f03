"""Each compiled target held to its references: golden vectors read back, every runner evaluated, the first
diverging layer of a target that departs named, and testbench vectors written for bit-exact targets."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends import get_backend
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph, FloatModel, QuantizedModel
from edgekit.core.builddir import BuildDir
from edgekit.core.config import Settings
from edgekit.core.errors import EdgekitError, InputError
from edgekit.core.progress import say
from edgekit.core.results import LayerError, TargetResult
from edgekit.core.targets import TargetProfile
from edgekit.model.torch_model import TorchRunner, load_float_model
from edgekit.stages.validate import (
    GoldenSet,
    HostTail,
    evaluate_runner,
    reference_from_outputs,
    skipped_result,
    target_resources,
)

__all__ = [
    "LOCALIZE_SAMPLES",
    "check_target",
    "float_reference",
    "golden_set",
    "load_array",
    "localize",
    "quant_golden_set",
    "references",
    "write_vectors",
]


def load_array(path: Path) -> np.ndarray:
    try:
        array: np.ndarray = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"golden vectors {path} are missing or corrupt: {err}") from err
    return array


def golden_set(model: FloatModel, float_dir: Path, metric: str) -> GoldenSet:
    golden = GoldenSet(
        load_array(float_dir / model.golden_inputs),
        load_array(float_dir / model.golden_labels),
        load_array(float_dir / model.golden_float_outputs),
        metric,
    )
    n = len(golden.labels)
    if golden.inputs.shape[1:] != tuple(model.input_shape) or len(golden.inputs) != n or len(golden.float_outputs) != n:
        raise InputError(
            f"golden vectors in {float_dir} have inconsistent shapes: inputs {golden.inputs.shape}, labels "
            f"{golden.labels.shape}, outputs {golden.float_outputs.shape}; model input {model.input_shape}",
            hint="re-run edgekit compile for this build",
        )
    return golden


def quant_golden_set(
    golden: GoldenSet, root: Path, quantized: QuantizedModel, base_model: FloatModel, base_dir: Path
) -> GoldenSet:
    outputs = load_array(root / f"quant-{quantized.family}" / quantized.golden_quant_outputs)
    cut = quantized.plan.host_tail
    # cut: the outputs are the cut's values, one row per sample; else one output per float output
    consistent = len(outputs) == len(golden.float_outputs) if cut else outputs.shape == golden.float_outputs.shape
    if not consistent:
        raise InputError(
            f"quantized golden outputs of the {quantized.family} model have shape {outputs.shape}, "
            f"expected {golden.float_outputs.shape}",
            hint="re-run edgekit compile for this build",
        )
    tail = _host_tail(root, quantized, base_model, base_dir) if cut else None
    return golden.with_quant(outputs, quantized.family, quantized.plan.host_head, tail)


def _host_tail(root: Path, quantized: QuantizedModel, base_model: FloatModel, base_dir: Path) -> HostTail:
    """The rest of the quantized model after quant.deploy_until, run in torch on the artifacts' outputs."""
    model: Any = None

    def run(values: np.ndarray) -> np.ndarray:
        nonlocal model
        if model is None:
            from edgekit.model.brevitas_model import load_quant_model

            model = load_quant_model(quantized, root / f"quant-{quantized.family}", base_model, base_dir, "tail")
        from edgekit.model.training import batched_outputs

        return batched_outputs(model, values.astype(np.float32))

    return HostTail(quantized.plan.host_tail, run)


def _validate_target(
    profile: TargetProfile,
    settings: Settings,
    artifact: CompiledArtifact,
    root: Path,
    golden: GoldenSet,
    reference_metric: float,
) -> list[TargetResult]:
    """The target's own runner, then any emulator its backend validates beside it (named ``target [emulator]``)."""
    backend = get_backend(profile.backend)
    path = root / "targets" / profile.name / artifact.path
    runner = backend.load(artifact, path, profile)
    resources = target_resources(backend, artifact, profile)
    try:
        results = [
            evaluate_runner(profile.name, profile.backend, runner, golden, settings, reference_metric, resources)
        ]
    finally:
        runner.close()
    for label, extra in backend.secondary_runners(artifact, path, profile).items():
        try:
            name = f"{profile.name} [{label}]"
            results.append(evaluate_runner(name, profile.backend, extra, golden, settings, reference_metric, resources))
        finally:
            extra.close()
    return results


LOCALIZE_SAMPLES = 64


def localize(
    result: TargetResult,
    profile: TargetProfile,
    graph: ExportedGraph,
    graph_path: Path,
    quantized: QuantizedModel | None,
    root: Path,
    base_model: FloatModel,
    base_dir: Path,
    inputs: np.ndarray,
    artifact: CompiledArtifact | None = None,
) -> TargetResult:
    """Name the first layer where a target departs from its reference model.

    A quantized target that should be bit-exact is traced against brevitas and departs at the first
    difference; a float target is traced against the float model and departs where the difference exceeds
    what its number format explains. A backend traces its compiled artifact itself (``trace_artifact``:
    onnxruntime), or rebuilds a tracing copy from the graph (``trace``: hls4ml, the RTL target).
    """
    backend = get_backend(profile.backend)
    x = inputs[:LOCALIZE_SAMPLES]
    if base_model.source.kind == "onnx":  # the reference is the file: no torch model to trace layer by layer
        return result
    if backend.traces_artifact and artifact is not None:
        path = root / "targets" / profile.name / artifact.path

        def run_trace() -> Any:
            return backend.trace_artifact(artifact, path, profile, x)
    elif backend.traces_graph and graph.format == "qonnx-clean" and quantized is not None:

        def run_trace() -> Any:
            return backend.trace(graph_path, profile, np.moveaxis(x, 1, -1) if x.ndim > 2 else x)
    else:
        return result
    from edgekit.model.localize import LAYER_TOLERANCE, first_divergence, layer_errors, torch_trace

    try:
        if quantized is not None:
            from edgekit.model.brevitas_model import load_quant_model

            say(f"[validate] {profile.name} is not exact: tracing every layer on {LOCALIZE_SAMPLES} samples")
            model = load_quant_model(quantized, root / f"quant-{quantized.family}", base_model, base_dir)
            tolerance = 0.0
        else:
            say(f"[validate] {profile.name} fails a gate: tracing every layer on {LOCALIZE_SAMPLES} samples")
            model = load_float_model(base_model, base_dir)
            tolerance = LAYER_TOLERANCE.get(profile.precision, LAYER_TOLERANCE["fp32"])
        reference = torch_trace(model, x)
        traced = run_trace()
    except EdgekitError as err:
        return replace(result, divergence=f"layer tracing failed: {err.message}")
    if not traced:
        return result
    found = first_divergence(reference, traced, tolerance)
    errors = tuple(LayerError(*e) for e in layer_errors(reference, traced))
    text = (
        found.describe()
        if found
        else f"no traced layer differs on the first {LOCALIZE_SAMPLES} samples: the difference arises after the "
        "last traced layer (in the output layer)"
    )
    return replace(result, divergence=text, layer_errors=errors)


def check_target(
    profile: TargetProfile,
    settings: Settings,
    artifact: CompiledArtifact,
    root: Path,
    golden: GoldenSet,
    reference_metric: float,
    graph: ExportedGraph,
    quantized: QuantizedModel | None,
    base_model: FloatModel,
    base_dir: Path,
) -> list[TargetResult]:
    """Validate one compiled target; one that departs from its reference gets its first diverging layer named.

    A quantized target departs when it is not exact; a float one when it fails a gate.
    """
    try:
        results = _validate_target(profile, settings, artifact, root, golden, reference_metric)

        agreement = ("max_abs_diff_vs_float", "min_top1_agreement")

        def departs(r: TargetResult) -> bool:
            if quantized is not None:
                return r.max_abs_diff_vs_quantized > 0
            return any(g.name in agreement for g in r.failed_gates())  # not a latency or budget gate

        if any(departs(r) for r in results):
            graph_path = root / (f"export-{quantized.family}" if quantized else "export") / graph.path
            located = localize(
                results[0], profile, graph, graph_path, quantized, root, base_model, base_dir, golden.inputs, artifact
            )
            results = [
                replace(r, divergence=located.divergence, layer_errors=located.layer_errors) if departs(r) else r
                for r in results
            ]
    except EdgekitError as err:
        return [skipped_result(profile.name, profile.backend, "failed", str(err), err.exit_code)]
    return results


def references(
    golden_float: GoldenSet,
    base_model: FloatModel,
    base_dir: Path,
    quantized: dict[str, QuantizedModel],
    root: Path,
    settings: Settings,
) -> tuple[GoldenSet, dict[str, GoldenSet], tuple[TargetResult, ...]]:
    """The golden set targets are compared with (the pruned model's outputs when pruned) and the extra references.

    A target's agreement is measured against the model it was built from (pruned, quantized);
    its metric drop is always measured against the full-precision float reference.
    """
    limit = settings.validation.max_samples
    refs = []
    golden = golden_float
    if base_dir.name == "pruned":
        golden = golden_set(base_model, base_dir, golden_float.metric)
        refs.append(
            reference_from_outputs(
                "pruned float reference", "torch", "torch eager, pruned", golden.float_outputs, golden_float, limit
            )
        )
    quant_golden = {family: quant_golden_set(golden, root, q, base_model, base_dir) for family, q in quantized.items()}
    for family, q_golden in quant_golden.items():
        outputs = q_golden.quant_outputs
        assert outputs is not None
        refs.append(
            replace(
                reference_from_outputs(
                    f"quantized reference ({family})",
                    "brevitas",
                    "brevitas forward",
                    outputs,
                    golden,
                    limit,
                    q_golden.quant_head,
                    q_golden.quant_tail,
                ),
                quant_family=family,
            )
        )
    return golden, quant_golden, tuple(refs)


def write_vectors(
    plans: list[Any], compiled: dict[str, CompiledArtifact], build_dir: BuildDir, quant_golden: dict[str, GoldenSet]
) -> None:
    """Testbench vectors (``vectors/<target>/``) for targets whose backend writes them: the quantized golden set."""
    for plan in plans:
        name = plan.profile.name
        if plan.backend is None or not plan.backend.writes_vectors:
            continue
        writer = plan.backend.write_vectors
        if name not in compiled or plan.family not in quant_golden:
            continue
        golden, artifact = quant_golden[plan.family], compiled[name]
        path = build_dir.root / "targets" / name / artifact.path
        build_dir.write_folder(
            f"the test vectors of {name}", f"vectors/{name}",
            partial(writer, artifact, path, golden.inputs, golden.quant_outputs),
        )  # fmt: skip
        say(f"[vectors] {name}: {len(golden.inputs)} stimulus/response lines and a testbench in vectors/{name}/")


def float_reference(
    float_model: FloatModel, module: Any, float_dir: Path, golden: GoldenSet, settings: Settings
) -> TargetResult:
    """The float reference's own row: torch eager on the trained model, or onnxruntime on the user's ONNX file."""
    if module is None:
        from edgekit.stages.onnx_file import OnnxFileRunner

        runner: Any = OnnxFileRunner(float_dir / float_model.weights)
        try:
            return evaluate_runner("float reference", "onnxruntime", runner, golden, settings, None)
        finally:
            runner.close()
    return evaluate_runner("float reference", "torch", TorchRunner(module), golden, settings, None)
