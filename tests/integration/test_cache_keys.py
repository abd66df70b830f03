"""Stage caches see what decides their outputs: library and tool versions, edgekit's code, the data, the user's code.

Each test changes one thing the way it changes in real life (an upgraded library, an edited helper module,
a regenerated data file) and checks that exactly the stages that depend on it are built again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgekit.core import provenance
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

TARGETS = ("cpu-onnxruntime", "cpu-onnxruntime-int8")


def _rebuilt(result: BuildResult) -> set[str]:
    return {s["directory"] for s in result.manifest["stages"] if s["directory"] != "." and not s["cached"]}


def _build(out: Path) -> BuildResult:
    return compile_model(CompileRequest("jet_tagger", TARGETS, out=out, tiny=True, quant="int8"))


def _bump_library(monkeypatch: pytest.MonkeyPatch, dist: str) -> None:
    """An upgrade of ``dist``, as the one function that reads versions sees it."""
    real = provenance.library_version
    monkeypatch.setattr(provenance, "library_version", lambda name: "99.0" if name == dist else real(name))


@pytest.fixture(scope="module")
def first_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    pytest.importorskip("brevitas", reason="the quantized stages need the quant extra: pip install 'edgekit[quant]'")
    return _build(tmp_path_factory.mktemp("cache_keys") / "b")


def test_an_unchanged_rebuild_reuses_every_stage(first_build: BuildResult) -> None:
    assert _rebuilt(_build(first_build.build_dir)) == set()


@pytest.mark.parametrize(
    ("library", "expected"),
    [
        # brevitas runs the quantization and its export, nothing else
        ("brevitas", {"quant-int8", "export-int8"}),
        # onnxruntime checks the quantized export and is the runtime both targets are compiled for
        ("onnxruntime", {"export-int8", "targets/cpu-onnxruntime", "targets/cpu-onnxruntime-int8"}),
        # torch trains, exports and quantizes; the compiled graphs come out byte for byte the same
        ("torch", {"float", "export", "quant-int8", "export-int8"}),
    ],
)
def test_a_library_upgrade_rebuilds_the_stages_that_run_it(
    first_build: BuildResult, monkeypatch: pytest.MonkeyPatch, library: str, expected: set[str]
) -> None:
    _bump_library(monkeypatch, library)
    result = _build(first_build.build_dir)
    assert _rebuilt(result) == expected
    recorded = {s["directory"]: s["versions"] for s in result.manifest["stages"]}
    for directory in expected:
        assert recorded[directory][library] == "99.0"
    assert result.manifest["environment"]["versions_used"][library] == "99.0"
    assert result.manifest["environment"]["libraries"]["brevitas"]  # the manifest names brevitas and qonnx too
    assert "qonnx" in result.manifest["environment"]["libraries"]
    monkeypatch.undo()
    assert _rebuilt(_build(first_build.build_dir)) == expected  # and back


def test_a_change_to_a_backends_code_rebuilds_only_its_targets(
    first_build: BuildResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = provenance.code_sha256

    def edited(*modules: str) -> str:  # as if edgekit/backends/onnxruntime.py had been edited
        return real(*modules) + ("-edited" if "edgekit.backends.onnxruntime" in modules else "")

    monkeypatch.setattr(provenance, "code_sha256", edited)
    assert _rebuilt(_build(first_build.build_dir)) == {"targets/cpu-onnxruntime", "targets/cpu-onnxruntime-int8"}


def test_the_code_hash_follows_imports() -> None:
    train = provenance._edgekit_closure("edgekit.stages.train")
    names = {p.name for p in train}
    assert {"train.py", "training.py", "data.py", "zoo.py"} <= names  # what training runs, lazily or not
    assert "report_html.py" not in names and "hls4ml.py" not in names  # and not what it does not
    assert provenance.code_sha256("edgekit.stages.train") != provenance.code_sha256("edgekit.stages.export")


def test_backend_versions_come_from_the_one_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekit.backends.onnxruntime import OnnxRuntimeBackend

    before = OnnxRuntimeBackend().versions()
    _bump_library(monkeypatch, "onnx")
    assert OnnxRuntimeBackend().versions() == {**before, "onnx": "99.0"}
    monkeypatch.setattr(provenance, "_tool_version", lambda path, flag, label: "77.1")
    pytest.importorskip("hls4ml", reason="the hls4ml backend needs the fpga extra")
    from edgekit.backends.hls4ml.backend import Hls4mlBackend

    assert Hls4mlBackend().versions()["g++"] == "77.1"


USER_MODEL = """\
from layers import make_mlp


