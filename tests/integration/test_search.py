"""Per-layer precision search at toy size: a recipe that keeps the budget and builds as it is.

The model is nested the way real ones are (blocks inside an nn.Sequential: layer names such as
``encoder.0.fc``), so per-layer names with dots go through every trial, the recipe and its rebuild.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the search runs on Ray: pip install 'edgekit[sweep]'")
pytest.importorskip("hls4ml", reason="the FPGA target needs the fpga extra: pip install 'edgekit[fpga]'")
REPO = Path(__file__).resolve().parents[2]
NESTED = REPO / "tests" / "fixtures" / "user_models" / "nested_mlp"
LAYERS = {"encoder.0.fc", "encoder.0.act", "encoder.1.fc", "encoder.1.act", "head"}


def _search(out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "edgekit", "search", str(NESTED), "--tiny", "--target", "fpga-xcvu13p",
               "--start", "5", "--lowest", "3", "--budget", "0.05", "--out", str(out), "--workers", "2",
               "--json"]  # fmt: skip
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)


def test_search_finds_per_layer_widths_within_budget_and_writes_a_buildable_recipe(tmp_path: Path) -> None:
    run = _search(tmp_path / "search")
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["ray_starts"] == 1  # every round (uniform, bisection, combination, repairs) in one Ray session
    goal = result["target_accuracy"]
    assert goal == pytest.approx(result["float_accuracy"] - 0.05)
    assert [r["point"] for r in result["uniform"]] == ["w5a5-s0", "w4a4-s0", "w3a3-s0"]
    chosen = result["chosen"]
    assert chosen["accuracy"] >= goal and chosen["lut"] > 0
    assert set(result["layers"]) <= LAYERS and result["layers"]
    for fields in result["layers"].values():
        assert all(3 <= bits < 5 for bits in fields.values())
    # the emitted model folder: its recipe carries the widths, and it compiles to the same numbers
    folder = Path(result["recipe_folder"])
    recipe = tomllib.loads((folder / "recipe.toml").read_text())
    assert recipe["name"] == "nested_mlp-mixed" and recipe["quant"]["weight_bits"] == 5
    text = (folder / "recipe.toml").read_text()
    assert '[quant.layers."encoder.0.fc"]' in text or "encoder.0.fc" not in result["layers"]  # a quoted TOML key
    for layer, fields in result["layers"].items():
        assert {k: recipe["quant"]["layers"][layer][k] for k in fields} == fields
    build = subprocess.run(
        [sys.executable, "-m", "edgekit", "compile", str(folder), "--tiny", "--target", "fpga-xcvu13p", "--json",
         "--out", str(tmp_path / "rebuild")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # trained as the trial was: one thread
    )  # fmt: skip
    assert build.returncode in (0, 1), build.stderr[-3000:]  # 1: the recipe's own gates, not the search's budget
    manifest = json.loads((tmp_path / "rebuild" / "manifest.json").read_text())
    plan = {lp["name"]: lp for lp in manifest["artifacts"]["quantized"]["fixed"]["plan"]["layers"]}
    for layer, fields in result["layers"].items():
        assert {k: plan[layer][k] for k in fields} == fields
    fpga = manifest["validation"]["targets"][0]
    assert fpga["max_abs_diff_vs_quantized"] == 0.0 and fpga["accuracy"] == pytest.approx(chosen["accuracy"])
    # every trial is a finished sweep point: a rerun runs none
    again = json.loads(_search(tmp_path / "search").stdout)
    assert again["trials"] == 0 and again["layers"] == result["layers"]
    assert again["ray_starts"] == 0  # nothing to run: no Ray at all


def test_recipe_toml_round_trips() -> None:
    from edgekit.explore.search import toml_text

    recipe = tomllib.loads((REPO / "models" / "jet_tagger" / "recipe.toml").read_text())
    layers = {"fc1": {"weight_bits": 4}, "encoder.0.fc": {"weight_bits": 3}, "blocks.1.act": {"activation_bits": 5}}
    recipe["quant"] = {"enabled": True, "layers": layers}
    assert tomllib.loads(toml_text(recipe)) == recipe
