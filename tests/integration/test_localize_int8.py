"""Localization on a compiled artifact: a fault planted in the INT8 ONNX Runtime artifact is named by layer."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgekit.pipeline import BuildResult, CompileRequest, compile_model

pytest.importorskip("brevitas", reason="quantized targets need the quant extra: pip install 'edgekit[quant]'")
TARGET = "cpu-onnxruntime-int8"


@pytest.fixture(scope="module")
def jet_int8(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    out = tmp_path_factory.mktemp("jet_int8_localize")
    return compile_model(CompileRequest("jet_tagger", (TARGET,), out=out, tiny=True, quant="int8"))


def _inputs(build: BuildResult):  # type: ignore[no-untyped-def]
    from edgekit.artifacts import CompiledArtifact, ExportedGraph, FloatModel, QuantizedModel
    from edgekit.schema import build as build_artifact

    m = build.manifest
    return (
        build_artifact(CompiledArtifact, m["artifacts"]["compiled"][TARGET]),
        build_artifact(FloatModel, m["artifacts"]["float_model"]),
        build_artifact(QuantizedModel, m["artifacts"]["quantized"]["int8"]),
        build_artifact(ExportedGraph, m["targets"][TARGET]["graph"]),
    )


def _flip_second_layer_weight(path: Path) -> None:
    """Flip the sign of the largest weight of the second Gemm (fc2) in ONNX Runtime's optimized graph."""
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    gemms = [n for n in model.graph.node if n.op_type in ("Gemm", "FusedGemm", "QGemm", "MatMul")]
    weight = gemms[1].input[1] if gemms[1].op_type != "QGemm" else gemms[1].input[3]
    while weight not in inits:  # through the DequantizeLinear (and anything else) that feeds the weights
        weight = producers[weight].input[0]
    values = numpy_helper.to_array(inits[weight]).copy()
    values[np.unravel_index(np.argmax(np.abs(values.astype(np.float64))), values.shape)] *= -1
    inits[weight].CopyFrom(numpy_helper.from_array(values, weight))
    onnx.save(model, str(path))


def test_the_unchanged_artifact_traces_exactly_like_brevitas(jet_int8: BuildResult) -> None:
    from edgekit.backends.onnxruntime import trace_quantized
    from edgekit.brevitas_model import load_quant_model
    from edgekit.localize import first_divergence, torch_trace

    artifact, float_model, quantized, _ = _inputs(jet_int8)
    root = jet_int8.build_dir
    x = np.load(root / "float" / "golden_inputs.npy")[:64]
    traced = trace_quantized(root / "targets" / TARGET / artifact.path, artifact.input_name, x)
    assert [kind for _, kind, _ in traced] == ["input", "relu", "relu"]
    reference = torch_trace(load_quant_model(quantized, root / "quant-int8", float_model, root / "float"), x)
    assert first_divergence(reference, traced) is None


def test_a_fault_planted_in_the_artifact_is_named_and_fails_the_gate(jet_int8: BuildResult, tmp_path: Path) -> None:
    from edgekit.pipeline import _check_target, _golden, _quant_golden, exit_code_for
    from edgekit.planning import plan_target

    root = tmp_path / "copy"
    shutil.copytree(jet_int8.build_dir, root)
    artifact, float_model, quantized, graph = _inputs(jet_int8)
    _flip_second_layer_weight(root / "targets" / TARGET / artifact.path)
    golden = _quant_golden(_golden(float_model, root / "float", "roc_auc"), root, quantized)
    plan = plan_target(TARGET, [], True)
    reference_metric = jet_int8.report.reference.metric
    (result,) = _check_target(
        plan.profile, plan.settings, artifact, root, golden, reference_metric, graph, quantized, float_model,
        root / "float",
    )  # fmt: skip
    assert result.status == "ok" and result.max_abs_diff_vs_quantized > 0 and not result.passed
    assert result.divergence.startswith("first diverging layer: relu2 (after fc2; target layer"), result.divergence
    errors = {e.layer: e.max_abs_diff for e in result.layer_errors}
    assert errors["input_quant"] == 0 and errors["relu1"] == 0 and errors["relu2"] > 0
    report = replace(jet_int8.report, targets=(result,))
    assert exit_code_for(report) == 1
    from edgekit.report_html import write_html_report

    manifest = {**jet_int8.manifest, "validation": None}
    page = write_html_report(tmp_path, manifest, report).read_text()
    assert 'id="plot-layer-errors-cpu-onnxruntime-int8"' in page and "relu2 (relu)" in page
    from edgekit.report import problems

    assert any("relu2 (after fc2;" in line for line in problems(report))
