"""The build spine end to end at tiny size: stages, cache, manifest, report, gates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from edgekit.core.errors import InputError
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.manifest import MANIFEST_SCHEMA_VERSION
from edgekit.pipeline.reopen import validate_build
from edgekit.pipeline.request import BuildResult, CompileRequest


def test_build_directory_layout_and_manifest(tiny_jet_build: BuildResult) -> None:
    root = tiny_jet_build.build_dir
    for rel in (
        "manifest.json",
        "report.md",
        "float/model.pt",
        "float/golden_inputs.npy",
        "export/model.onnx",
        "targets/cpu-onnxruntime/model.ort.onnx",
    ):
        assert (root / rel).is_file(), rel
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["schema_version"] == MANIFEST_SCHEMA_VERSION
    assert manifest["environment"]["libraries"]["torch"].startswith("2.13.0")
    assert {s["name"] for s in manifest["stages"]} == {"train", "export", "compile", "validate"}
    assert all(s["wall_s"] >= 0 for s in manifest["stages"])
    train = next(s for s in manifest["stages"] if s["name"] == "train")
    assert len(train["files"]["model.pt"]) == 64  # content hashes of the inputs to later stages
    assert manifest["settings"]["model"]["train"]["epochs"] == 2  # the recipe's [tiny]
    assert manifest["targets"]["cpu-onnxruntime"]["profile"]["backend"] == "onnxruntime"
    assert manifest["exit_code"] == tiny_jet_build.exit_code == 0
    assert not list(root.glob(".*tmp*")), "no temporary folders left behind"


def test_validation_numbers(tiny_jet_build: BuildResult) -> None:
    report = tiny_jet_build.report
    assert report.passed and bool(report)
    (ort_result,) = report.targets
    assert ort_result.status == "ok"
    assert ort_result.max_abs_diff_vs_float < 1e-4
    assert ort_result.top1_agreement == 1.0
    assert abs(ort_result.metric - report.reference.metric) < 1e-6
    assert {s.batch_size for s in ort_result.latency} == {1, 64}
    for stat in ort_result.latency:
        assert 0 < stat.p50_us <= stat.p99_us and stat.iterations >= 1 and "wall clock" in stat.clock
    assert "onnxruntime" in ort_result.runner and "CPUExecutionProvider" in ort_result.runner


def test_report_md_is_readable(tiny_jet_build: BuildResult) -> None:
    text = (tiny_jet_build.build_dir / "report.md").read_text()
    assert "# edgekit build: jet_tagger" in text
    assert "cpu-onnxruntime" in text and "PASS" in text and "p50" in text


def test_exported_onnx_has_a_dynamic_batch(tiny_jet_build: BuildResult) -> None:
    root = tiny_jet_build.build_dir
    session = ort.InferenceSession(str(root / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    from edgekit.core.artifacts import FloatModel
    from edgekit.core.schema import build
    from edgekit.model.torch_model import load_float_model

    float_model = build(FloatModel, tiny_jet_build.manifest["artifacts"]["float_model"])
    module = load_float_model(float_model, root / "float")
    x = np.load(root / "float" / "golden_inputs.npy")
    for batch in (1, 7, 300):
        got = session.run(None, {"input": x[:batch]})[0]
        with torch.no_grad():
            want = module(torch.from_numpy(x[:batch])).numpy()
        assert got.shape == (batch, 5)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_second_compile_reuses_every_stage(tiny_jet_build: BuildResult, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny_jet_build.build_dir, root)
    weights_mtime = (root / "float" / "model.pt").stat().st_mtime_ns
    again = compile_model(CompileRequest("jet_tagger", ("cpu-onnxruntime",), out=root, tiny=True))
    cached = {s["name"]: s["cached"] for s in again.manifest["stages"]}
    assert cached == {"train": True, "export": True, "compile": True, "validate": False}
    assert (root / "float" / "model.pt").stat().st_mtime_ns == weights_mtime
    assert again.report.reference.metric == pytest.approx(tiny_jet_build.report.reference.metric)

    # A changed training setting retrains, and everything downstream follows.
    changed = compile_model(
        CompileRequest("jet_tagger", ("cpu-onnxruntime",), out=root, tiny=True, overrides=("train.epochs=1",))
    )
    cached = {s["name"]: s["cached"] for s in changed.manifest["stages"]}
    assert cached == {"train": False, "export": False, "compile": False, "validate": False}
    # A changed gate does not retrain.
    gated = compile_model(
        CompileRequest(
            "jet_tagger", ("cpu-onnxruntime",), out=root, tiny=True, overrides=("train.epochs=1", "gates.min_metric=0")
        )
    )
    assert all(s["cached"] for s in gated.manifest["stages"] if s["name"] != "validate")


def test_training_is_deterministic(tiny_jet_build: BuildResult, tmp_path: Path) -> None:
    again = compile_model(CompileRequest("jet_tagger", ("cpu-onnxruntime",), out=tmp_path / "b", tiny=True))
    a = torch.load(tiny_jet_build.build_dir / "float" / "model.pt", weights_only=True)
    b = torch.load(again.build_dir / "float" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_gate_failure_gives_exit_code_1_and_names_the_gate(tiny_jet_build: BuildResult, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny_jet_build.build_dir, root)
    result = validate_build(root, overrides=("gates.min_metric=0.9999",))
    assert result.exit_code == 1 and not result.report
    (failed,) = result.report.targets[0].failed_gates()
    assert failed.name.startswith("min_metric")
    assert json.loads((root / "manifest.json").read_text())["exit_code"] == 1


def test_unavailable_target_is_reported_not_crashed(tmp_path: Path) -> None:
    result = compile_model(
        CompileRequest("jet_tagger", ("gpu-tensorrt-fp16", "cpu-onnxruntime"), out=tmp_path / "b", tiny=True)
    )
    gpu, cpu = result.report.targets
    assert gpu.status == "unavailable" and "TensorRT" in gpu.reason
    assert cpu.status == "ok" and cpu.passed
    assert result.exit_code == 3


def test_validate_runs_a_changed_artifact_as_is_and_refuses_changed_references(
    tiny_jet_build: BuildResult, tmp_path: Path
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny_jet_build.build_dir, root)
    artifact = root / "targets" / "cpu-onnxruntime" / "model.ort.onnx"
    artifact.write_bytes(artifact.read_bytes()[:-10])  # truncated: onnxruntime cannot load it
    result = validate_build(root)
    (cpu,) = result.report.targets
    assert cpu.status == "failed" and "cannot be loaded by onnxruntime" in cpu.reason
    assert cpu.modified == ("targets/cpu-onnxruntime/model.ort.onnx",) and result.exit_code == 2
    assert (
        "validated as modified since compile: targets/cpu-onnxruntime/model.ort.onnx"
        in (root / "report.md").read_text()
    )
    weights = root / "float" / "model.pt"  # a reference: validation would mean nothing against a changed one
    weights.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(InputError, match=r"model\.pt changed since it was built"):
        validate_build(root)
