"""The one way edgekit runs an external program: explicit cwd, timeout, a log file, a checked exit code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import BackendUnavailable, ToolchainError

__all__ = ["ToolRun", "program_version", "require_program", "run_tool"]


@dataclass(frozen=True)
class ToolRun:
    args: tuple[str, ...]
    returncode: int
    output: str
    log_path: Path | None


def run_tool(
    args: Sequence[str],
    *,
    cwd: Path,
    timeout_s: float,
    log_path: Path | None = None,
    check: bool = True,
    name: str | None = None,
) -> ToolRun:
    """Run ``args`` in ``cwd``; stdout and stderr go to ``log_path`` (if given) and the result.

    A missing program, a timeout or (with ``check``) a non-zero exit raise ToolchainError
    naming the program and the log.
    """
    name = name or Path(args[0]).name
    try:
        proc = subprocess.run(
            list(args),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as err:
        raise ToolchainError(f"{name} is not installed or not on PATH", hint="edgekit doctor lists toolchains") from err
    except subprocess.TimeoutExpired as err:
        raise ToolchainError(f"{name} did not finish within {timeout_s:g} s", log_path=log_path) from err
    output = proc.stdout + proc.stderr
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"$ {' '.join(args)}\n(cwd {cwd})\n{output}\nexit code {proc.returncode}\n")
    if check and proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-5:])
        raise ToolchainError(f"{name} failed with exit code {proc.returncode}:\n{tail}", log_path=log_path)
    return ToolRun(tuple(args), proc.returncode, output, log_path)


def require_program(name: str, needed_for: str, hint: str) -> str:
    """The path of program ``name``; BackendUnavailable saying what needs it and how to get it."""
    path = shutil.which(name)
    if path is None:
        raise BackendUnavailable(f"{name} is not installed (needed {needed_for})", hint=hint)
    return path


def program_version(path: str, flag: str, label: str) -> str:
    """The ``N.M`` after ``label`` in what ``path flag`` prints (the first 40 characters when there is none)."""
    out = run_tool([path, flag], cwd=Path.cwd(), timeout_s=30, name=f"{Path(path).name} {flag}").output
    match = re.search(rf"{label}\s+(\d+\.\d+)", out)
    return match.group(1) if match else out.strip()[:40]


CPUS_ENV = "EDGEKIT_CPUS"


def available_cpus() -> int:
    """The cores this process may use: ``EDGEKIT_CPUS`` when a scheduler (a sweep worker) set it, else all."""
    value = os.environ.get(CPUS_ENV, "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return os.cpu_count() or 1
