"""An existing build opened from its manifest: re-validated (``edgekit validate``) or its reports written again
(``edgekit report``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgekit.backends import get_backend
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph, FloatModel, QuantizedModel
from edgekit.core.builddir import BuildDir, StageRecord
from edgekit.core.config import (
    Layer,
    Settings,
    merge_settings,
    parse_set_flags,
)
from edgekit.core.errors import ConfigError, EdgekitError, InputError
from edgekit.core.progress import say
from edgekit.core.results import ValidationReport
from edgekit.core.schema import build, to_plain
from edgekit.core.targets import TargetProfile, split_profile_overrides
from edgekit.pipeline.manifest import read_manifest, write_manifest
from edgekit.pipeline.request import BuildResult, exit_code_for
from edgekit.pipeline.verify import check_target, golden_set, quant_golden_set
from edgekit.report.html import write_html_report
from edgekit.report.markdown import write_report
from edgekit.stages.validate import (
    GoldenSet,
    skipped_result,
)

__all__ = ["OpenedBuild", "open_build", "render_reports", "validate_build"]


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
        return golden_set(float_model, self.root / "float", self.golden.metric)

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
    golden = golden_set(base, base_dir, manifest["model"]["metric"])
    quant_golden = {f: quant_golden_set(golden, root, q, base, base_dir) for f, q in quantized.items()}
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
        checked = check_target(
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
