"""One feature a hundred times wider than the others: warned about, and with train.standardize kept on the FPGA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import edgekit
from edgekit.core.errors import ConfigError
from edgekit.model.standardize import Standardized, feature_stats, first_layer, fold_into

pytest.importorskip("hls4ml", reason="needs the fpga extra: pip install 'edgekit[fpga]'")


def _events() -> tuple[np.ndarray, ...]:
    """Six features of order one and a pT in GeV (column 2, around 300 with spread 100); the class needs both."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    x[:, 2] = x[:, 2] * 100 + 300
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + 2 * (x[:, 2] > 300)  # four classes, planted
    return x[:2400], y[:2400], x[2400:], y[2400:]


def _tagger() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))


def _build(tmp_path: Path, standardize: bool) -> edgekit.BuildResult:
    settings = {"train": {"epochs": 30, "batch_size": 64, "standardize": standardize}}
    return edgekit.compile(_tagger(), data=_events(), targets=["fpga-xcvu13p"], quant="w6a8",
                           out=tmp_path / f"std-{standardize}", settings=settings, quiet=True)  # fmt: skip


def test_standardization_on_the_fpga_keeps_the_accuracy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = _build(tmp_path, standardize=False)
    standardized = _build(tmp_path, standardize=True)
    plain_fpga = next(t for t in plain.report.targets if t.target == "fpga-xcvu13p")
    fpga = next(t for t in standardized.report.targets if t.target == "fpga-xcvu13p")
    float_metric = standardized.report.reference.metric
    # measured here: standardized, float 0.955 and the FPGA (w6a8, exact) 0.930 (97.4%); without, the float
    # model trains to 0.515 on the raw features and the FPGA's 8-bit raw input leaves 0.270
    assert float_metric >= 0.85
    assert fpga.max_abs_diff_vs_quantized == 0 and plain_fpga.max_abs_diff_vs_quantized == 0
    assert fpga.metric >= 0.95 * float_metric
    assert fpga.metric >= plain_fpga.metric + 0.3
    request = standardized.manifest["request"]["overrides"]
    assert any(o.startswith("quant.input_bits=") for o in request)  # raw features: raised, and recorded
    assert any(o.startswith('quant.layers."0".weight_bits=') for o in request)


def test_the_warning_names_the_wide_feature(tmp_path: Path) -> None:
    from edgekit.model.data import input_range_warning

    text = input_range_warning(_events()[0], 8)
    assert text is not None and "feature 2: |x| up to" in text and "Standardize the inputs" in text


def test_the_fold_is_the_standardized_model() -> None:
    x = _events()[0][:64]
    mean, std = feature_stats(x)
    for model in (nn.Sequential(nn.Linear(6, 5, bias=False), nn.ReLU()), nn.Sequential(nn.Linear(6, 5), nn.Tanh())):
        with torch.no_grad():
            expected = Standardized(model, mean, std, 2)(torch.from_numpy(x))
            name, layer = first_layer(model)
            fold_into(layer, mean, std)
            np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
        assert name == "0"
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    with pytest.raises(ConfigError, match="padding"):
        first_layer(conv)


def test_a_quantized_build_prints_the_warning(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    x_train, y_train, x_test, y_test = _events()
    np.savez(tmp_path / "ev.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (tmp_path / "nets.py").write_text(
        "from torch import nn\ndef mlp():\n    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))\n"
    )
    run = cli("compile", "nets:mlp", "--data", "ev.npz", "--quant", "int8", "-t", "cpu-onnxruntime-int8", "--tiny",
              "--out", "b", cwd=tmp_path)  # fmt: skip
    assert "WARNING: input features differ in range by" in run.stderr and "feature 2" in run.stderr, run.stderr
