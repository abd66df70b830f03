"""An ONNX file as the model: compiled as it is and validated against onnxruntime's run of the file itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgekit

RNG = np.random.default_rng(4)
W1 = RNG.normal(size=(10, 24)).astype(np.float32)
W2 = RNG.normal(size=(24, 3)).astype(np.float32) / 5


def _colleagues_file(path: Path, batch: int | str = "N") -> Path:
    """A tagger written with onnx.helper, not exported by torch: Gemm, Relu, MatMul, Add, Softmax, opset 13."""
    nodes = [
        helper.make_node("Gemm", ["features", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("MatMul", ["a", "w2"], ["m"]),
        helper.make_node("Add", ["m", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    inits = [
        numpy_helper.from_array(W1, "w1"),
        numpy_helper.from_array(np.full(24, 0.1, np.float32), "b1"),
        numpy_helper.from_array(W2, "w2"),
        numpy_helper.from_array(np.zeros(3, np.float32), "b2"),
    ]
    graph = helper.make_graph(
        nodes, "tagger",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, 10])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, 3])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="a colleague")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _data(path: Path) -> tuple[np.ndarray, ...]:
    x = RNG.normal(size=(300, 10)).astype(np.float32)
    hidden = np.maximum(x @ W1 + 0.1, 0)
    y = (hidden @ W2).argmax(axis=1)  # labels the file gets right: its own decisions
    y[::10] = (y[::10] + 1) % 3  # and a tenth it gets wrong, planted
    np.savez(path, x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    return x[200:], y[200:]


@pytest.mark.parametrize("batch", ["N", 1], ids=["dynamic-batch", "batch-fixed-at-1"])
def test_a_file_compiles_and_is_validated_against_its_own_run(cli, tmp_path: Path, batch: object) -> None:  # type: ignore[no-untyped-def]
    _colleagues_file(tmp_path / "tagger.onnx", batch)  # type: ignore[arg-type]
    _data(tmp_path / "events.npz")
    run = cli("compile", "tagger.onnx", "--data", "events.npz", "--out", "b", "--json", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    validation = run.json()["validation"]
    assert validation["reference"]["runner"].endswith("run of the file itself")
    assert validation["reference"]["metric"] == pytest.approx(0.9, abs=0.005)  # the planted tenth, wrong
    target = validation["targets"][0]
    assert target["target"] == "cpu-onnxruntime" and target["max_abs_diff_vs_float"] < 1e-6
    golden = np.load(tmp_path / "b" / "float" / "golden_float_outputs.npy")
    np.testing.assert_allclose(golden.sum(axis=1), 1.0, rtol=1e-5)  # the file's softmax, as the file computes it
    again = cli("validate", "b", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_a_file_from_python_and_predict(tmp_path: Path) -> None:
    path = _colleagues_file(tmp_path / "tagger.onnx")
    x = RNG.normal(size=(120, 10)).astype(np.float32)
    y = np.arange(120) % 3
    result = edgekit.compile(path, data=(x[:80], y[:80], x[80:], y[80:]), out=tmp_path / "b", quiet=True)
    assert result.exit_code == 0, result.summary()
    with result.load() as deployed:
        expected = np.load(tmp_path / "b" / "float" / "golden_float_outputs.npy")
        np.testing.assert_allclose(deployed.predict(x[80:]), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--quant", "w6a8"), "an ONNX file is compiled as it is: --quant"),
        (("--prune", "0.5"), "--prune fine-tunes a PyTorch model"),
        (("-t", "fpga-xcvu13p"), "a float ONNX file is not compiled for FPGA targets"),
        (("-t", "cpu-inductor"), "compiles the PyTorch model itself"),
        (("-t", "cpu-onnxruntime-int8"), "runs the INT8 graph edgekit exports"),
    ],
)
def test_what_a_file_cannot_do_is_refused_before_any_work(
    cli, tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:  # type: ignore[no-untyped-def]
    _colleagues_file(tmp_path / "tagger.onnx")
    _data(tmp_path / "events.npz")
    run = cli("compile", "tagger.onnx", "--data", "events.npz", *extra, "--out", "b", cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "b").exists()


def test_bad_files_are_named(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = _colleagues_file(tmp_path / "tagger.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 3])
    _data(tmp_path / "events.npz")
    two = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])], "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 10]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 10])],
    )  # fmt: skip
    onnx.save(helper.make_model(two, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "two.onnx"))
    fixed = helper.make_graph(  # a Reshape to a batch of one: runs on one sample, not on a batch
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(np.array([1, 10], np.int64), "shape")],
    )  # fmt: skip
    onnx.save(helper.make_model(fixed, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "fixed.onnx"))
    for name, message in [
        ("cut.onnx", "is not a valid ONNX model"),
        ("two.onnx", "has 2 inputs (a, b)"),
        ("fixed.onnx", "has a batch size fixed at 1 and does not run on batches"),
        ("none.onnx", "ONNX file none.onnx does not exist"),
    ]:
        run = cli("compile", name, "--data", "events.npz", "--out", "b", cwd=tmp_path)
        assert run.returncode == 2 and message in run.stderr, (name, run.stderr)
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "b").exists()


BREVITAS_QONNX = """\
import torch
from torch import nn
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import Int32Bias, {act}, {weight}

