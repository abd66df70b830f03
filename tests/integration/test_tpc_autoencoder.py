"""The detector-data autoencoder: its synthetic TPC data, reconstruction metrics, compression and FPGA exactness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

pytest.importorskip("hls4ml", reason="the default FPGA target needs the fpga extra: pip install 'edgekit[fpga]'")
MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "tpc_autoencoder"


@pytest.fixture(scope="module")
def tpc(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """``edgekit compile tpc_autoencoder`` at tiny size: its default targets, quantization on by its recipe."""
    return compile_model(CompileRequest("tpc_autoencoder", out=tmp_path_factory.mktemp("tpc") / "b", tiny=True))


def _data():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("tpc_data", MODEL_DIR / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_readout_is_seeded_zero_suppressed_and_trail_shaped() -> None:
    data = _data()
    a = data.load(n_train=200, n_test=100, seed=3)
    b = data.load(n_train=200, n_test=100, seed=3)
    assert np.array_equal(a["x_train"], b["x_train"]) and a["x_train"].shape == (200, 1, 16, 16)
    assert np.array_equal(a["y_test"], a["x_test"].reshape(100, -1))  # the autoencoder reconstructs its input
    adc = np.round(a["x_train"] * data.ADC_MAX)
    assert adc.max() <= data.ADC_MAX and not ((adc > 0) & (adc < 16)).any()  # zero suppression at 16 counts
    assert 0.05 < a["preprocessing"]["occupancy"] < 0.5  # sparse, not empty
    # every track crosses every pad row: most rows of a window have charge (a trail may curve out of the window)
    rows_hit = (a["x_train"][:, 0] > 0).any(axis=2).mean()
    assert rows_hit > 0.8
    # trails are curved: one track per window, no noise; the charge-weighted time per row follows a parabola
    windows = data.events(300, 16, 16, np.random.default_rng(0), max_tracks=1, noise_adc=0.0, threshold_adc=1.0)
    t = np.arange(16)
    curved = 0
    for w in windows:
        rows = np.flatnonzero(w.sum(axis=1) > 0)
        if len(rows) < 8:
            continue
        centre = (w[rows] * t).sum(axis=1) / w[rows].sum(axis=1)
        line = np.polyfit(rows, centre, 1, full=True)[1]
        parabola = np.polyfit(rows, centre, 2, full=True)[1]
        curved += bool(line.size and parabola.size and parabola[0] < 0.5 * line[0])
    assert curved > 150  # 238 of the 288 long trails here (curvature is drawn from 0 up to 0.04 bins per row**2)


def test_compile_reports_reconstruction_and_compression_with_the_fpga_bit_exact(tpc: BuildResult) -> None:
    assert tpc.exit_code == 0
    rows = {r.target: r for r in (tpc.report.reference, *tpc.report.extra_references, *tpc.report.targets)}
    assert set(rows) == {"float reference", "quantized reference (fixed)", "cpu-onnxruntime", "fpga-xczu7ev-stream"}
    for row in rows.values():
        assert set(row.reconstruction) == {"mse", "psnr", "signal_recovered"}
        assert row.metric == row.reconstruction["psnr"] > 10 and 0.5 < row.reconstruction["signal_recovered"] <= 1
        assert np.isnan(row.accuracy) and np.isnan(row.top1_agreement)
    fpga, quant = rows["fpga-xczu7ev-stream"], rows["quantized reference (fixed)"]
    assert fpga.max_abs_diff_vs_quantized == 0.0 and fpga.reconstruction == quant.reconstruction
    compression = tpc.manifest["model"]["compression"]
    assert compression["input_bits"] == 256 * 10 and compression["latent_values"] == 8
    ratios = {f["format"]: f["ratio"] for f in compression["formats"]}
    assert ratios == {"float": 2560 / (8 * 32), "quantized (fixed)": 2560 / (8 * 8)}
    report = (tpc.build_dir / "report.md").read_text()
    assert "## Compression" in report and "quantized (fixed): 8 bits each = 64 bits, ratio 40.0x" in report
    assert "psnr (dB)" in report and "signal kept" in report


def test_a_reconstruction_recipe_takes_only_reconstruction_metrics(tmp_path: Path) -> None:
    from edgekit.core.errors import ConfigError
    from edgekit.model.zoo import load_recipe

    folder = tmp_path / "ae"
    folder.mkdir()
    text = (MODEL_DIR / "recipe.toml").read_text().replace('metric = "psnr"', 'metric = "accuracy"')
    (folder / "recipe.toml").write_text(text)
    with pytest.raises(ConfigError, match="metric 'accuracy' does not fit task 'reconstruction'"):
        load_recipe(folder / "recipe.toml")


def test_the_manifest_records_the_task(tpc: BuildResult) -> None:
    manifest = json.loads((tpc.build_dir / "manifest.json").read_text())
    assert manifest["model"]["task"] == "reconstruction" and manifest["model"]["metric"] == "psnr"