def build():
    return make_mlp()
"""
USER_LAYERS = """\
from torch import nn


def make_mlp():
    return nn.Sequential(nn.Linear(4, {width}), nn.ReLU(), nn.Linear({width}, 3))
"""
USER_DATA = """\
import numpy as np


def load(path):
    events = np.load(path)
    x, y = events["x"], events["y"]
    return {"x_train": x[:200], "y_train": y[:200], "x_test": x[200:], "y_test": y[200:]}
"""
USER_RECIPE = """\
schema_version = 1
name = "mine"
description = "a model folder with a helper module and a data file"
model = "model.py:build"
data = "data.py:load"
input_shape = [4]
metric = "accuracy"
[data_options]
path = "events.npz"   # relative: the recipe's folder
[train]
epochs = 2
[latency]
batch_sizes = [1]
min_iters = 3
min_time_s = 0.0
max_time_s = 0.1
warmup_iters = 1
"""


def _events(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 260)
    np.savez(path, x=(rng.normal(0, 1, (260, 4)) + y[:, None]).astype(np.float32), y=y)


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.py").write_text(USER_MODEL)
    (folder / "layers.py").write_text(USER_LAYERS.format(width=8))
    (folder / "data.py").write_text(USER_DATA)
    (folder / "recipe.toml").write_text(USER_RECIPE)
    _events(folder / "events.npz", seed=1)
    return folder


def _user_build(folder: Path, out: Path, cwd: Path) -> BuildResult:
    here = Path.cwd()
    os.chdir(cwd)  # a relative data path must not depend on where the command runs
    try:
        return compile_model(CompileRequest(str(folder), ("cpu-onnxruntime",), out=out))
    finally:
        os.chdir(here)


def test_regenerated_data_and_edited_helper_modules_retrain(user_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    first = _user_build(user_folder, out, cwd=tmp_path)
    golden = np.load(out / "float" / "golden_inputs.npy")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _rebuilt(_user_build(user_folder, out, cwd=elsewhere)) == set()

    _events(user_folder / "events.npz", seed=2)  # the same file name and loader options, new events
    second = _user_build(user_folder, out, cwd=elsewhere)
    assert "float" in _rebuilt(second)
    assert not np.array_equal(np.load(out / "float" / "golden_inputs.npy"), golden)

    (user_folder / "layers.py").write_text(USER_LAYERS.format(width=12))  # not the factory's own file
    third = _user_build(user_folder, out, cwd=elsewhere)
    assert "float" in _rebuilt(third)
    assert third.manifest["model"]["n_parameters"] != first.manifest["model"]["n_parameters"]
    assert third.manifest["model"]["code_sha256"] != first.manifest["model"]["code_sha256"]
    train = json.loads((out / "float" / "train.json").read_text())
    assert len(train["data_sha256"]) == 64


def test_the_user_code_hash_walks_the_users_imports(user_folder: Path) -> None:
    files = provenance.user_code_files([user_folder / "model.py", user_folder / "data.py"])
    assert {p.name for p in files} == {"model.py", "layers.py", "data.py"}  # numpy and torch are not the user's


def test_a_dynamic_import_is_the_documented_gap(tmp_path: Path) -> None:
    """What the walk cannot see (a module imported by a computed name) is said in the docs."""
    (tmp_path / "helper_x.py").write_text("VALUE = 1\n")
    (tmp_path / "dyn.py").write_text("import importlib\nhelper = importlib.import_module('helper_' + 'x')\n")
    files = provenance.user_code_files([tmp_path / "dyn.py"])
    assert [p.name for p in files] == ["dyn.py"]
    readme = (Path(__file__).resolve().parents[2] / "docs" / "build-directory.md").read_text()
    assert "computed name" in readme
