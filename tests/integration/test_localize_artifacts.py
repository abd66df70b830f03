"""Localization on compiled artifacts: a fault planted in an ONNX Runtime artifact (INT8 or float) is named by layer.

The user's path: a weight of one layer is changed in the compiled file, ``edgekit validate`` runs the
changed artifact as it is, fails its gates with exit code 1, and the terminal, ``report.md`` and the
manifest name the layer.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

pytest.importorskip("brevitas", reason="quantized targets need the quant extra: pip install 'edgekit[quant]'")
TARGET = "cpu-onnxruntime-int8"


@pytest.fixture(scope="module")
def jet_int8(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    out = tmp_path_factory.mktemp("jet_int8_localize")
    return compile_model(CompileRequest("jet_tagger", (TARGET, "cpu-onnxruntime"), out=out, tiny=True, quant="int8"))


def _inputs(build: BuildResult):  # type: ignore[no-untyped-def]
    from edgekit.core.artifacts import CompiledArtifact, ExportedGraph, FloatModel, QuantizedModel
    from edgekit.core.schema import build as build_artifact

    m = build.manifest
    return (
        build_artifact(CompiledArtifact, m["artifacts"]["compiled"][TARGET]),
        build_artifact(FloatModel, m["artifacts"]["float_model"]),
        build_artifact(QuantizedModel, m["artifacts"]["quantized"]["int8"]),
        build_artifact(ExportedGraph, m["targets"][TARGET]["graph"]),
    )


WEIGHTED = ("Gemm", "FusedGemm", "QGemm", "MatMul", "Conv", "FusedConv")


def _flip_second_layer_weight(path: Path) -> None:
    """Flip the sign of the largest weight of the second weighted layer in ONNX Runtime's optimized graph."""
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    gemms = [n for n in model.graph.node if n.op_type in WEIGHTED]
    weight = gemms[1].input[1] if gemms[1].op_type != "QGemm" else gemms[1].input[3]
    while weight not in inits:  # through the DequantizeLinear (and anything else) that feeds the weights
        weight = producers[weight].input[0]
    values = numpy_helper.to_array(inits[weight]).copy()
    values[np.unravel_index(np.argmax(np.abs(values.astype(np.float64))), values.shape)] *= -1
    inits[weight].CopyFrom(numpy_helper.from_array(values, weight))
    onnx.save(model, str(path))


def test_the_unchanged_artifact_traces_exactly_like_brevitas(jet_int8: BuildResult) -> None:
    from edgekit.backends.onnxruntime import trace_quantized
    from edgekit.model.brevitas_model import load_quant_model
    from edgekit.model.localize import first_divergence, torch_trace

    artifact, float_model, quantized, _ = _inputs(jet_int8)
    root = jet_int8.build_dir
    x = np.load(root / "float" / "golden_inputs.npy")[:64]
    traced = trace_quantized(root / "targets" / TARGET / artifact.path, artifact.input_name, x)
    assert [kind for _, kind, _ in traced] == ["input", "relu", "relu"]
    reference = torch_trace(load_quant_model(quantized, root / "quant-int8", float_model, root / "float"), x)
    assert first_divergence(reference, traced) is None


def test_a_fault_planted_in_the_artifact_is_named_and_fails_the_gate(jet_int8: BuildResult, tmp_path: Path) -> None:
    from edgekit.pipeline.planning import plan_target
    from edgekit.pipeline.request import exit_code_for
    from edgekit.pipeline.verify import check_target, golden_set, quant_golden_set

    root = tmp_path / "copy"
    shutil.copytree(jet_int8.build_dir, root)
    artifact, float_model, quantized, graph = _inputs(jet_int8)
    _flip_second_layer_weight(root / "targets" / TARGET / artifact.path)
    float_dir = root / "float"
    golden = quant_golden_set(golden_set(float_model, float_dir, "roc_auc"), root, quantized, float_model, float_dir)
    plan = plan_target(TARGET, [], True)
    reference_metric = jet_int8.report.reference.metric
    (result,) = check_target(
        plan.profile, plan.settings, artifact, root, golden, reference_metric, graph, quantized, float_model,
        root / "float",
    )  # fmt: skip
    assert result.status == "ok" and result.max_abs_diff_vs_quantized > 0 and not result.passed
    assert result.divergence.startswith("first diverging layer: relu2 (after fc2; target layer"), result.divergence
    errors = {e.layer: e.max_abs_diff for e in result.layer_errors}
    assert errors["input_quant"] == 0 and errors["relu1"] == 0 and errors["relu2"] > 0
    report = replace(jet_int8.report, targets=(result,))
    assert exit_code_for(report) == 1
    from edgekit.report.html import write_html_report

    manifest = {**jet_int8.manifest, "validation": None}
    page = write_html_report(tmp_path, manifest, report).read_text()
    assert 'id="plot-layer-errors-cpu-onnxruntime-int8"' in page and "relu2 (relu)" in page
    from edgekit.report.markdown import problems

    assert any("relu2 (after fc2;" in line for line in problems(report))


