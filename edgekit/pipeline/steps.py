"""The build steps between training and validation, each one or more cached stages of the build directory.

:func:`edgekit.pipeline.compile.compile_model` calls them in order; each resolves its cache
key, runs its stage function through :class:`~edgekit.core.builddir.BuildDir`, and turns
expected failures of one target into a result instead of an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from edgekit.core import provenance
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph, FloatModel, ModelSource, QuantExport, QuantizedModel
from edgekit.core.builddir import BuildDir, StageRecord, cache_key
from edgekit.core.config import Settings
from edgekit.core.errors import ToolchainError
from edgekit.core.precision import QuantPlan
from edgekit.core.progress import say
from edgekit.core.provenance import StageIdentity
from edgekit.core.results import TargetResult
from edgekit.model.data import Dataset
from edgekit.model.zoo import ModelSpec
from edgekit.pipeline.planning import TargetPlan
from edgekit.stages.validate import skipped_result

__all__ = [
    "STAGES",
    "Graph",
    "compile_targets",
    "run_export",
    "run_export_brevitas",
    "run_export_file",
    "run_profile",
    "run_prune",
    "run_quantization",
    "run_reference_file",
    "run_synthesis",
    "run_train",
    "said_cached",
    "stage_identity",
]

A = TypeVar("A")

# What each stage runs besides its inputs: edgekit's modules and the libraries they drive. Both are part of
# its cache key (a new brevitas, or a change to the exporter's code, rebuilds exactly the stages that use
# them); a compile stage's come from its backend (``Backend.versions`` and the backend's module).
STAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train": (("edgekit.stages.train",), ("torch", "numpy")),
    "prune": (("edgekit.stages.prune",), ("torch", "numpy", "torch-pruning")),
    "export": (("edgekit.stages.export",), ("torch", "onnx")),
    "profile": (("edgekit.stages.profile",), ("torch", "numpy")),
    "quantize": (("edgekit.stages.quantize",), ("torch", "numpy", "brevitas")),
    "export-quant": (
        ("edgekit.stages.export_quant", "edgekit.model.qonnx_graph"),
        ("torch", "brevitas", "qonnx", "onnx", "onnxruntime", "onnxoptimizer"),
    ),
    "synth": (("edgekit.backends.hls4ml.synth",), ("hls4ml",)),
    "export-brevitas": (
        ("edgekit.stages.export_brevitas", "edgekit.model.qonnx_graph", "edgekit.core.fixed_formats"),
        ("torch", "brevitas", "qonnx", "onnx", "onnxruntime"),
    ),
    "onnx-file": (("edgekit.stages.onnx_file", "edgekit.model.qonnx_graph"), ("onnx", "onnxruntime", "qonnx", "numpy")),
}


@dataclass(frozen=True)
class Graph:
    """The graph a target compiles: the artifact, its file, and its content hash."""

    graph: ExportedGraph
    path: Path
    sha256: str


def stage_identity(stage: str) -> StageIdentity:
    modules, libraries = STAGES[stage]
    return provenance.identity(modules, libraries)


def said_cached(record: StageRecord) -> None:
    if record.cached:
        say(
            f"  reused cached {record.directory}/ (same inputs, settings, library versions and edgekit code; "
            "--force rebuilds)"
        )


def _stage(
    build_dir: BuildDir,
    name: str,
    directory: str,
    cls: type[A],
    inputs: dict[str, Any],
    identity: StageIdentity,
    produce: Callable[[Path], A],
    force: bool,
) -> tuple[A, StageRecord]:
    """One cached stage: its key is its inputs and its identity (versions and edgekit code) together."""
    key = cache_key({**inputs, "identity": identity})
    artifact, record = build_dir.run_stage(name, directory, key, cls, produce, force=force, identity=identity)
    said_cached(record)
    return artifact, record


def run_train(
    spec: ModelSpec, source: ModelSource, settings: Settings, build_dir: BuildDir, data: Dataset, force: bool
) -> tuple[FloatModel, StageRecord]:
    """The float model, trained; keyed on the data's content and the user's code (its imports included)."""
    from edgekit.stages.train import train_float_model

    recipe = spec.recipe
    inputs = {"code": spec.code_sha256, "input_shape": recipe.input_shape, "metric": recipe.metric,
              "task": recipe.task, "source": source, "train": settings.train, "data": data.sha256}  # fmt: skip
    say("[train] float model")
    produce = partial(train_float_model, spec, source, settings, data)
    return _stage(build_dir, "train", "float", FloatModel, inputs, stage_identity("train"), produce, force)


def run_export(
    spec: ModelSpec,
    settings: Settings,
    build_dir: BuildDir,
    base_model: FloatModel,
    base_dir: Path,
    base_sha: str,
    force: bool,
) -> tuple[ExportedGraph, StageRecord]:
    """The float (or pruned float) model as ONNX with a dynamic batch axis."""
    from edgekit.stages.export import export_float_onnx

    inputs = {"weights": base_sha, "code": spec.code_sha256, "source": base_model.source, "export": settings.export}
    say("[export] ONNX (float, dynamic batch)")
    produce = partial(export_float_onnx, base_model, base_dir, settings.export)
    return _stage(build_dir, "export", "export", ExportedGraph, inputs, stage_identity("export"), produce, force)


def run_reference_file(
    spec: ModelSpec, source: ModelSource, build_dir: BuildDir, data: Dataset, force: bool
) -> tuple[FloatModel, StageRecord]:
    """An ONNX file's reference (no training): onnxruntime's outputs on the held-out inputs, keyed on the file."""
    from edgekit.stages.onnx_file import reference_from_file

    inputs = {"file": spec.code_sha256, "metric": spec.recipe.metric, "task": spec.recipe.task, "data": data.sha256}
    say(f"[reference] {Path(source.location).name}, as it is (onnxruntime)")
    produce = partial(reference_from_file, spec, source, data)
    return _stage(build_dir, "reference", "float", FloatModel, inputs, stage_identity("onnx-file"), produce, force)


def run_export_file(
    spec: ModelSpec, build_dir: BuildDir, model: FloatModel, file_sha: str, force: bool
) -> tuple[ExportedGraph, StageRecord]:
    """The ONNX file as the graph the float ONNX targets compile."""
    from edgekit.stages.onnx_file import export_from_file

    say("[export] the ONNX file, as it is")
    produce = partial(export_from_file, model, build_dir.root / "float")
    inputs = {"file": file_sha, "code": spec.code_sha256}
    return _stage(build_dir, "export", "export", ExportedGraph, inputs, stage_identity("onnx-file"), produce, force)


def run_export_brevitas(
    spec: ModelSpec, build_dir: BuildDir, model: FloatModel, weights_sha: str, fmt: str, force: bool
) -> tuple[ExportedGraph, StageRecord]:
    """A brevitas model's own export: QONNX and its clean copy (``qonnx-clean``) or ``qcdq``, checked against it."""
    from edgekit.stages.export_brevitas import export_brevitas_qcdq, export_brevitas_qonnx

    qonnx = fmt == "qonnx-clean"
    say(f"[export] {'QONNX' if qonnx else 'QCDQ'} of the brevitas model's own quantizers "
        f"(for the {'FPGA' if qonnx else 'INT8'} targets)")  # fmt: skip
    produce = partial(export_brevitas_qonnx if qonnx else export_brevitas_qcdq, model, build_dir.root / "float")
    inputs = {"weights": weights_sha, "code": spec.code_sha256, "source": model.source, "format": fmt}
    folder = "export-brevitas" if qonnx else "export-brevitas-qcdq"
    identity = stage_identity("export-brevitas")
    return _stage(build_dir, folder, folder, ExportedGraph, inputs, identity, produce, force)


