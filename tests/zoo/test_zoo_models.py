"""Every zoo model: trains at tiny size, exports, compiles and runs; full size meets its recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.model.zoo import list_models, load_recipe, models_dir
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

ZOO = [r.name for r in list_models()]


def test_zoo_has_the_reference_models() -> None:
    assert {"jet_tagger", "lenet_digits", "tpc_autoencoder"} <= set(ZOO)


@pytest.mark.parametrize("name", ZOO)
def test_model_folder_is_complete(name: str) -> None:
    folder = models_dir() / name
    recipe = load_recipe(folder / "recipe.toml")
    assert recipe.name == name
    for rel in (recipe.model.partition(":")[0], recipe.data.partition(":")[0], "README.md"):
        assert (folder / rel).is_file(), rel
    assert recipe.tiny, "every zoo model needs a [tiny] variant for tests"


@pytest.mark.parametrize("name", ZOO)
def test_tiny_variant_trains_exports_and_runs(name: str, tmp_path: Path) -> None:
    result = compile_model(CompileRequest(name, out=tmp_path / name, tiny=True))
    assert result.exit_code == 0, [g.describe() for t in result.report.targets for g in t.failed_gates()]
    assert result.report.targets
    for target in result.report.targets:
        assert target.status == "ok" and target.n_samples > 0
        if target.quant_family:  # a quantized target computes what brevitas computes
            assert target.max_abs_diff_vs_quantized == 0.0, target.target
        elif target.reconstruction:  # a float autoencoder on the CPU reconstructs what torch does
            assert target.max_abs_diff_vs_float < 1e-4, target.target
        else:
            assert target.top1_agreement == 1.0, target.target


@pytest.mark.parametrize(
    ("name", "floor", "ceiling"),
    [("jet_tagger", 0.93, 0.99), ("lenet_digits", 0.95, 1.0), ("tpc_autoencoder", 24.0, 40.0)],  # PSNR in dB
)
def test_full_size_training_is_good(name: str, floor: float, ceiling: float, tmp_path: Path) -> None:
    result = compile_model(CompileRequest(name, ("cpu-onnxruntime",), out=tmp_path / name))
    # how long it takes (goal: under a minute on 2 cores) is measured by bench/bench_training.py
    assert floor <= result.report.reference.metric <= ceiling
    assert result.exit_code == 0
    if name == "jet_tagger":
        # hard enough: the tagger is far from perfect, as on the real hls4ml jet data (about 75%)
        assert 0.65 < result.report.reference.accuracy < 0.85
