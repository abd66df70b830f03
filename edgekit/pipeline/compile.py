"""The build spine: resolve -> train -> export -> [quantize -> export quantized] -> compile -> validate -> report.

Every setting is resolved and every target checked before any work starts (see
:mod:`edgekit.pipeline.planning`). Stages run through :class:`~edgekit.core.builddir.BuildDir`,
which caches them by content hash and swaps their output folders in atomically."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph, FloatModel, QuantizedModel
from edgekit.core.builddir import BuildDir, StageRecord
from edgekit.core.config import design_top_name
from edgekit.core.progress import say
from edgekit.core.results import TargetResult, ValidationReport
from edgekit.model.data import Dataset, input_range_warning, load_data
from edgekit.model.torch_model import load_float_model
from edgekit.pipeline.manifest import (
    assemble_manifest,
    write_manifest,
)
from edgekit.pipeline.plan import BuildPlan, plan_build, raw_feature_precision
from edgekit.pipeline.planning import TargetPlan
from edgekit.pipeline.request import BuildResult, CompileRequest
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
from edgekit.pipeline.verify import check_target, float_reference, golden_set, load_array, references, write_vectors
from edgekit.report.html import write_html_report
from edgekit.report.markdown import write_report
from edgekit.stages.train import UNQUANTIZED
from edgekit.stages.validate import reference_from_outputs

__all__ = ["Made", "compile_model"]


def _takes_torch(plan: TargetPlan) -> bool:
    """A float target whose backend compiles the torch model itself (hls4ml's float path, AOTInductor)."""
    return plan.family is None and plan.backend is not None and plan.backend.float_graph == "torch"


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
    planned = raw_feature_precision(planned, data)
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


@dataclass
class Made:
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
    manifest = assemble_manifest(planned, made, report, float_module, started)
    write_manifest(build_dir.root, manifest)
    write_report(build_dir.root, manifest, report)
    write_html_report(build_dir.root, manifest, report)
    return BuildResult(build_dir.root, manifest, report, manifest["exit_code"])


def _train_and_prune(planned: BuildPlan, data: Dataset, build_dir: BuildDir) -> Made:
    """The float reference (trained, or read from the ONNX file), then the pruned model if pruning is on."""
    request, spec, settings, root = planned.request, planned.spec, planned.settings, build_dir.root
    if planned.source.kind == "onnx":
        float_model, record = run_reference_file(spec, planned.source, build_dir, data, request.force)
    else:
        float_model, record = run_train(spec, planned.source, settings, build_dir, data, request.force)
    sha = record.files[float_model.weights]
    made = Made(float_model, float_model, root / "float", sha, [record])
    if settings.prune.method != "none":
        pruned, prune_record = run_prune(spec, settings, build_dir, float_model, sha, data, request.force)
        made.base_model, made.base_dir, made.base_sha = pruned, root / "pruned", prune_record.files[pruned.weights]
        made.records.append(prune_record)
        made.pruned = True
    return made


def _export_and_quantize(planned: BuildPlan, data: Dataset, build_dir: BuildDir, made: Made) -> None:
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


def _compile(planned: BuildPlan, build_dir: BuildDir, made: Made) -> None:
    """Every available target's artifact, then vendor synthesis when --synth asked for it."""
    force, plans = planned.request.force, planned.plans
    made.compiled, made.results, records = compile_targets(plans, build_dir, made.graphs, force)
    made.synthesis = run_synthesis(plans, made.compiled, made.results, records, build_dir, planned.settings, force)
    made.records += records


def _validate(planned: BuildPlan, build_dir: BuildDir, made: Made) -> tuple[ValidationReport, Any]:
    """Each compiled target against its references (float; quantized where one exists), and the test vectors."""
    spec, settings, root = planned.spec, planned.settings, build_dir.root
    say("[validate] against the float reference" + (" and the quantized reference" if made.quantized else ""))
    started = time.perf_counter()
    golden_float = golden_set(made.float_model, root / "float", spec.recipe.metric)
    float_module = None if planned.source.kind == "onnx" else load_float_model(made.float_model, root / "float")
    reference = float_reference(made.float_model, float_module, root / "float", golden_float, settings)
    golden, quant_golden, extra_refs = references(
        golden_float, made.base_model, made.base_dir, made.quantized, root, settings
    )
    if planned.brevitas and (root / "float" / UNQUANTIZED).is_file():
        twin = reference_from_outputs(
            "float twin (brevitas, quantization disabled)", "brevitas", "brevitas forward, every quantizer disabled",
            load_array(root / "float" / UNQUANTIZED), golden_float, settings.validation.max_samples,
        )  # fmt: skip
        extra_refs = (*extra_refs, twin)
    beside: dict[str, list[TargetResult]] = {}  # emulators a backend validates beside the target's own
    for plan in planned.plans:
        name = plan.profile.name
        if name in made.compiled:
            made.results[name], *beside[name] = check_target(
                plan.profile, plan.settings, made.compiled[name], root,
                quant_golden[plan.family] if plan.family else golden, reference.metric, made.graphs[name].graph,
                made.quantized[plan.family] if plan.family else None, made.base_model, made.base_dir,
            )  # fmt: skip
    write_vectors(planned.plans, made.compiled, build_dir, quant_golden)
    rows = tuple(r for p in planned.plans for r in (made.results[p.profile.name], *beside.get(p.profile.name, [])))
    made.records.append(StageRecord("validate", ".", "", False, time.perf_counter() - started, {}))
    return ValidationReport(spec.name, spec.recipe.metric, reference, rows, extra_refs), float_module
