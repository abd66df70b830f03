"""The Python API on objects and arrays: edgekit.compile(net, data=arrays), edgekit.load(build, target).predict(x)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import edgekit
from edgekit import CompileRequest, compile_model
from edgekit.core.errors import ConfigError, InputError

TARGETS = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xcvu13p-rtl")


class Tagger(nn.Module):  # a model of the user's own, defined where they work (not in a module edgekit can import)
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.head = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc1(x)))


def _arrays() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(240, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    return x[:160], y[:160], x[160:], y[160:]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[edgekit.BuildResult, nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    net = Tagger()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = edgekit.compile(
        net, data=_arrays(), targets=TARGETS, quant="w6a8", out=tmp_path_factory.mktemp("api") / "b",
        settings={"train": {"epochs": 3, "batch_size": 32}}, quiet=True,
    )  # fmt: skip
    return result, net, before


def test_an_object_and_arrays_compile_exactly_on_every_quantized_target(built) -> None:  # type: ignore[no-untyped-def]
    result, net, before = built
    assert result.exit_code == 0, result.summary()
    rows = {t.target: t for t in result.report.targets}
    assert {"cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xcvu13p-rtl"} <= set(rows)
    assert all(t.max_abs_diff_vs_quantized == 0 for t in rows.values())
    assert result.manifest["model"]["source"]["kind"] == "object"
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the user's object is not trained
    assert "all gates passed" in repr(result) and "fpga-xcvu13p: ok" in repr(result)
    report = (result.build_dir / "report.md").read_text()  # each layer's format, not only its width
    assert "| weight format | output format |" in report
    assert "| input | input | - | 8 | yes | - | - | - | fixed<8," in report


@pytest.mark.parametrize("target", TARGETS)
def test_predict_equals_the_builds_own_validation_outputs(built, target: str) -> None:  # type: ignore[no-untyped-def]
    """The artifact run on the held-out inputs gives what validation compared with brevitas (exact: its outputs)."""
    result, _, _ = built
    root = result.build_dir
    family = result.manifest["targets"][target]["quant_family"]
    inputs = np.load(root / "float" / "golden_inputs.npy")
    expected = np.load(root / f"quant-{family}" / "golden_quant_outputs.npy")
    with edgekit.load(root, target) as deployed:
        outputs = deployed.predict(inputs)
        np.testing.assert_array_equal(outputs, expected)
        np.testing.assert_array_equal(deployed.predict(inputs[3]), expected[3])  # one sample, no batch axis
        with pytest.raises(InputError, match=r"takes samples of shape \(6,\); x has shape \(4, 7\)"):
            deployed.predict(np.zeros((4, 7)))


def test_load_names_what_it_cannot_open(built) -> None:  # type: ignore[no-untyped-def]
    result, _, _ = built
    with pytest.raises(ConfigError, match="holds 3 compiled targets; name one"):
        edgekit.load(result.build_dir)
    with pytest.raises(ConfigError, match="'gpu-tensorrt-int8' is not compiled"):
        result.load("gpu-tensorrt-int8")


def test_a_factory_function_a_request_object_and_bad_arguments(tmp_path: Path) -> None:
    def build() -> nn.Module:
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))

    first = edgekit.compile(build, data=_arrays(), targets=["cpu-onnxruntime"], out=tmp_path / "a", quiet=True)
    assert first.exit_code == 0
    again = edgekit.compile(build, data=_arrays(), targets=["cpu-onnxruntime"], out=tmp_path / "a", quiet=True)
    assert again.manifest["model"]["source"] == first.manifest["model"]["source"]  # seeded: the same object key
    assert next(s for s in again.manifest["stages"] if s["name"] == "train")["cached"]
    with first.load() as deployed:  # the only target
        assert deployed.predict(_arrays()[2]).shape == (80, 3)
    request = CompileRequest(build(), ("cpu-onnxruntime",), out=tmp_path / "b", data=None, recipe=None)
    with pytest.raises(ConfigError, match="comes with no data or recipe"):
        compile_model(request)
    with pytest.raises(InputError, match="must be \\(x_train, y_train, x_test, y_test\\)"):
        edgekit.compile(build, data=_arrays()[:3], targets=["cpu-onnxruntime"], out=tmp_path / "c")
    with pytest.raises(ConfigError, match="the model is a int"):
        edgekit.compile(3, data=_arrays())
    assert not (tmp_path / "c").exists()


def test_a_factory_in_main_by_name(tmp_path: Path) -> None:
    """``__main__:build`` (a notebook's or a script's function) is built as an object, not imported."""
    import subprocess
    import sys

    script = (
        "from torch import nn\n"
        "from edgekit import CompileRequest, compile_model\n"
        "def build():\n"
        "    return nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 5))\n"
        f"r = compile_model(CompileRequest('__main__:build', ('cpu-onnxruntime',), out={str(tmp_path / 'b')!r},"
        " recipe='jet_tagger', tiny=True, overrides=('train.epochs=6',)))\n"
        "print('EXIT', r.exit_code, r.manifest['model']['source']['kind'])\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "EXIT 0 object" in run.stdout, run.stderr[-2000:]


def test_a_trained_object_taken_as_it_is_on_the_float_targets(tmp_path: Path) -> None:
    """epochs=0 keeps the object's weights: every float artifact computes the object's own forward.

    cpu-inductor compiles in a new process, which cannot import a class defined in a test or a notebook: the
    object goes there as a saved torch.export program.
    """
    torch.manual_seed(1)
    net = Tagger().eval()
    result = edgekit.compile(net, data=_arrays(), targets=["cpu-onnxruntime", "cpu-inductor"], out=tmp_path / "b",
                             settings={"train": {"epochs": 0}}, quiet=True)  # fmt: skip
    assert result.exit_code == 0, result.summary()
    x = _arrays()[2]
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    for target in ("cpu-onnxruntime", "cpu-inductor"):
        with result.load(target) as deployed:
            np.testing.assert_allclose(deployed.predict(x), expected, rtol=0, atol=1e-5)