def run_prune(
    spec: ModelSpec,
    settings: Settings,
    build_dir: BuildDir,
    float_model: FloatModel,
    weights_sha: str,
    data: Dataset,
    force: bool,
) -> tuple[FloatModel, StageRecord]:
    """Prune -> fine-tune rounds on the trained float model (Torch-Pruning loads only when needed)."""
    from edgekit.stages.prune import prune_model

    inputs = {"weights": weights_sha, "prune": settings.prune, "train": settings.train, "data": data.sha256,
              "code": spec.code_sha256}  # fmt: skip
    cfg = settings.prune
    say(f"[prune] {cfg.method}, sparsity {cfg.sparsity:g}, {cfg.steps} rounds")
    produce = partial(prune_model, spec, float_model, build_dir.root / "float", settings, data)
    return _stage(build_dir, "prune", "pruned", FloatModel, inputs, stage_identity("prune"), produce, force)


def run_profile(
    spec: ModelSpec,
    settings: Settings,
    build_dir: BuildDir,
    base_model: FloatModel,
    base_dir: Path,
    base_sha: str,
    data: Dataset,
    force: bool,
) -> tuple[Graph, StageRecord]:
    """The float model and its activation ranges, for FPGA targets that take it through hls4ml's PyTorch frontend."""
    from edgekit.stages.profile import profile_float_model

    inputs = {"weights": base_sha, "calibration": settings.quant.calibration_samples, "seed": settings.train.seed,
              "data": data.sha256, "code": spec.code_sha256}  # fmt: skip
    say("[export] float torch model, calibration inputs and activation ranges (hls4ml float path, AOTInductor)")
    produce = partial(profile_float_model, spec, base_model, base_dir, settings, data)
    graph, record = _stage(
        build_dir, "export", "export-torch", ExportedGraph, inputs, stage_identity("profile"), produce, force
    )
    # The targets that take this graph load the model's code too: a change to it must reach their keys.
    sha = cache_key({"weights": record.files[graph.path], "code": spec.code_sha256})
    return Graph(graph, build_dir.root / "export-torch" / graph.path, sha), record