def test_the_lsb_of_the_outputs_is_brevitas_output_scale(jet_int8: BuildResult) -> None:
    """The last bit read off the quantized golden outputs is the scale of brevitas' output QuantTensor."""
    import torch

    from edgekit.core.metrics import lsb_grid
    from edgekit.model.brevitas_model import load_quant_model

    _, float_model, quantized, _ = _inputs(jet_int8)
    root = jet_int8.build_dir
    model = load_quant_model(quantized, root / "quant-int8", float_model, root / "float")
    seen = []
    model.get_submodule("output").register_forward_hook(lambda m, a, out: seen.append(out.scale))
    with torch.no_grad():
        model(torch.from_numpy(np.load(root / "float" / "golden_inputs.npy")[:4]))
    lsb = lsb_grid(np.load(root / "quant-int8" / quantized.golden_quant_outputs))
    assert lsb is not None and np.array_equal(lsb, seen[0].detach().numpy().reshape(-1).astype(np.float64))
    (int8, _) = jet_int8.report.targets
    assert int8.max_lsb_diff_vs_quantized == 0 and "= 0 LSB (int8)" in (root / "report.md").read_text()


def test_edgekit_validate_names_the_layer_changed_in_each_artifact(jet_int8: BuildResult, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "copy"
    shutil.copytree(jet_int8.build_dir, root)
    for target in (TARGET, "cpu-onnxruntime"):
        _flip_second_layer_weight(root / "targets" / target / "model.ort.onnx")
    run = cli("validate", str(root))
    assert run.returncode == 1, run.stderr
    out = run.stdout
    assert f"{TARGET}: validated as modified since compile: targets/{TARGET}/model.ort.onnx" in out
    assert f"{TARGET}: gate failed: max_abs_diff_vs_quantized" in out
    assert f"{TARGET}: first diverging layer: relu2 (after fc2; target layer" in out
    # the float target: departs beyond fp32's tolerance at the same layer, its agreement gates fail
    assert "cpu-onnxruntime: gate failed: max_abs_diff_vs_float" in out
    assert "cpu-onnxruntime: first diverging layer: relu2 (after fc2; target layer /relu2/Relu_output_0" in out
    report = (root / "report.md").read_text()
    assert report.count("**first diverging layer: relu2 (after fc2;") == 2
    assert "| relu1 | relu | 0 |" in report  # the layer before the fault is untouched in both
    manifest = json.loads((root / "manifest.json").read_text())
    rows = {t["target"]: t for t in manifest["validation"]["targets"]}
    assert [e["layer"] for e in rows["cpu-onnxruntime"]["layer_errors"]] == ["relu1", "relu2"]
    assert rows[TARGET]["max_lsb_diff_vs_quantized"] >= 1 and manifest["exit_code"] == 1


def test_a_fault_in_a_float_cnn_artifact_is_named(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """lenet_digits on the float ONNX Runtime target: conv2's weight changed, relu2 after conv2 is named."""
    build = compile_model(CompileRequest("lenet_digits", ("cpu-onnxruntime",), out=tmp_path / "lenet", tiny=True))
    assert build.exit_code == 0
    _flip_second_layer_weight(tmp_path / "lenet" / "targets" / "cpu-onnxruntime" / "model.ort.onnx")
    run = cli("validate", str(tmp_path / "lenet"))
    assert run.returncode == 1, run.stderr
    assert "cpu-onnxruntime: first diverging layer: relu2 (after conv2; target layer" in run.stdout, run.stdout
