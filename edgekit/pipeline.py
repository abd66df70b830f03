"""The build spine: resolve -> train -> export -> compile per target -> validate -> report.

Every setting is resolved and every target checked before any work starts, so a
typo costs nothing. Stages run through :class:`~edgekit.builddir.BuildDir`,
which caches them by content hash and swaps their output folders in atomically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.artifacts import CompiledArtifact, ExportedGraph, FloatModel
from edgekit.backends import Backend, get_backend
from edgekit.builddir import BuildDir, StageRecord, cache_key
from edgekit.config import Layer, Settings, merge_settings, parse_set_flags
from edgekit.errors import BackendUnavailable, EdgekitError, InputError, ToolchainError
from edgekit.manifest import MANIFEST_SCHEMA_VERSION, environment, read_manifest, write_manifest
from edgekit.progress import say
from edgekit.report import write_report
from edgekit.schema import build, to_plain
from edgekit.stages.export import EXPORTER, export_float_onnx
from edgekit.stages.train import TRAINER, train_float_model
from edgekit.stages.validate import GoldenSet, TargetResult, ValidationReport, evaluate_runner, skipped_result
from edgekit.targets import TargetProfile, load_target
from edgekit.torch_model import TorchRunner, load_float_model
from edgekit.zoo import ModelSpec, resolve_model

__all__ = ["BuildResult", "CompileRequest", "compile_model", "exit_code_for", "validate_build"]


@dataclass(frozen=True)
class CompileRequest:
    model: str
    targets: tuple[str, ...] = ()
    out: Path | None = None
    recipe: str | None = None
    tiny: bool = False
    overrides: tuple[str, ...] = ()
    force: bool = False


@dataclass(frozen=True)
class BuildResult:
    build_dir: Path
    manifest: dict[str, Any]
    report: ValidationReport
    exit_code: int


@dataclass(frozen=True)
class _TargetPlan:
    profile: TargetProfile
    settings: Settings
    backend: Backend | None
    unavailable: str  # why the backend cannot be used here; "" when it can


def exit_code_for(report: ValidationReport) -> int:
    """4 a toolchain failed, 3 a backend was unavailable, 1 a gate failed, 0 all passed."""
    codes = {t.exit_code for t in report.targets if t.status != "ok"}
    for code in (4, 3):
        if code in codes:
            return code
    return 0 if report.passed else 1


def _plan_target(name: str, model_layers: list[Layer]) -> _TargetPlan:
    profile = load_target(name)
    settings = merge_settings([profile.settings_layer(), *model_layers])
    try:
        backend = get_backend(profile.backend)
        reason = backend.unavailable_reason()
    except BackendUnavailable as err:
        return _TargetPlan(profile, settings, None, str(err))
    if reason:
        return _TargetPlan(profile, settings, None, reason)
    backend.check_target(profile)
    return _TargetPlan(profile, settings, backend, "")


def _said_cached(record: StageRecord) -> None:
    if record.cached:
        say(f"  reused cached {record.directory}/ (inputs unchanged; --force rebuilds)")


def _golden(model: FloatModel, root: Path, metric: str) -> GoldenSet:
    def load(rel: str) -> np.ndarray:
        try:
            array: np.ndarray = np.load(root / rel, allow_pickle=False)
            return array
        except (OSError, ValueError) as err:
            raise InputError(f"golden vectors {root / rel} are missing or corrupt: {err}") from err

    golden = GoldenSet(load(model.golden_inputs), load(model.golden_labels), load(model.golden_float_outputs), metric)
    n = len(golden.labels)
    if golden.inputs.shape[1:] != tuple(model.input_shape) or len(golden.inputs) != n or len(golden.float_outputs) != n:
        raise InputError(
            f"golden vectors in {root} have inconsistent shapes: inputs {golden.inputs.shape}, labels "
            f"{golden.labels.shape}, outputs {golden.float_outputs.shape}; model input {model.input_shape}",
            hint="re-run edgekit compile for this build",
        )
    return golden


def _validate_target(
    plan: _TargetPlan, artifact: CompiledArtifact, root: Path, golden: GoldenSet, reference_metric: float
) -> TargetResult:
    assert plan.backend is not None
    stage_dir = root / "targets" / plan.profile.name
    runner = plan.backend.load(artifact, stage_dir / artifact.path, plan.profile)
    try:
        return evaluate_runner(plan.profile.name, plan.profile.backend, runner, golden, plan.settings, reference_metric)
    finally:
        runner.close()


def _compile_targets(
    plans: list[_TargetPlan],
    build_dir: BuildDir,
    graph: ExportedGraph,
    graph_sha256: str,
    force: bool,
) -> tuple[dict[str, CompiledArtifact], dict[str, TargetResult], list[StageRecord]]:
    """Compile every available target; unavailable and failed ones become results, not exceptions."""
    graph_path = build_dir.root / "export" / graph.path
    compiled: dict[str, CompiledArtifact] = {}
    skipped: dict[str, TargetResult] = {}
    records: list[StageRecord] = []
    for plan in plans:
        name = plan.profile.name
        if plan.backend is None:
            say(f"[compile] {name}: unavailable: {plan.unavailable}")
            skipped[name] = skipped_result(name, plan.profile.backend, "unavailable", plan.unavailable, 3)
            continue
        key = cache_key(
            {"graph": graph_sha256, "profile": plan.profile.content_sha256, "versions": plan.backend.versions()}
        )
        say(f"[compile] {name} ({plan.profile.backend})")
        produce = partial(plan.backend.compile, graph, graph_path, plan.profile)
        try:
            artifact, record = build_dir.run_stage(
                "compile", f"targets/{name}", key, CompiledArtifact, produce, force=force
            )
        except ToolchainError as err:
            say(f"  {name}: toolchain failed: {err.message}")
            skipped[name] = skipped_result(name, plan.profile.backend, "failed", str(err), err.exit_code)
            continue
        _said_cached(record)
        records.append(record)
        compiled[name] = artifact
    return compiled, skipped, records


def compile_model(request: CompileRequest) -> BuildResult:
    """Build and validate ``request.model`` for each requested target."""
    started = time.perf_counter()
    spec: ModelSpec = resolve_model(request.model, request.recipe)
    model_layers = [*spec.recipe.settings_layers(request.tiny), parse_set_flags(request.overrides)]
    settings = merge_settings(model_layers)
    source = replace(spec.source, options=settings.model_options)
    target_names = request.targets or spec.recipe.default_targets
    plans = [_plan_target(name, model_layers) for name in dict.fromkeys(target_names)]
    root = request.out or Path("build") / (spec.name + ("-tiny" if request.tiny else ""))
    if root.exists() and not root.is_dir():
        raise InputError(f"--out {root} is a file, not a directory")
    root.mkdir(parents=True, exist_ok=True)
    build_dir = BuildDir(root)
    say(f"edgekit {__version__}: {spec.name} -> {', '.join(p.profile.name for p in plans)} in {root}")

    train_key = cache_key(
        {
            "code": spec.code_sha256,
            "input_shape": spec.recipe.input_shape,
            "data": spec.recipe.data,
            "metric": spec.recipe.metric,
            "source": source,
            "train": settings.train,
            "data_options": settings.data_options,
            "trainer": TRAINER,
        }
    )
    say("[train] float model")
    float_model, train_record = build_dir.run_stage(
        "train", "float", train_key, FloatModel,
        partial(train_float_model, spec, source, settings), force=request.force,
    )  # fmt: skip
    _said_cached(train_record)

    export_key = cache_key(
        {"weights": train_record.files[float_model.weights], "export": settings.export, "exporter": EXPORTER}
    )
    say("[export] ONNX (float, dynamic batch)")
    graph, export_record = build_dir.run_stage(
        "export", "export", export_key, ExportedGraph,
        partial(export_float_onnx, float_model, root / "float", settings.export), force=request.force,
    )  # fmt: skip
    _said_cached(export_record)

    compiled, results, compile_records = _compile_targets(
        plans, build_dir, graph, export_record.files[graph.path], request.force
    )

    say("[validate] against the float reference")
    validate_started = time.perf_counter()
    golden = _golden(float_model, root / "float", spec.recipe.metric)
    torch_runner = TorchRunner(load_float_model(float_model, root / "float"))
    reference = evaluate_runner("float reference", "torch", torch_runner, golden, settings, None)
    for plan in plans:
        name = plan.profile.name
        if name in compiled:
            try:
                results[name] = _validate_target(plan, compiled[name], root, golden, reference.metric)
            except EdgekitError as err:
                results[name] = skipped_result(name, plan.profile.backend, "failed", str(err), err.exit_code)
    report = ValidationReport(spec.name, spec.recipe.metric, reference, tuple(results[p.profile.name] for p in plans))
    validate_record = StageRecord("validate", ".", "", False, time.perf_counter() - validate_started, {})

    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "edgekit_version": __version__,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "request": to_plain(request),
        "model": {
            "name": spec.name,
            "source": to_plain(source),
            "code_sha256": spec.code_sha256,
            "recipe": spec.recipe.source,
            "recipe_sha256": spec.recipe.content_sha256,
            "input_shape": list(spec.recipe.input_shape),
            "classes": list(float_model.classes),
            "metric": spec.recipe.metric,
            "n_parameters": float_model.n_parameters,
        },
        "environment": environment(),
        "settings": {
            "model": to_plain(settings),
            "targets": {p.profile.name: to_plain(p.settings) for p in plans},
        },
        "targets": {
            p.profile.name: {"profile": to_plain(p.profile), "unavailable": p.unavailable or None} for p in plans
        },
        "stages": [to_plain(r) for r in (train_record, export_record, *compile_records, validate_record)],
        "artifacts": {
            "float_model": to_plain(float_model),
            "exported": to_plain(graph),
            "compiled": {name: to_plain(a) for name, a in compiled.items()},
        },
        "validation": to_plain(report),
        "exit_code": exit_code_for(report),
        "total_wall_s": time.perf_counter() - started,
    }
    write_manifest(root, manifest)
    write_report(root, manifest, report)
    return BuildResult(root, manifest, report, manifest["exit_code"])


def validate_build(root: Path, overrides: tuple[str, ...] = ()) -> BuildResult:
    """Re-run every compiled target of an existing build against its golden vectors and gates."""
    manifest = read_manifest(root)
    try:
        float_model = build(FloatModel, manifest["artifacts"]["float_model"], str(root / "manifest.json"))
        compiled = {
            name: build(CompiledArtifact, plain, str(root / "manifest.json"))
            for name, plain in manifest["artifacts"]["compiled"].items()
        }
        old = build(ValidationReport, manifest["validation"], str(root / "manifest.json"))
        stages = [build(StageRecord, s) for s in manifest["stages"]]
    except (EdgekitError, KeyError, TypeError) as err:
        raise InputError(f"{root / 'manifest.json'} does not describe a complete build: {err}") from err
    build_dir = BuildDir(root)
    for stage in stages:
        build_dir.verify_files(stage.directory, stage.files)
    golden = _golden(float_model, root / "float", manifest["model"]["metric"])
    cli_layer = parse_set_flags(overrides)
    results = []
    for name, entry in manifest["targets"].items():
        profile = build(TargetProfile, entry["profile"], str(root / "manifest.json"))
        previous = next((t for t in old.targets if t.target == name), None)
        if name not in compiled:
            if previous is not None:
                results.append(previous)
            continue
        settings = merge_settings([Layer("manifest.json", manifest["settings"]["targets"][name]), cli_layer])
        backend = get_backend(profile.backend)
        reason = backend.unavailable_reason()
        if reason:
            results.append(skipped_result(name, profile.backend, "unavailable", reason, 3))
            continue
        plan = _TargetPlan(profile, settings, backend, "")
        say(f"[validate] {name}")
        try:
            results.append(_validate_target(plan, compiled[name], root, golden, old.reference.metric))
        except EdgekitError as err:
            results.append(skipped_result(name, profile.backend, "failed", str(err), err.exit_code))
    report = ValidationReport(old.model, old.metric_name, old.reference, tuple(results))
    manifest["validation"] = to_plain(report)
    manifest["exit_code"] = exit_code_for(report)
    manifest["revalidated_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["revalidation_overrides"] = list(overrides)
    write_manifest(root, manifest)
    write_report(root, manifest, report)
    return BuildResult(root, manifest, report, manifest["exit_code"])
