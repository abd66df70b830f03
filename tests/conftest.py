"""Shared fixtures: one tiny build per zoo model per session, and a CLI runner using real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgekit.core.progress import configure
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _quiet_progress() -> None:
    configure(bars=False, messages=False)


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.stdout)


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliRun]:
    """Run ``edgekit ARGS`` as a user would: a new process, its exit code, stdout and stderr."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None) -> CliRun:
        env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning", **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "edgekit", *args],
            cwd=cwd or REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        return CliRun(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def tiny_jet_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """jet_tagger at tiny size on cpu-onnxruntime, built once for the session (read-only for tests)."""
    out = tmp_path_factory.mktemp("tiny_jet")
    return compile_model(CompileRequest("jet_tagger", ("cpu-onnxruntime",), out=out, tiny=True))


@pytest.fixture(scope="session")
def plant_fc2_fault() -> Callable[[Path, Path], Path]:
    """Write a copy of a cleaned QONNX graph with the largest weight of the second Linear (fc2) sign-flipped."""

    def plant(graph_path: Path, out: Path) -> Path:
        import numpy as np
        import onnx

        graph = onnx.load(str(graph_path))
        matmuls = [n for n in graph.graph.node if n.op_type == "MatMul"]
        weight_quant = next(n for n in graph.graph.node if n.output[0] == matmuls[1].input[1])
        init = next(i for i in graph.graph.initializer if i.name == weight_quant.input[0])
        values = onnx.numpy_helper.to_array(init).copy()
        values[np.unravel_index(np.argmax(np.abs(values)), values.shape)] *= -1
        init.CopyFrom(onnx.numpy_helper.from_array(values, init.name))
        onnx.save(graph, str(out))
        return out

    return plant


@pytest.fixture(scope="session")
def profile_variant() -> Callable[..., Path]:
    """Write a copy of a shipped target profile under a new name, with some of its lines replaced."""

    def write(base: str, name: str, folder: Path, replacements: dict[str, str]) -> Path:
        from edgekit.core.targets import targets_dir

        text = (targets_dir() / f"{base}.toml").read_text().replace(f'name = "{base}"', f'name = "{name}"')
        for old, new in replacements.items():
            assert old in text, f"{old!r} is not in {base}.toml"
            text = text.replace(old, new)
        path = folder / f"{name}.toml"
        path.write_text(text)
        return path

    return write