torch.manual_seed(0)
model = nn.Sequential(
    qnn.QuantIdentity(act_quant={act}, return_quant_tensor=True),
    qnn.QuantLinear(10, 16, bias=True, weight_quant={weight}, bias_quant={bias}, return_quant_tensor=True),
    qnn.QuantReLU(act_quant={act}, return_quant_tensor=True),
    qnn.QuantLinear(16, 3, bias=True, weight_quant={weight}, bias_quant={bias}),
)
model.train()
with torch.no_grad():  # brevitas collects its activation statistics on these batches
    for _ in range(8):
        model(torch.randn(256, 10))
model.eval()
export_qonnx(model, torch.zeros(1, 10), export_path={path!r}, dynamo=False)
"""


def _brevitas_qonnx(path: Path, act: str, weight: str, bias: str = "Int32Bias") -> Path:
    """A colleague's brevitas network (their own quantizers, not edgekit's), exported with export_qonnx."""
    import subprocess
    import sys

    script = BREVITAS_QONNX.format(act=act, weight=weight, bias=bias, path=str(path))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and path.is_file(), run.stderr[-2000:]
    return path


def test_a_brevitas_qonnx_file_is_exact_on_the_fpga_targets(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("hls4ml", reason="needs the fpga extra: pip install 'edgekit[fpga]'")
    _brevitas_qonnx(tmp_path / "q.onnx", "Int8ActPerTensorFixedPoint", "Int8WeightPerTensorFixedPoint")
    _data(tmp_path / "events.npz")
    run = cli("compile", "q.onnx", "--data", "events.npz", "-t", "fpga-xcvu13p", "-t", "fpga-xcvu13p-rtl",
              "--out", "b", "--json", "-q", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    validation = run.json()["validation"]
    assert (
        "qonnx" in validation["reference"]["runner"] and "run of the file itself" in validation["reference"]["runner"]
    )
    rows = {t["target"]: t for t in validation["targets"]}
    assert {"fpga-xcvu13p", "fpga-xcvu13p-rtl"} <= set(rows)
    assert all(t["max_abs_diff_vs_float"] == 0 and t["status"] == "ok" for t in rows.values())  # exact vs the file
    gates = [g["name"] for g in rows["fpga-xcvu13p"]["gates"]]
    assert "max_abs_diff_vs_float" in gates


def test_a_qonnx_file_with_float_scales_is_refused_for_the_fpga(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _brevitas_qonnx(tmp_path / "q.onnx", "Int8ActPerTensorFloat", "Int8WeightPerTensorFloat")
    _data(tmp_path / "events.npz")
    run = cli("compile", "q.onnx", "--data", "events.npz", "-t", "fpga-xcvu13p", "--out", "b", cwd=tmp_path)
    assert run.returncode == 2 and "cannot compute this QONNX file exactly" in run.stderr, run.stderr
    assert "is not a power of two" in run.stderr and not (tmp_path / "b").exists()
    _brevitas_qonnx(tmp_path / "fb.onnx", "Int8ActPerTensorFixedPoint", "Int8WeightPerTensorFixedPoint", "None")
    float_bias = cli("compile", "fb.onnx", "--data", "events.npz", "-t", "fpga-xcvu13p", "--out", "b", cwd=tmp_path)
    assert float_bias.returncode == 2 and "its bias is float, not quantized" in float_bias.stderr, float_bias.stderr
    cpu = cli("compile", "q.onnx", "--data", "events.npz", "--out", "b", cwd=tmp_path)
    assert cpu.returncode == 2 and "compiled for the FPGA targets only" in cpu.stderr, cpu.stderr
