"""A corpus of bad inputs, each as a user would bring it: configs, profiles, models, data, artifacts, paths.

Every case must end with exit code 2, 3 or 4, one error message and a hint, no traceback, and leave an
existing build in ``--out`` exactly as it was. The cases run through ``edgekit.cli.main.main`` in this
process (a case that raised would fail here with its traceback); a few run as real subprocesses too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from edgekit.cli.main import main
from edgekit.pipeline.request import BuildResult

REPO = Path(__file__).resolve().parents[2]

GOOD_MODEL = """\
from torch import nn


def build(width=8):
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 3))
"""
GOOD_DATA = """\
import numpy as np


def load(n=300):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    x = (rng.normal(0, 1, (n, 4)) + y[:, None]).astype(np.float32)
    return {"x_train": x[:240], "y_train": y[:240], "x_test": x[240:], "y_test": y[240:]}
"""
GOOD_RECIPE = """\
schema_version = 1
name = "mine"
description = "a user's model folder"
model = "model.py:build"
data = "data.py:load"
input_shape = [4]
metric = "accuracy"
[train]
epochs = 1
"""
GOOD_PROFILE = """\
schema_version = 1
name = "my-board"
description = "a user's profile"
family = "cpu"
backend = "onnxruntime"
precision = "fp32"
[cpu]
threads = 2
"""


def data_returning(body: str) -> dict[str, str]:
    """A model folder whose loader returns ``body`` (numpy as np, rng, y and x already made)."""
    loader = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return {
        "data.py": GOOD_DATA.replace(
            '    return {"x_train": x[:240], "y_train": y[:240], "x_test": x[240:], "y_test": y[240:]}', loader
        )
    }


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # FOLDER: the case's model folder; PROFILE: its profile; BUILD: a copy of a build
    code: int
    message: str  # a piece of the error message
    files: dict[str, str] = field(default_factory=dict)  # the model folder's files that differ from the good ones
    profile: str = GOOD_PROFILE


def compile_folder(*extra: str) -> tuple[str, ...]:
    return ("compile", "FOLDER", "--out", "BUILD", *extra)


CASES = [
    # --- command line and settings
    Case("unknown model", ("compile", "jet_tager", "--out", "BUILD"), 2, "unknown model 'jet_tager'"),
    Case(
        "unknown target",
        ("compile", "jet_tagger", "--tiny", "-t", "cpu-onnx", "--out", "BUILD"),
        2,
        "unknown target 'cpu-onnx'",
    ),
    Case("a model path that does not exist", ("compile", "./no/such/folder", "--out", "BUILD"), 2, "does not exist"),
    Case("misspelled setting", compile_folder("--set", "train.epochz=1"), 2, "unknown key 'epochz' in [train]"),
    Case("setting out of range", compile_folder("--set", "train.epochs=-1"), 2, "out of range"),
    Case("setting of the wrong type", compile_folder("--set", "train.epochs=many"), 2, "expected an integer"),
    Case("--set without a value", compile_folder("--set", "train.epochs"), 2, "is not KEY=VALUE"),
    Case(
        "--set with an unclosed quote", compile_folder("--set", 'quant.layers."fc.weight_bits=4'), 2, "is not KEY=VALUE"
    ),
    Case("--set with a key TOML cannot read", compile_folder("--set", "train..epochs=4"), 2, "is not a settings key"),
    Case("unknown section", compile_folder("--set", "training.epochs=3"), 2, "unknown key 'training'"),
    Case("1-bit weights", compile_folder("--quant", "w1a8", "-t", "fpga-xcvu13p"), 2, "out of range"),
    Case("not a precision", compile_folder("--quant", "8bit"), 2, "is not a precision shorthand"),
    Case("a sparsity of 1.5", compile_folder("--prune", "1.5"), 2, "out of range"),
    Case("not a pruning spec", compile_folder("--prune", "structured:half"), 2, "is not a pruning shorthand"),
    Case(
        "a per-layer setting for a layer the model lacks",
        compile_folder("--quant", "w6a8", "-t", "fpga-xcvu13p", "--set", "quant.layers.fc9.weight_bits=4"),
        2,
        "fc9",
    ),
    Case(
        "a latency batch no machine holds",
        compile_folder("--set", "latency.batch_sizes=[1,1000000000]"),
        2,
        "latency.batch_sizes",
    ),
    Case(
        "an option the factory does not take",
        compile_folder("--set", "model_options.depth=3"),
        2,
        "does not take option(s) depth",
    ),
    Case("an INT8 target without --quant", compile_folder("-t", "cpu-onnxruntime-int8"), 2, "quantization is off"),
    Case("the RTL target without --quant", compile_folder("-t", "fpga-xcvu13p-rtl"), 2, "quantized model only"),
    Case("--out is a file", ("compile", "FOLDER", "--out", "FILE"), 2, "is a file, not a directory"),
    # --- target profiles
    Case(
        "profile with a misspelled key",
        compile_folder("-t", "PROFILE"),
        2,
        "unknown key 'thread' in [cpu]",
        profile=GOOD_PROFILE.replace("threads = 2", "thread = 2"),
    ),
    Case(
        "profile that is not TOML",
        compile_folder("-t", "PROFILE"),
        2,
        "not valid TOML",
        profile=GOOD_PROFILE.replace("[cpu]", "[cpu"),
    ),
    Case(
        "profile of a newer schema",
        compile_folder("-t", "PROFILE"),
        2,
        "schema_version",
        profile=GOOD_PROFILE.replace("schema_version = 1", "schema_version = 7"),
    ),
    Case(
        "--synth without the vendor's HLS tool",
        compile_folder("--quant", "w6a8", "-t", "fpga-xcvu13p", "--synth"),
        3,
        "needs vitis-run (Vitis HLS) on PATH",
    ),
    Case("profile path that does not exist", compile_folder("-t", "boards/nope.toml"), 2, "does not exist"),
    # --- recipes
    Case(
        "recipe that is not TOML",
        compile_folder(),
        2,
        "is not valid TOML",
        {"recipe.toml": GOOD_RECIPE.replace("[train]", "[train")},
    ),
    Case(
        "recipe without an input shape",
        compile_folder(),
        2,
        "missing required key(s) input_shape",
        {"recipe.toml": GOOD_RECIPE.replace("input_shape = [4]\n", "")},
    ),
    Case(
        "recipe metric that does not fit its task",
        compile_folder(),
        2,
        "does not fit task",
        {"recipe.toml": GOOD_RECIPE.replace('metric = "accuracy"', 'metric = "psnr"')},
    ),
    Case(
        "recipe naming a function its file lacks",
        compile_folder(),
        2,
        "has no function 'make'",
        {"recipe.toml": GOOD_RECIPE.replace("model.py:build", "model.py:make")},
    ),
    Case(
        "recipe input shape the model does not take",
        compile_folder(),
        2,
        "expects samples of shape (5,)",
        {"recipe.toml": GOOD_RECIPE.replace("input_shape = [4]", "input_shape = [5]")},
    ),
    Case("module:factory without a recipe", ("compile", "mynets:wide", "--out", "BUILD"), 2, "comes with no recipe"),
    Case(
        "module:factory whose module is nowhere",
        ("compile", "nosuchmodule:build", "--recipe", "jet_tagger", "--out", "BUILD"),
        2,
        "cannot import module 'nosuchmodule'",
    ),
    # --- the user's model code
    Case(
        "factory that raises",
        compile_folder(),
        2,
        "raised ValueError: no such width",
        {
            "model.py": GOOD_MODEL.replace(
                "def build(width=8):\n", "def build(width=8):\n    raise ValueError('no such width')\n"
            )
        },
    ),
    Case(
        "factory that needs an argument the recipe does not give",
        compile_folder(),
        2,
        "needs argument(s) n_out",
        {"model.py": GOOD_MODEL.replace("def build(width=8):", "def build(n_out, width=8):")},
    ),
    Case(
        "factory returning no module",
        compile_folder(),
        2,
        "not a torch.nn.Module",
        {
            "model.py": GOOD_MODEL + "\n\ndef other():\n    return 3\n",
            "recipe.toml": GOOD_RECIPE.replace("model.py:build", "model.py:other"),
        },
    ),
    Case(
        "model file with a syntax error",
        compile_folder(),
        2,
        "raised SyntaxError",
        {"model.py": GOOD_MODEL.replace("def build(width=8):", "def build(width=8)")},
    ),
    Case(
        "model file importing a helper that is not there",
        compile_folder(),
        2,
        "ModuleNotFoundError",
        {"model.py": "from my_layers import block\n" + GOOD_MODEL},
    ),
    Case(
        "a forward pass that raises",
        compile_folder(),
        2,
        "the forward pass of model 'mine' raised KeyError",
        {
            "model.py": "from torch import nn\n\n\nclass Net(nn.Module):\n    def forward(self, x):\n"
            "        return {'pt': x}['eta']\n\n\ndef build():\n    return Net()\n"
        },
    ),
    Case(
        "model with the wrong number of outputs",
        compile_folder(),
        2,
        "outputs shape (2,) per sample, not (3,)",
        {"model.py": GOOD_MODEL.replace("nn.Linear(width, 3)", "nn.Linear(width, 2)")},
    ),
    # --- the data
    Case(
        "loader that raises",
        compile_folder(),
        2,
        "raised FileNotFoundError",
        {"data.py": GOOD_DATA.replace("def load(n=300):\n", "def load(n=300):\n    open('events.h5')\n")},
    ),
    Case("loader returning a list", compile_folder(), 2, "must return a dict", data_returning("return [x, y]")),
    Case(
        "loader without y_test",
        compile_folder(),
        2,
        "must return a dict",
        data_returning('return {"x_train": x, "y_train": y, "x_test": x}'),
    ),
    Case(
        "negative labels",
        compile_folder(),
        2,
        "negative value(s)",
        data_returning('return {"x_train": x, "y_train": y - 1, "x_test": x, "y_test": y}'),
    ),
    Case(
        "fractional labels",
        compile_folder(),
        2,
        "labels must be integer class indices",
        data_returning('return {"x_train": x, "y_train": y + 0.5, "x_test": x, "y_test": y}'),
    ),
    Case(
        "one-hot labels",
        compile_folder(),
        2,
        "y.argmax(axis=1)",
        data_returning('return {"x_train": x, "y_train": np.eye(3)[y], "x_test": x, "y_test": y}'),
    ),
    Case(
        "inputs and labels of different lengths",
        compile_folder(),
        2,
        "labels for 240 input samples",
        data_returning('return {"x_train": x[:240], "y_train": y[:200], "x_test": x, "y_test": y}'),
    ),
    Case(
        "strings instead of numbers",
        compile_folder(),
        2,
        "holds strings",
        data_returning(
            'return {"x_train": x.astype(str).astype(object) + "GeV", "y_train": y, "x_test": x, "y_test": y}'
        ),
    ),
    Case(
        "NaN inputs",
        compile_folder(),
        2,
        "NaN",
        data_returning('x[[3, 7], 1] = np.nan\nreturn {"x_train": x, "y_train": y, "x_test": x, "y_test": y}'),
    ),
    Case(
        "infinite inputs",
        compile_folder(),
        2,
        "infinite",
        data_returning('x[5, 0] = np.inf\nreturn {"x_train": x, "y_train": y, "x_test": x[:10], "y_test": y[:10]}'),
    ),
    Case(
        "inputs beyond float32",
        compile_folder(),
        2,
        "beyond float32's range",
        data_returning(
            'x = x.astype(np.float64)\nx[0, 0] = 1e300\nreturn {"x_train": x, "y_train": y, "x_test": x, "y_test": y}'
        ),
    ),
    Case(
        "an empty test set",
        compile_folder(),
        2,
        "x_test is empty",
        data_returning('return {"x_train": x, "y_train": y, "x_test": x[:0], "y_test": y[:0]}'),
    ),
    Case(
        "labels beyond the named classes",
        compile_folder(),
        2,
        "names 2 classes (a, b) but the labels reach 2",
        data_returning('return {"x_train": x, "y_train": y, "x_test": x, "y_test": y, "classes": ["a", "b"]}'),
    ),
    # --- existing builds and artifacts
    Case("validate a folder that does not exist", ("validate", "NOPE"), 2, "does not exist"),
    Case("validate a folder that is no build", ("validate", "FOLDER"), 2, "not an edgekit build directory"),
    Case("validate a corrupt manifest", ("validate", "BUILD"), 2, "is corrupt"),
    Case("validate a manifest of a newer edgekit", ("validate", "BUILD"), 2, "schema 99"),
    Case("validate with changed golden vectors", ("validate", "BUILD"), 2, "changed since it was built"),
    Case("validate with a missing artifact", ("validate", "BUILD"), 2, "is missing"),
    Case(
        "validate with a bad gate override",
        ("validate", "BUILD", "--set", "gates.min_metrik=0.5"),
        2,
        "unknown key 'min_metrik'",
    ),
    # --- sweeps and searches, refused before any work
    Case(
        "sweep with 1-bit weights",
        ("sweep", "FOLDER", "--grid", "weight_bits=1,4", "-t", "fpga-xcvu13p", "--out", "BUILD"),
        2,
        "sweep point w1a1-s0",
    ),
    Case("sweep over an unknown key", ("sweep", "FOLDER", "--grid", "bits=4", "--out", "BUILD"), 2, "is not KEY=V1,V2"),
    Case(
        "sweep with a sparsity of 1",
        ("sweep", "FOLDER", "--grid", "sparsity=0,1", "--out", "BUILD"),
        2,
        "a sparsity is a fraction",
    ),
    Case(
        "sweep with zero workers",
        ("sweep", "FOLDER", "--grid", "weight_bits=4", "-t", "fpga-xcvu13p", "--workers", "0", "--out", "BUILD"),
        2,
        "--workers must be at least 1",
    ),
    Case(
        "search with a negative budget",
        ("search", "FOLDER", "-t", "fpga-xcvu13p", "--budget", "-0.1", "--out", "BUILD"),
        2,
        "--budget -0.1",
    ),
    Case(
        "search below 2 bits",
        ("search", "FOLDER", "-t", "fpga-xcvu13p", "--lowest", "1", "--out", "BUILD"),
        2,
        "lowest < start",
    ),
    Case(
        "search on a CPU target",
        ("search", "FOLDER", "-t", "cpu-onnxruntime", "--out", "BUILD"),
        2,
        "must be an FPGA target",
    ),
]

# What the validate cases do to the build copy before running.
DAMAGE: dict[str, Callable[[Path], None]] = {
    "validate a corrupt manifest": lambda b: (b / "manifest.json").write_text("{not json"),
    "validate a manifest of a newer edgekit": lambda b: (b / "manifest.json").write_text(
        json.dumps({**json.loads((b / "manifest.json").read_text()), "schema_version": 99})),
    "validate with changed golden vectors": lambda b: np.save(b / "float" / "golden_inputs.npy",
                                                              np.zeros((3, 16), np.float32)),
    "validate with a missing artifact": lambda b: next((b / "targets").rglob("*.onnx")).unlink(),
}  # fmt: skip


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.code for c in CASES} >= {2, 3}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tiny_jet_build: BuildResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    folder = tmp_path / "mine"
    folder.mkdir()
    files = {"model.py": GOOD_MODEL, "data.py": GOOD_DATA, "recipe.toml": GOOD_RECIPE, **case.files}
    for name, text in files.items():
        (folder / name).write_text(text)
    (tmp_path / "profile.toml").write_text(case.profile)
    (tmp_path / "a-file").write_text("not a folder")
    build = tmp_path / "build"
    shutil.copytree(tiny_jet_build.build_dir, build)
    if case.name in DAMAGE:
        DAMAGE[case.name](build)
    before = _tree(build)
    words = {"FOLDER": str(folder), "PROFILE": str(tmp_path / "profile.toml"), "BUILD": str(build),
             "FILE": str(tmp_path / "a-file"), "NOPE": str(tmp_path / "nope")}  # fmt: skip
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    code = main([words.get(a, a) for a in case.args])
    out, err = capsys.readouterr()
    assert code == case.code, (out, err)
    errors = [line for line in err.splitlines() if line.startswith("edgekit: error:")]
    assert len(errors) == 1, err
    assert case.message in err, err
    assert "  hint: " in err, f"no hint:\n{err}"
    assert "Traceback" not in err + out
    assert _tree(build) == before  # an existing build is left exactly as it was


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.name in ("negative labels", "factory that raises", "unknown target")],
    ids=lambda c: c.name,
)
def test_bad_input_in_a_real_process(case: Case, tmp_path: Path) -> None:
    """The same, as the command line runs it: a new process, its exit code and its stderr."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, text in {"model.py": GOOD_MODEL, "data.py": GOOD_DATA, "recipe.toml": GOOD_RECIPE,
                       **case.files}.items():  # fmt: skip
        (folder / name).write_text(text)
    args = [str(folder) if a == "FOLDER" else str(tmp_path / "b") if a == "BUILD" else a for a in case.args]
    run = subprocess.run([sys.executable, "-m", "edgekit", *args], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == case.code and case.message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "  hint: " in run.stderr
