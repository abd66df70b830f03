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
