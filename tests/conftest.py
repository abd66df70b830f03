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

from edgekit.pipeline import BuildResult, CompileRequest, compile_model
from edgekit.progress import configure

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
