"""The build spine: resolve -> train -> export -> [quantize -> export quantized] -> compile -> validate -> report.

Every setting is resolved and every target checked before any work starts (see
:mod:`edgekit.pipeline.planning`). Stages run through :class:`~edgekit.core.builddir.BuildDir`,
which caches them by content hash and swaps their output folders in atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.backends import get_backend
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph, FloatModel, ModelSource, QuantizedModel
from edgekit.core.builddir import BuildDir, StageRecord
from edgekit.core.config import (
    Layer,
    Settings,
    design_top_name,
    merge_settings,
    parse_set_flags,
    prune_shorthand,
    quant_shorthand,
)
from edgekit.core.errors import ConfigError, EdgekitError, InputError
from edgekit.core.precision import QuantPlan
from edgekit.core.progress import say
from edgekit.core.results import LayerError, TargetResult, ValidationReport
from edgekit.core.schema import build, to_plain
from edgekit.core.targets import TargetProfile, split_profile_overrides
from edgekit.model.data import Dataset, input_range_warning, load_data
from edgekit.model.reconstruction import compression_summary
from edgekit.model.torch_model import TorchRunner, instantiate, load_float_model
from edgekit.model.zoo import GENERIC_RECIPE, ModelSpec, resolve_model
from edgekit.pipeline.manifest import MANIFEST_SCHEMA_VERSION, environment, read_manifest, write_manifest
from edgekit.pipeline.planning import (
    TargetPlan,
    brevitas_layers,
    check_brevitas_model,
    check_logic_size,
    check_memory,
    check_onnx_file,
    check_overrides_used,
    check_pruning,
    check_recurrent,
    check_synthesis,
    overrides_for,
    plan_quantization_for,
    plan_target,
)
from edgekit.pipeline.steps import (
    Graph,
    compile_targets,
    run_export,
    run_export_brevitas,
    run_export_file,
    run_profile,
    run_prune,
    run_quantization,
    run_reference_file,
    run_synthesis,
    run_train,
)
from edgekit.report.html import write_html_report
from edgekit.report.markdown import write_report
from edgekit.stages.train import UNQUANTIZED
from edgekit.stages.validate import (
    GoldenSet,
    HostTail,
    evaluate_runner,
    reference_from_outputs,
    skipped_result,
    target_resources,
)

__all__ = [
    "BuildPlan",
    "BuildResult",
    "CompileRequest",
    "OpenedBuild",
    "compile_model",
    "exit_code_for",
    "open_build",
    "plan_build",
    "validate_build",
]


@dataclass(frozen=True)
class CompileRequest:
    """What to build: the model, its targets, and how (the ``edgekit compile`` command's flags, as fields).

    ``model`` is a zoo name (``"jet_tagger"``), a model folder, ``"module:factory"``, or a model object: an
    ``nn.Module`` or a function that returns one (see :func:`edgekit.compile`, which also takes arrays).
    ``targets`` are profile names or TOML paths (empty: the recipe's ``default_targets``); ``out`` the build
    folder (default ``build/NAME``); ``recipe`` a zoo name or recipe path, for a model that brings none;
    ``quant``/``prune`` the command's shorthands (``"w6a8"``, ``"2:4"``); ``overrides`` ``--set`` strings
    (``"train.epochs=5"``); ``data`` a data file for the built-in loader.

    >>> request = CompileRequest("jet_tagger", ("cpu-onnxruntime-int8",), quant="int8", tiny=True)  # doctest: +SKIP
    >>> compile_model(request).exit_code  # doctest: +SKIP
    0
    """

    model: Any
    targets: tuple[str, ...] = ()
    out: Path | None = None
    recipe: str | None = None
    tiny: bool = False
    quant: str | None = None  # shorthand such as "w6a8" or "int8"
    prune: str | None = None  # shorthand such as "0.8", "structured:0.5" or "2:4"
    synth: bool = False  # vendor C synthesis of FPGA targets
    overrides: tuple[str, ...] = ()
    force: bool = False
    data: str | None = None  # a data file for the built-in loader (.npz, .npy, .h5, .csv, .parquet): --data


@dataclass(frozen=True)
class BuildResult:
    """A finished build: its folder, its manifest, the validation report and the command's exit code.

    ``exit_code`` is 0 when every gate passed and 1 when one failed (see ``report.targets`` for which);
    ``load(target)`` runs a compiled artifact on your own arrays (:func:`edgekit.load`).

    >>> result = edgekit.compile(net, data=(x_train, y_train, x_test, y_test))  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP
    >>> result.load("cpu-onnxruntime").predict(x_test[:4]).shape  # doctest: +SKIP
    (4, 5)
    """

    build_dir: Path
    manifest: dict[str, Any] = field(repr=False)
    report: ValidationReport = field(repr=False)
    exit_code: int

    def load(self, target: str | None = None) -> Any:
        """The compiled ``target`` ready to ``predict`` (the only one when not named): :func:`edgekit.load`."""
        from edgekit.api import load

        return load(self.build_dir, target)

    def summary(self) -> str:
        """The table ``edgekit compile`` prints: one row per target, metric, agreement, gates."""
        from edgekit.report.markdown import results_table

        return str(results_table(self.report))

    def __repr__(self) -> str:
        verdict = "all gates passed" if self.exit_code == 0 else f"exit code {self.exit_code}"
        rows = ", ".join(f"{t.target}: {'ok' if t.passed else t.status}" for t in self.report.targets)
        return f"BuildResult({str(self.build_dir)!r}, {verdict}; {rows})"


def exit_code_for(report: ValidationReport) -> int:
    """4 a toolchain failed, 3 a backend was unavailable, 2 an artifact is unreadable, 1 a gate failed, 0 passed."""
    codes = {t.exit_code for t in report.targets if t.status != "ok"}
    for code in (4, 3, 2):
        if code in codes:
            return code
    return 0 if report.passed else 1


def _load_array(path: Path) -> np.ndarray:
    try:
        array: np.ndarray = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"golden vectors {path} are missing or corrupt: {err}") from err
    return array


def _golden(model: FloatModel, float_dir: Path, metric: str) -> GoldenSet:
    golden = GoldenSet(
        _load_array(float_dir / model.golden_inputs),
        _load_array(float_dir / model.golden_labels),
        _load_array(float_dir / model.golden_float_outputs),
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


def _quant_golden(
    golden: GoldenSet, root: Path, quantized: QuantizedModel, base_model: FloatModel, base_dir: Path
) -> GoldenSet:
    outputs = _load_array(root / f"quant-{quantized.family}" / quantized.golden_quant_outputs)
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


def _localize(
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


def _check_target(
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
            located = _localize(
                results[0], profile, graph, graph_path, quantized, root, base_model, base_dir, golden.inputs, artifact
            )
            results = [
                replace(r, divergence=located.divergence, layer_errors=located.layer_errors) if departs(r) else r
                for r in results
            ]
    except EdgekitError as err:
        return [skipped_result(profile.name, profile.backend, "failed", str(err), err.exit_code)]
    return results


def _references(
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
        golden = _golden(base_model, base_dir, golden_float.metric)
        refs.append(
            reference_from_outputs(
                "pruned float reference", "torch", "torch eager, pruned", golden.float_outputs, golden_float, limit
            )
        )
    quant_golden = {family: _quant_golden(golden, root, q, base_model, base_dir) for family, q in quantized.items()}
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


def _takes_torch(plan: Any) -> bool:
    """A float target that compiles the torch model itself: hls4ml's float path, AOTInductor."""
    if plan.family is not None or plan.backend is None:
        return False
    return bool(plan.profile.family == "fpga" or plan.backend.float_graph == "torch")


def _write_vectors(
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


def _float_reference(
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


def _build_root(request: CompileRequest, spec: ModelSpec) -> Path:
    """``--out``, or ``build/NAME`` (``build/NAME-tiny`` for the tiny variant)."""
    return Path(request.out) if request.out else Path("build") / (spec.name + ("-tiny" if request.tiny else ""))


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build decides before it touches its folder: settings, targets, quantization plans."""

    request: CompileRequest
    spec: ModelSpec
    settings: Settings
    source: ModelSource
    plans: list[TargetPlan]
    quant_plans: dict[str, QuantPlan]
    root: Path
    brevitas: bool = False  # the model's layers are brevitas': its own quantizers, its QONNX export on the FPGA


def plan_build(request: CompileRequest) -> BuildPlan:
    """Resolve and check a build without running it: a bad setting, target or precision fails here (exit 2)."""
    if not isinstance(request.model, str):  # an nn.Module or its factory: kept for this process, named by content
        from edgekit.model.objects import spec_for

        request = replace(request, model=spec_for(request.model))
    spec: ModelSpec = resolve_model(request.model, request.recipe, request.data)
    if request.data is not None:
        spec = replace(spec, recipe=spec.recipe.with_data_file(request.data))
    model_layers = [*spec.recipe.settings_layers(request.tiny, model_options=not spec.borrowed_recipe)]
    if request.quant is not None:
        model_layers.append(quant_shorthand(request.quant))
    if request.prune is not None:
        model_layers.append(prune_shorthand(request.prune))
    if request.synth:
        model_layers.append(Layer("--synth", {"synth": {"enabled": True}}))
    set_layer = parse_set_flags(request.overrides)
    set_settings, every_target, per_target = split_profile_overrides(set_layer.table)
    model_layers.append(Layer(set_layer.source, set_settings))
    settings = merge_settings(model_layers)
    design_top_name(settings.export, spec.recipe.name)  # a top name no module could take fails before any work
    if request.data is not None:  # the file's samples give the input shape, whatever the borrowed recipe says
        from edgekit.model.data_files import summarize

        options = settings.data_options
        found = summarize(str(options.get("path", request.data)), options.get("inputs"), options.get("labels"))
        recipe = replace(spec.recipe, input_shape=found.sample_shape)
        if spec.recipe.source == GENERIC_RECIPE and found.task != "classification":  # no recipe: the labels decide
            recipe = replace(recipe, task=found.task, metric="mse")  # type: ignore[arg-type]
        spec = replace(spec, recipe=recipe)
    source = replace(spec.source, options=settings.model_options)
    target_names = request.targets or spec.recipe.default_targets
    brevitas = source.kind != "onnx" and bool(brevitas_layers(instantiate(source)))
    given = source.kind == "onnx" or brevitas  # a graph (a file, a brevitas model's export) compiled as it is
    plans = [
        plan_target(name, model_layers, settings.quant.enabled, given, overrides_for(name, every_target, per_target))
        for name in dict.fromkeys(target_names)
    ]
    check_overrides_used(every_target, per_target, [p.profile for p in plans])
    for plan in plans:
        if plan.profile.overrides:
            say(f"[plan] {plan.profile.name}: {plan.profile.source}")
    if source.kind == "onnx":  # a file taken as it is: its own input shape, float ONNX targets only
        import tempfile

        from edgekit.stages.onnx_file import check_batches, inspect_file

        info = inspect_file(Path(source.location))
        plans = check_onnx_file(info.quant_nodes, settings, plans, info.inexact_quant)
        if not info.quant_nodes:  # qonnx's executor sizes a QONNX graph to each batch itself
            with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as folder:
                check_batches(Path(source.location), info.input_shape, Path(folder))
        check_memory(settings, plans, info.input_shape)
        spec = replace(spec, recipe=replace(spec.recipe, input_shape=info.input_shape))
        return BuildPlan(request, spec, settings, source, plans, {}, _build_root(request, spec))
    if brevitas:
        plans = check_brevitas_model(source, settings, plans, tuple(spec.recipe.input_shape))
    if settings.train.standardize:  # the fold needs a first layer it can fold into: checked before any work
        from edgekit.model.standardize import first_layer

        first_layer(instantiate(source))
    quant_plans = plan_quantization_for(source, settings, plans, tuple(spec.recipe.input_shape))
    check_pruning(source, settings)
    if spec.recipe.task == "reconstruction" and spec.recipe.latent_layer:  # read by the report, checked now
        from edgekit.model.reconstruction import latent_size

        latent_size(instantiate(source), spec.recipe.latent_layer, tuple(spec.recipe.input_shape))
    check_logic_size(source, settings, plans, quant_plans, tuple(spec.recipe.input_shape))
    check_recurrent(source, plans)
    check_synthesis(settings, plans)
    check_memory(settings, plans, tuple(spec.recipe.input_shape))
    root = _build_root(request, spec)
    if root.exists() and not root.is_dir():
        raise InputError(f"--out {root} is a file, not a directory", hint="give --out a folder (new or a build's)")
    return BuildPlan(request, spec, settings, source, plans, quant_plans, root, brevitas)


def compile_model(request: CompileRequest) -> BuildResult:
    """Build and validate ``request.model`` for each requested target (what ``edgekit compile`` runs).

    >>> result = compile_model(CompileRequest("jet_tagger", ("cpu-onnxruntime",), tiny=True))  # doctest: +SKIP
    >>> result.exit_code, result.build_dir  # doctest: +SKIP
    (0, PosixPath('build/jet_tagger-tiny'))

    Everything that can be checked is checked before the build folder is touched: settings, targets,
    quantization plans, the data. The build then holds the folder (a second build into it is refused).
    """
    started = time.perf_counter()
    planned = plan_build(request)
    data = load_data(planned.spec, planned.settings)  # once per build: checked, and hashed into the float key
    planned = _raw_feature_precision(planned, data)
    quant = planned.settings.quant
    if quant.enabled:
        warning = input_range_warning(data.x_train, quant.input_bits or quant.activation_bits)
        if warning:
            say(f"WARNING: {warning}")
    build_dir = BuildDir(planned.root)
    with build_dir.locked(f"edgekit compile {request.model}"):
        targets = ", ".join(p.profile.name for p in planned.plans)
        say(f"edgekit {__version__}: {planned.spec.name} -> {targets} in {planned.root}")
        return _build(planned, data, build_dir, started)


def _exact_graph(plan: TargetPlan, planned: BuildPlan) -> bool:
    """A target that compiles a brevitas model's own quantized export (an FPGA or an INT8 target)."""
    return planned.brevitas and (plan.profile.family == "fpga" or plan.profile.precision == "int8")


def _raw_feature_precision(planned: BuildPlan, data: Dataset) -> BuildPlan:
    """With train.standardize and --quant, the precision raw features need, unless the user set it (re-planned).

    The standardization is folded into the first layer, so the FPGA's input quantizer and the first layer's
    weights see the raw features: both get the bits the features' ranges need (say'd, and in the manifest's
    request as ``--set`` overrides). An INT8 target's input stays 8 bits: the range warning says what that costs.
    """
    settings = planned.settings
    if not (settings.train.standardize and settings.quant.enabled) or any(p.family == "int8" for p in planned.plans):
        return planned
    from edgekit.core.config import flatten_layer_tables
    from edgekit.model.standardize import first_layer, raw_feature_precision

    name, _ = first_layer(instantiate(planned.source))
    layer = flatten_layer_tables(settings.quant.layers).get(name, {})
    input_bits = settings.quant.input_bits or settings.quant.activation_bits
    raised, text = raw_feature_precision(
        data.x_train, input_bits, layer.get("weight_bits") or settings.quant.weight_bits, name
    )
    overrides = []
    if "input_bits" in raised and settings.quant.input_bits is None:
        overrides.append(f"quant.input_bits={raised['input_bits']}")
    if name in raised and layer.get("weight_bits") is None:
        overrides.append(f'quant.layers."{name}".weight_bits={raised[name]}')
    if not overrides:
        return planned
    say(f"standardize: the deployed model takes raw features, so {text} ({' '.join('--set ' + o for o in overrides)})")
    request = planned.request
    return plan_build(replace(request, overrides=(*request.overrides, *overrides)))


@dataclass
class _Made:
    """What a build's stages made, filled in pipeline order by :func:`_build`'s steps."""

    float_model: FloatModel
    base_model: FloatModel  # the model every later stage starts from: the float model, or its pruned version
    base_dir: Path
    base_sha: str
    records: list[StageRecord]  # every stage's record, in the order the stages ran
    pruned: bool = False
    graph: ExportedGraph | None = None  # the float (or the file's) export
    quantized: dict[str, QuantizedModel] = field(default_factory=dict)
    quant_exports: dict[str, Any] = field(default_factory=dict)
    graphs: dict[str, Graph] = field(default_factory=dict)  # what each target compiles
    compiled: dict[str, CompiledArtifact] = field(default_factory=dict)
    results: dict[str, TargetResult] = field(default_factory=dict)
    synthesis: dict[str, Any] = field(default_factory=dict)


def _build(planned: BuildPlan, data: Dataset, build_dir: BuildDir, started: float) -> BuildResult:
    """The stages, validation and reports of one build, into a build folder this run holds."""
    made = _train_and_prune(planned, data, build_dir)
    _export_and_quantize(planned, data, build_dir, made)
    _compile(planned, build_dir, made)
    report, float_module = _validate(planned, build_dir, made)
    manifest = _manifest(planned, made, report, float_module, started)
    write_manifest(build_dir.root, manifest)
    write_report(build_dir.root, manifest, report)
    write_html_report(build_dir.root, manifest, report)
    return BuildResult(build_dir.root, manifest, report, manifest["exit_code"])


def _train_and_prune(planned: BuildPlan, data: Dataset, build_dir: BuildDir) -> _Made:
    """The float reference (trained, or read from the ONNX file), then the pruned model if pruning is on."""
    request, spec, settings, root = planned.request, planned.spec, planned.settings, build_dir.root
    if planned.source.kind == "onnx":
        float_model, record = run_reference_file(spec, planned.source, build_dir, data, request.force)
    else:
        float_model, record = run_train(spec, planned.source, settings, build_dir, data, request.force)
    sha = record.files[float_model.weights]
    made = _Made(float_model, float_model, root / "float", sha, [record])
    if settings.prune.method != "none":
        pruned, prune_record = run_prune(spec, settings, build_dir, float_model, sha, data, request.force)
        made.base_model, made.base_dir, made.base_sha = pruned, root / "pruned", prune_record.files[pruned.weights]
        made.records.append(prune_record)
        made.pruned = True
    return made


def _export_and_quantize(planned: BuildPlan, data: Dataset, build_dir: BuildDir, made: _Made) -> None:
    """Every graph a target compiles: the float export, each quantizer family's exports, a brevitas model's own
    exports, the profiled torch model; then which one each target takes, named with the design's top."""
    request, spec, settings, root = planned.request, planned.spec, planned.settings, build_dir.root
    from_file, force = planned.source.kind == "onnx", request.force
    if from_file:
        graph, export_record = run_export_file(spec, build_dir, made.base_model, made.base_sha, force)
    else:
        graph, export_record = run_export(spec, settings, build_dir, made.base_model, made.base_dir, made.base_sha,
                                          force)  # fmt: skip
    made.graph = graph
    made.records.append(export_record)
    made.quantized, made.quant_exports, quant_files, quant_records = run_quantization(
        spec, settings, build_dir, made.base_model, made.base_dir, made.base_sha, planned.quant_plans, data, force
    )
    made.records += quant_records
    own: dict[str, Graph] = {}  # a brevitas model's own exports: "qonnx-clean" (FPGA), "qcdq" (INT8)
    wanted = {
        "qonnx-clean" if p.profile.family == "fpga" else "qcdq" for p in planned.plans if _exact_graph(p, planned)
    }
    for fmt in sorted(wanted):
        exported, record = run_export_brevitas(spec, build_dir, made.base_model, made.base_sha, fmt, force)
        own[fmt] = Graph(exported, root / record.directory / exported.path, record.files[exported.path])
        made.records.append(record)
    profiled: Graph | None = None
    if not from_file and not planned.brevitas and any(_takes_torch(p) for p in planned.plans):
        profiled, profile_record = run_profile(
            spec, settings, build_dir, made.base_model, made.base_dir, made.base_sha, data, force
        )
        made.records.append(profile_record)
    float_graph = Graph(graph, root / "export" / graph.path, export_record.files[graph.path])
    top = design_top_name(settings.export, spec.recipe.name)  # the FPGA design's top module and HLS project
    for plan in planned.plans:
        if from_file:  # the file (a QONNX file: its clean copy) is what every target of it compiles
            chosen = float_graph
        elif _exact_graph(plan, planned):
            chosen = own["qonnx-clean" if plan.profile.family == "fpga" else "qcdq"]
        elif _takes_torch(plan) and profiled is not None:
            chosen = profiled
        elif plan.family is None:
            chosen = float_graph
        else:
            exported = made.quant_exports[plan.family].graph("qcdq" if plan.family == "int8" else "qonnx-clean")
            path = root / f"export-{plan.family}" / exported.path
            chosen = Graph(exported, path, quant_files[plan.family][exported.path])
        made.graphs[plan.profile.name] = replace(chosen, graph=replace(chosen.graph, top_name=top))


def _compile(planned: BuildPlan, build_dir: BuildDir, made: _Made) -> None:
    """Every available target's artifact, then vendor synthesis when --synth asked for it."""
    force, plans = planned.request.force, planned.plans
    made.compiled, made.results, records = compile_targets(plans, build_dir, made.graphs, force)
    made.synthesis = run_synthesis(plans, made.compiled, made.results, records, build_dir, planned.settings, force)
    made.records += records


def _validate(planned: BuildPlan, build_dir: BuildDir, made: _Made) -> tuple[ValidationReport, Any]:
    """Each compiled target against its references (float; quantized where one exists), and the test vectors."""
    spec, settings, root = planned.spec, planned.settings, build_dir.root
    say("[validate] against the float reference" + (" and the quantized reference" if made.quantized else ""))
    started = time.perf_counter()
    golden_float = _golden(made.float_model, root / "float", spec.recipe.metric)
    float_module = None if planned.source.kind == "onnx" else load_float_model(made.float_model, root / "float")
    reference = _float_reference(made.float_model, float_module, root / "float", golden_float, settings)
    golden, quant_golden, extra_refs = _references(
        golden_float, made.base_model, made.base_dir, made.quantized, root, settings
    )
    if planned.brevitas and (root / "float" / UNQUANTIZED).is_file():
        twin = reference_from_outputs(
            "float twin (brevitas, quantization disabled)", "brevitas", "brevitas forward, every quantizer disabled",
            _load_array(root / "float" / UNQUANTIZED), golden_float, settings.validation.max_samples,
        )  # fmt: skip
        extra_refs = (*extra_refs, twin)
    beside: dict[str, list[TargetResult]] = {}  # emulators a backend validates beside the target's own
    for plan in planned.plans:
        name = plan.profile.name
        if name in made.compiled:
            made.results[name], *beside[name] = _check_target(
                plan.profile, plan.settings, made.compiled[name], root,
                quant_golden[plan.family] if plan.family else golden, reference.metric, made.graphs[name].graph,
                made.quantized[plan.family] if plan.family else None, made.base_model, made.base_dir,
            )  # fmt: skip
    _write_vectors(planned.plans, made.compiled, build_dir, quant_golden)
    rows = tuple(r for p in planned.plans for r in (made.results[p.profile.name], *beside.get(p.profile.name, [])))
    made.records.append(StageRecord("validate", ".", "", False, time.perf_counter() - started, {}))
    return ValidationReport(spec.name, spec.recipe.metric, reference, rows, extra_refs), float_module


def _manifest(
    planned: BuildPlan, made: _Made, report: ValidationReport, float_module: Any, started: float
) -> dict[str, Any]:
    """``manifest.json``: the request, the model, the environment, the settings, every stage and artifact."""
    spec, plans, root = planned.spec, planned.plans, planned.root
    model = {
        "name": spec.name, "source": to_plain(planned.source), "code_sha256": spec.code_sha256,
        "recipe": spec.recipe.source, "recipe_sha256": spec.recipe.content_sha256,
        "input_shape": list(spec.recipe.input_shape), "classes": list(made.float_model.classes),
        "metric": spec.recipe.metric, "task": spec.recipe.task, "n_parameters": made.float_model.n_parameters,
        "compression": compression_summary(spec.recipe, float_module, made.quantized) if float_module else {},
    }  # fmt: skip
    targets = {
        p.profile.name: {"profile": to_plain(p.profile), "unavailable": p.unavailable or None,
                         "quant_family": p.family, "graph": to_plain(made.graphs[p.profile.name].graph)}
        for p in plans
    }  # fmt: skip
    artifacts = {
        "float_model": to_plain(made.float_model), "pruned": to_plain(made.base_model) if made.pruned else None,
        "exported": to_plain(made.graph), "quantized": {f: to_plain(q) for f, q in made.quantized.items()},
        "quant_exports": {f: to_plain(e) for f, e in made.quant_exports.items()},
        "compiled": {name: to_plain(a) for name, a in made.compiled.items()},
        "synthesis": {name: to_plain(r) for name, r in made.synthesis.items()},
    }  # fmt: skip
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "edgekit_version": __version__,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "request": to_plain(planned.request),
        "model": model,
        "environment": environment(r.versions for r in made.records if r.name != "validate"),
        "settings": {
            "model": to_plain(planned.settings),
            "targets": {p.profile.name: to_plain(p.settings) for p in plans},
        },
        "targets": targets,
        "stages": [to_plain(r) for r in made.records],
        "artifacts": artifacts,
        "pruning": json.loads((root / "pruned" / "prune.json").read_text()) if made.pruned else None,
        "validation": to_plain(report),
        "exit_code": exit_code_for(report),
        "total_wall_s": time.perf_counter() - started,
    }


@dataclass(frozen=True)
class OpenedBuild:
    """An existing build, read from its manifest and checked: references unchanged, artifacts present."""

    root: Path
    manifest: dict[str, Any]
    compiled: dict[str, CompiledArtifact]
    quantized: dict[str, QuantizedModel]
    previous: ValidationReport
    base: FloatModel  # the model targets were built from (the pruned one when pruned)
    base_dir: Path
    golden: GoldenSet
    quant_golden: dict[str, GoldenSet]
    modified: dict[str, tuple[str, ...]]  # target -> its artifact files that changed after the compile

    def profile(self, name: str) -> TargetProfile:
        return build(TargetProfile, self.manifest["targets"][name]["profile"], str(self.root / "manifest.json"))

    def family(self, name: str) -> str | None:
        family: str | None = self.manifest["targets"][name].get("quant_family")
        return family

    def target_golden(self, name: str) -> GoldenSet:
        family = self.family(name)
        return self.quant_golden[family] if family else self.golden

    def float_golden(self) -> GoldenSet:
        """The full-precision model's golden set (the reference of every metric drop), pruned or not."""
        float_model = build(FloatModel, self.manifest["artifacts"]["float_model"], str(self.root / "manifest.json"))
        return _golden(float_model, self.root / "float", self.golden.metric)

    def settings(self, name: str, cli_layer: Layer | None = None) -> Settings:
        layers = [Layer("manifest.json", self.manifest["settings"]["targets"][name])]
        return merge_settings([*layers, cli_layer] if cli_layer else layers)


def open_build(root: Path) -> OpenedBuild:
    """Read and check a build directory for ``edgekit validate`` and hardware-in-the-loop runs.

    A changed reference (weights, golden vectors, exported graphs) is refused; a changed compiled artifact is
    recorded in ``modified`` and examined as it is.
    """
    manifest = read_manifest(root)
    where = str(root / "manifest.json")
    try:
        artifacts = manifest["artifacts"]
        float_model = build(FloatModel, artifacts["float_model"], where)
        compiled = {name: build(CompiledArtifact, plain, where) for name, plain in artifacts["compiled"].items()}
        quantized = {f: build(QuantizedModel, plain, where) for f, plain in artifacts.get("quantized", {}).items()}
        old = build(ValidationReport, manifest["validation"], where)
        stages = [build(StageRecord, s) for s in manifest["stages"]]
    except (EdgekitError, KeyError, TypeError) as err:
        raise InputError(f"{where} does not describe a complete build: {err}") from err
    build_dir = BuildDir(root)
    modified: dict[str, tuple[str, ...]] = {}
    for stage in stages:
        if not stage.directory.startswith("targets/"):
            build_dir.verify_files(stage.directory, stage.files)  # references and golden vectors: refused if changed
            continue
        # A compiled artifact is what validation examines: a changed one is validated as it is, and flagged.
        missing, changed = build_dir.changed_files(stage.directory, stage.files)
        if missing:
            raise InputError(f"build file {missing[0]} is missing", hint="re-run edgekit compile for this build")
        if changed:
            modified[stage.directory.removeprefix("targets/")] = tuple(str(p.relative_to(root)) for p in changed)
    pruned = artifacts.get("pruned")
    base = build(FloatModel, pruned, where) if pruned else float_model
    base_dir = root / ("pruned" if pruned else "float")
    golden = _golden(base, base_dir, manifest["model"]["metric"])
    quant_golden = {f: _quant_golden(golden, root, q, base, base_dir) for f, q in quantized.items()}
    return OpenedBuild(root, manifest, compiled, quantized, old, base, base_dir, golden, quant_golden, modified)


def validate_build(root: Path, overrides: tuple[str, ...] = ()) -> BuildResult:
    """Re-run every compiled target of an existing build against its golden vectors and gates (``edgekit validate``).

    >>> validate_build(Path("build/jet_tagger"), ("gates.min_metric=0.9",)).exit_code  # doctest: +SKIP
    0
    """
    read_manifest(root)  # a clear error for a folder that is not a build, before taking its lock
    with BuildDir(root).locked(f"edgekit validate {root}"):
        return _revalidate(root, overrides)


def render_reports(root: Path, compare: tuple[Path, ...] = ()) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` of a build again from its manifest (``edgekit report``); the HTML
    report adds the builds in ``compare`` to its bit-width plot. Nothing is built or run.

    >>> render_reports(Path("build/w4a6"), (Path("build/w6a8"),))  # doctest: +SKIP
    (PosixPath('build/w4a6/report.md'), PosixPath('build/w4a6/report.html'))
    """
    manifest = read_manifest(root)
    where = str(root / "manifest.json")
    try:
        report = build(ValidationReport, manifest["validation"], where)
    except (EdgekitError, KeyError, TypeError) as err:
        raise InputError(f"{where} does not describe a validated build: {err}") from err
    for other in compare:
        read_manifest(other)  # a clear error for a folder that is not a build
    with BuildDir(root).locked(f"edgekit report {root}"):
        return write_report(root, manifest, report), write_html_report(root, manifest, report, compare)


def _revalidate(root: Path, overrides: tuple[str, ...]) -> BuildResult:
    opened = open_build(root)
    manifest, old, modified = opened.manifest, opened.previous, opened.modified
    where = str(root / "manifest.json")
    cli_layer = parse_set_flags(overrides)
    _, every_target, per_target = split_profile_overrides(cli_layer.table)
    if every_target or per_target:
        raise ConfigError(
            "edgekit validate checks a build as it was compiled; a profile's part, clock or backend options "
            "change the design itself",
            hint="compile again with the same --set (edgekit compile ... --set fpga.clock_period_ns=4)",
        )
    results = []
    for name, entry in manifest["targets"].items():
        profile = opened.profile(name)
        previous = [t for t in old.targets if t.target == name or t.target.startswith(f"{name} [")]
        if name not in opened.compiled:
            results.extend(previous)
            continue
        settings = opened.settings(name, cli_layer)
        reason = get_backend(profile.backend).unavailable_reason()
        if reason:
            results.append(skipped_result(name, profile.backend, "unavailable", reason, 3))
            continue
        family = opened.family(name)
        if name in modified:
            say(f"[validate] {name}: WARNING: changed since compile ({', '.join(modified[name])}); validating it as is")
        else:
            say(f"[validate] {name}")
        graph = build(ExportedGraph, entry["graph"], where)
        quant_model = opened.quantized[family] if family else None
        checked = _check_target(
            profile, settings, opened.compiled[name], root, opened.target_golden(name), old.reference.metric,
            graph, quant_model, opened.base, opened.base_dir,
        )  # fmt: skip
        results.extend(replace(r, modified=modified.get(name, ())) for r in checked)
    report = replace(old, targets=tuple(results))
    manifest["validation"] = to_plain(report)
    manifest["exit_code"] = exit_code_for(report)
    manifest["revalidated_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["revalidation_overrides"] = list(overrides)
    write_manifest(root, manifest)
    write_report(root, manifest, report)
    write_html_report(root, manifest, report)
    return BuildResult(root, manifest, report, manifest["exit_code"])