def compile_targets(
    plans: list[TargetPlan], build_dir: BuildDir, graphs: dict[str, Graph], force: bool
) -> tuple[dict[str, CompiledArtifact], dict[str, TargetResult], list[StageRecord]]:
    """Compile every available target; unavailable and failed ones become results, not exceptions."""
    compiled: dict[str, CompiledArtifact] = {}
    skipped: dict[str, TargetResult] = {}
    records: list[StageRecord] = []
    for plan in plans:
        name = plan.profile.name
        if plan.backend is None:
            say(f"[compile] {name}: unavailable: {plan.unavailable}")
            skipped[name] = skipped_result(name, plan.profile.backend, "unavailable", plan.unavailable, 3)
            continue
        source = graphs[name]
        # a compile stage runs its backend: the backend's libraries and tools, and its module's code
        ident = StageIdentity(plan.backend.versions(), provenance.code_sha256(type(plan.backend).__module__))
        inputs = {"graph": source.sha256, "profile": plan.profile.content_sha256, "top": source.graph.top_name}
        say(f"[compile] {name} ({plan.profile.backend}, {source.graph.format})")
        produce = partial(plan.backend.compile, source.graph, source.path, plan.profile)
        try:
            artifact, record = _stage(
                build_dir, "compile", f"targets/{name}", CompiledArtifact, inputs, ident, produce, force
            )
        except ToolchainError as err:
            say(f"  {name}: toolchain failed: {err.message}")
            skipped[name] = skipped_result(name, plan.profile.backend, "failed", str(err), err.exit_code)
            continue
        records.append(record)
        compiled[name] = artifact
    return compiled, skipped, records


