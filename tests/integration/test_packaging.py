"""The wheel carries the target profiles and the model zoo, and works from outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("edgekit-*.whl")
    return path


def test_wheel_contains_profiles_and_zoo(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped_targets = {p.name for p in (REPO / "targets").glob("*.toml")}
    assert {f"edgekit/_targets/{n}" for n in shipped_targets} <= names
    for model in ("jet_tagger", "lenet_digits"):
        for f in ("recipe.toml", "model.py", "data.py", "README.md"):
            assert f"edgekit/_models/{model}/{f}" in names
    assert not [n for n in names if "__pycache__" in n]


def test_installed_wheel_finds_its_data_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    code = (
        "import edgekit, edgekit.core.targets as t, edgekit.model.zoo as z\n"
        "print(edgekit.__file__); print(t.targets_dir()); print(z.models_dir())\n"
    )
    where = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert line.startswith(str(site)), where.stdout
    run = subprocess.run(
        [sys.executable, "-m", "edgekit", "compile", "lenet_digits", "--tiny", "-q", "--out", str(tmp_path / "b")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "PASS" in run.stdout
