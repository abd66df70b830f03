"""Quantization end to end: brevitas model, QCDQ and QONNX exports that compute exactly what brevitas computes."""

from __future__ import annotations

import importlib.util
import shutil
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgekit.core.errors import ConfigError
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

pytest.importorskip("brevitas", reason="quantization tests need the quant extra: pip install 'edgekit[quant]'")
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

TARGETS = ("cpu-onnxruntime-int8", "fpga-xcvu13p")
# Enough held-out samples for the exactness claim (>= 1000) while training stays tiny.
SIZE = {"jet_tagger": ("data_options.n_samples=6000",), "lenet_digits": ()}


@pytest.fixture(scope="module", params=["jet_tagger", "lenet_digits"])
def quant_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    name = request.param
    out = tmp_path_factory.mktemp(f"quant_{name}")
    req = CompileRequest(name, TARGETS, out=out, tiny=True, quant="w6a8", overrides=SIZE[name])
    return compile_model(req)


def _quant_outputs(build: BuildResult, family: str) -> np.ndarray:
    return np.load(build.build_dir / f"quant-{family}" / "golden_quant_outputs.npy")


def _golden_inputs(build: BuildResult) -> np.ndarray:
    return np.load(build.build_dir / "float" / "golden_inputs.npy")


@pytest.mark.parametrize("family", ["fixed", "int8"])
def test_qcdq_on_onnxruntime_equals_brevitas_exactly(quant_build: BuildResult, family: str) -> None:
    x = _golden_inputs(quant_build)
    assert len(x) >= 1000
    session = ort.InferenceSession(
        str(quant_build.build_dir / f"export-{family}" / "model.qcdq.onnx"), providers=["CPUExecutionProvider"]
    )
    assert session.get_inputs()[0].shape[0] == "batch"
    out = session.run(None, {"input": x})[0]
    np.testing.assert_array_equal(out, _quant_outputs(quant_build, family))
    ops = {n.op_type for n in onnx.load(str(quant_build.build_dir / f"export-{family}" / "model.qcdq.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


@pytest.mark.parametrize("family", ["fixed", "int8"])
def test_qonnx_in_qonnx_executor_equals_brevitas_exactly(quant_build: BuildResult, family: str) -> None:
    # The export stage ran both QONNX graphs on every held-out sample (>= 1000) in one batch ...
    exported = quant_build.manifest["artifacts"]["quant_exports"][family]
    assert exported["n_check_samples"] >= 1000
    assert exported["max_abs_diff_vs_brevitas"] == {"qcdq": 0.0, "qonnx": 0.0, "qonnx-clean": 0.0}
    # ... and here, independently, sample by sample as exported (batch 1), on a subset.
    x = _golden_inputs(quant_build)[:60]
    expected = _quant_outputs(quant_build, family)[:60]
    folder = quant_build.build_dir / f"export-{family}"
    for name, data in (
        ("model.qonnx.onnx", x),
        ("model.qonnx.clean.onnx", np.moveaxis(x, 1, -1) if x.ndim == 4 else x),
    ):
        model = ModelWrapper(str(folder / name)).transform(InferShapes())
        assert "Quant" in {n.op_type for n in model.graph.node}
        outputs = [
            execute_onnx(model, {model.graph.input[0].name: sample[None].astype(np.float32)})[
                model.graph.output[0].name
            ][0]
            for sample in data
        ]
        np.testing.assert_array_equal(np.stack(outputs), expected, err_msg=name)


def test_cleaned_qonnx_is_ready_for_hls4ml(quant_build: BuildResult) -> None:
    model = ModelWrapper(str(quant_build.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    ops = {n.op_type for n in model.transform(InferShapes()).graph.node}
    assert "Gemm" not in ops, "hls4ml has no Gemm handler: GemmToMatMul must have run"
    if len(quant_build.manifest["model"]["input_shape"]) > 1:
        assert model.get_tensor_shape(model.graph.input[0].name)[-1] == 1  # channels-last input (N, 8, 8, 1)


def test_manifest_and_validation_of_the_quantized_build(quant_build: BuildResult) -> None:
    manifest = quant_build.manifest
    assert set(manifest["artifacts"]["quantized"]) == {"fixed", "int8"}
    for family in ("fixed", "int8"):
        diffs = manifest["artifacts"]["quant_exports"][family]["max_abs_diff_vs_brevitas"]
        assert diffs == {"qcdq": 0.0, "qonnx": 0.0, "qonnx-clean": 0.0}
        plan = manifest["artifacts"]["quantized"][family]["plan"]
        weighted = [layer for layer in plan["layers"] if layer["weight_bits"] is not None]
        assert weighted and all(layer["weight_bits"] == 6 for layer in weighted)
        input_layer = next(layer for layer in plan["layers"] if layer["kind"] == "input")
        assert input_layer["activation_bits"] == 8 and input_layer["activation_signed"]
    fixed = manifest["artifacts"]["quantized"]["fixed"]["plan"]
    int8 = manifest["artifacts"]["quantized"]["int8"]["plan"]
    assert all(layer["weight_scaling"] in (None, "per_tensor") for layer in fixed["layers"])
    assert all(layer["weight_scaling"] in (None, "per_channel") for layer in int8["layers"])
    relu_fixed = next(layer for layer in fixed["layers"] if layer["kind"] == "relu")
    relu_int8 = next(layer for layer in int8["layers"] if layer["kind"] == "relu")
    assert not relu_fixed["activation_signed"] and relu_int8["activation_signed"]  # TensorRT Q/DQ is signed

    ort_int8, fpga = quant_build.report.targets
    assert ort_int8.status == "ok" and ort_int8.quant_family == "int8"
    assert ort_int8.max_abs_diff_vs_quantized == 0.0 and ort_int8.exact_match_vs_quantized == 1.0
    assert any(g.name == "max_abs_diff_vs_quantized" and g.passed for g in ort_int8.gates)
    if importlib.util.find_spec("hls4ml") is None:
        assert fpga.status == "unavailable"
    else:
        assert fpga.status == "ok" and fpga.quant_family == "fixed" and fpga.max_abs_diff_vs_quantized == 0.0
    assert {r.quant_family for r in quant_build.report.extra_references} == {"fixed", "int8"}
    text = (quant_build.build_dir / "report.md").read_text()
    assert "quantized reference (fixed)" in text


def test_per_layer_override_and_ptq(tmp_path: Path) -> None:
    result = compile_model(
        CompileRequest(
            "jet_tagger",
            ("cpu-onnxruntime-int8",),
            out=tmp_path / "b",
            tiny=True,
            quant="w8a8",
            overrides=("quant.method=ptq", "quant.layers.fc1.weight_bits=4", "quant.layers.relu1.activation_bits=6"),
        )
    )
    assert result.exit_code == 0
    plan = result.manifest["artifacts"]["quantized"]["int8"]["plan"]
    layers = {layer["name"]: layer for layer in plan["layers"]}
    assert layers["fc1"]["weight_bits"] == 4 and layers["fc2"]["weight_bits"] == 8
    assert layers["relu1"]["activation_bits"] == 6
    # The QCDQ graph carries the 4-bit weights as a Clip to [-7, 7] after QuantizeLinear.
    graph = onnx.load(str(result.build_dir / "export-int8" / "model.qcdq.onnx"))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.graph.initializer}
    clip_ranges = {
        (float(inits[n.input[1]]), float(inits[n.input[2]]))
        for n in graph.graph.node
        if n.op_type == "Clip" and len(n.input) == 3 and n.input[1] in inits
    }
    assert (-7.0, 7.0) in clip_ranges
    assert result.manifest["artifacts"]["quantized"]["int8"]["method"] == "ptq"


RESNETISH = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(4)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(4 * 4 * 4, 10)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = torch.relu(self.bn2(self.conv2(y)) + y)
            return self.fc(torch.flatten(self.pool(y), 1))

    def build(**recipe_options):  # borrows lenet_digits' recipe, whose model options do not apply here
        return Block()

    class Net1d(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 4, 3, padding=1)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool1d(2)
            self.fc = nn.Linear(4 * 8, 5)

        def forward(self, x):
            y = self.pool(self.relu(self.conv(x.view(-1, 1, 16))))
            return self.fc(y.flatten(1))

    def net1d(**recipe_options):
        return Net1d()

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 5)
            self.gate = nn.GELU()

        def forward(self, x):
            return self.gate(self.fc(x))

    def odd(**recipe_options):
        return Odd()
    """
)


@pytest.fixture()
def user_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "user_nets.py").write_text(RESNETISH)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_conv1d_and_reshapes_stay_exact(user_models: Path) -> None:
    # INT8 only: hls4ml cannot build its MaxPool1d (refused before any work: see the bad requests below)
    targets = ("cpu-onnxruntime-int8",)
    request = CompileRequest(
        "user_nets:net1d", targets, out=user_models / "b", recipe="jet_tagger", tiny=True, quant="w6a8"
    )
    result = compile_model(request)
    assert set(result.manifest["artifacts"]["quant_exports"]["int8"]["max_abs_diff_vs_brevitas"].values()) == {0.0}
    assert result.report.targets[0].max_abs_diff_vs_quantized == 0.0
    kinds = [layer["kind"] for layer in result.manifest["artifacts"]["quantized"]["int8"]["plan"]["layers"]]
    assert kinds == ["input", "conv1d", "relu", "linear"]


def test_batchnorm_folding_and_residual_add_stay_exact(user_models: Path) -> None:
    result = compile_model(
        CompileRequest(
            "user_nets:build",
            TARGETS,
            out=user_models / "b",
            recipe="lenet_digits",
            tiny=True,
            quant="w6a8",
        )
    )
    for family in ("fixed", "int8"):
        assert result.manifest["artifacts"]["quant_exports"][family]["max_abs_diff_vs_brevitas"] == {
            "qcdq": 0.0,
            "qonnx": 0.0,
            "qonnx-clean": 0.0,
        }
        kinds = [layer["kind"] for layer in result.manifest["artifacts"]["quantized"][family]["plan"]["layers"]]
        assert "add" in kinds and "batchnorm" not in kinds
    assert result.report.targets[0].max_abs_diff_vs_quantized == 0.0


@pytest.mark.parametrize(
    ("model", "quant", "overrides", "targets", "message"),
    [
        ("user_nets:odd", "w6a8", (), TARGETS, "gate (GELU)"),
        ("user_nets:net1d", "w6a8", (), TARGETS, "pool: a 1-D pooling: hls4ml 1.3.0's ONNX reader cannot build it"),
        ("jet_tagger", "w0a8", (), TARGETS, "quant.weight_bits: 0 is out of range"),
        ("jet_tagger", "w6a8", ("quant.layers.fc1.bias_bits=33",), TARGETS, "bias_bits: 33 is out of range"),
        ("jet_tagger", "w6a8", ("quant.scale_type=float",), ("fpga-xcvu13p",), "fc1: float scales are not bit-exact"),
        ("jet_tagger", "w6a8", (), ("gpu-tensorrt-int8",), "fc1: 6-bit weights: TensorRT INT8 takes 8-bit"),
        ("jet_tagger", "w6a8", ("quant.layers.fc9.weight_bits=4",), TARGETS, "layer(s) the model does not have: fc9"),
        ("jet_tagger", None, (), ("cpu-onnxruntime-int8",), "run an INT8 graph, but quantization is off"),
    ],
)
def test_bad_quantization_requests_fail_before_any_work(
    user_models: Path,
    model: str,
    quant: str | None,
    overrides: tuple[str, ...],
    targets: tuple[str, ...],
    message: str,
) -> None:
    out = user_models / "untouched"
    with pytest.raises(ConfigError) as err:
        compile_model(
            CompileRequest(model, targets, out=out, recipe="jet_tagger", tiny=True, quant=quant, overrides=overrides)
        )
    assert message in str(err.value)
    assert err.value.exit_code == 2
    assert not out.exists(), "nothing is written for a request that fails its checks"


def test_cli_quant_exit_code_and_untouched_build(cli, tiny_jet_build: BuildResult, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "copy"
    shutil.copytree(tiny_jet_build.build_dir, root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    run = cli("compile", "jet_tagger", "--tiny", "--quant", "w6a8", "-t", "fpga-xcvu13p", "--out", str(root),
              "--set", "quant.scale_type=float")  # fmt: skip
    assert run.returncode == 2 and "float scales are not bit-exact" in run.stderr
    assert "Traceback" not in run.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    bad = cli("compile", "jet_tagger", "--tiny", "--quant", "w33a8", "--out", str(root))
    assert bad.returncode == 2 and "quant.weight_bits: 33 is out of range" in bad.stderr