def run_synthesis(
    plans: list[TargetPlan],
    compiled: dict[str, CompiledArtifact],
    results: dict[str, TargetResult],
    records: list[StageRecord],
    build_dir: BuildDir,
    settings: Settings,
    force: bool,
) -> dict[str, Any]:
    """Vendor C synthesis of the compiled FPGA targets, when ``--synth`` asked for it."""
    if not settings.synth.enabled:
        return {}
    from edgekit.backends.hls4ml.synth import SynthesisResult, synthesize

    done: dict[str, Any] = {}
    for plan in plans:
        name = plan.profile.name
        if plan.profile.family != "fpga" or name not in compiled:
            continue
        compile_record = next(r for r in records if r.directory == f"targets/{name}")
        inputs = {"compiled": compile_record.files, "synth": settings.synth}
        say(f"[synth] {name}: {plan.profile.fpga.hls_backend if plan.profile.fpga else ''} HLS C synthesis")
        produce = partial(synthesize, compiled[name], build_dir.root / "targets" / name, plan.profile, settings.synth)
        try:
            result, record = _stage(
                build_dir, "synth", f"synth/{name}", SynthesisResult, inputs, stage_identity("synth"), produce, force
            )
        except ToolchainError as err:
            say(f"  {name}: synthesis failed: {err.message}")
            results[name] = skipped_result(name, plan.profile.backend, "failed", str(err), err.exit_code)
            compiled.pop(name)
            continue
        records.append(record)
        done[name] = result
    return done


def run_quantization(
    spec: ModelSpec,
    settings: Settings,
    build_dir: BuildDir,
    float_model: FloatModel,
    float_dir: Path,
    weights_sha: str,
    quant_plans: dict[str, QuantPlan],
    data: Dataset,
    force: bool,
) -> tuple[dict[str, QuantizedModel], dict[str, QuantExport], dict[str, dict[str, str]], list[StageRecord]]:
    """Per quantizer family: QAT or PTQ, then QCDQ and QONNX exports checked against brevitas."""
    from edgekit.stages.export_quant import export_quantized  # brevitas loads only when needed
    from edgekit.stages.quantize import quantize_model

    quant_ident, export_ident = stage_identity("quantize"), stage_identity("export-quant")
    root = build_dir.root
    quantized: dict[str, QuantizedModel] = {}
    exports: dict[str, QuantExport] = {}
    export_files: dict[str, dict[str, str]] = {}
    records: list[StageRecord] = []
    for family, plan in quant_plans.items():
        q = settings.quant
        inputs = {"weights": weights_sha, "plan": plan, "method": q.method, "qat": (q.qat_epochs, q.qat_learning_rate),
                  **({"resource_weight": q.resource_weight, "learn_activations": q.learn_activations,
                      "granularity": q.learned_granularity} if q.method == "learned" else {}),
                  "calibration": (q.calibration_samples, q.bias_correction), "train": settings.train,
                  "data": data.sha256, "code": spec.code_sha256}  # fmt: skip
        say(f"[quantize] {family} family, {q.method.upper()}")
        produce_model = partial(quantize_model, spec, float_model, float_dir, settings, plan, data)
        model, record = _stage(
            build_dir, "quantize", f"quant-{family}", QuantizedModel, inputs, quant_ident, produce_model, force
        )
        records.append(record)
        export_inputs = {"weights": record.files[model.weights], "plan": plan, "source": float_model.source,
                         "code": spec.code_sha256, "data": data.sha256, "export": settings.export}  # fmt: skip
        say(f"[export] {family} family: QCDQ and QONNX, each checked against brevitas")
        quant_dir = root / f"quant-{family}"
        produce = partial(export_quantized, model, quant_dir, float_model, float_dir, settings.export)
        exported, export_record = _stage(
            build_dir, "export", f"export-{family}", QuantExport, export_inputs, export_ident, produce, force
        )
        records.append(export_record)
        say(
            f"  {family}: max |difference| vs brevitas on {exported.n_check_samples} samples: "
            + ", ".join(f"{fmt} {d:g}" for fmt, d in exported.max_abs_diff_vs_brevitas.items())
        )
        quantized[family], exports[family], export_files[family] = model, exported, dict(export_record.files)
    return quantized, exports, export_files, records
