"""The one way edgekit runs an external program: explicit cwd, timeout, a log file, a checked exit code."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import BackendUnavailable, ToolchainError
from edgekit.core.lifetime import supervised_command

__all__ = ["ToolRun", "require_program", "run_tool"]


@dataclass(frozen=True)
class ToolRun:
    args: tuple[str, ...]
    returncode: int
    output: str
    log_path: Path | None


def _program(name: str, cwd: Path) -> str | None:
    """Where ``name`` is: a path (relative to ``cwd``) or a program on PATH; None when it is not there."""
    if os.sep in name:
        path = Path(name) if Path(name).is_absolute() else cwd / name
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name)


def run_tool(
    args: Sequence[str],
    *,
    cwd: Path,
    timeout_s: float,
    log_path: Path | None = None,
    check: bool = True,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ToolRun:
    """Run ``args`` in ``cwd``; stdout and stderr stream into ``log_path`` (if given) as the tool runs.

    The tool runs in a process group of its own under a supervisor (:mod:`edgekit.core.lifetime`): on a timeout
    the whole group is killed and the log keeps what the tool printed until then; if edgekit itself is
    killed, the supervisor kills the group. A missing program, a timeout or (with ``check``) a non-zero exit
    raise ToolchainError naming the program and the log. ``env`` adds to (or replaces entries of) the
    environment the tool inherits.
    """
    name = name or Path(args[0]).name
    if _program(args[0], cwd) is None:
        raise ToolchainError(f"{name} is not installed or not on PATH", hint="edgekit doctor lists toolchains")
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log_path, "w+b") if log_path is not None else tempfile.TemporaryFile() as log,
    ):
        header = log.write(f"$ {' '.join(args)}\n(cwd {cwd})\n".encode())
        log.flush()
        proc = subprocess.Popen(
            supervised_command(args, log.fileno()), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            pass_fds=(log.fileno(),), start_new_session=True, env={**os.environ, **env} if env else None,
        )  # fmt: skip
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as err:
            _kill_group(proc)
            log.write(f"\nkilled after {timeout_s:g} s (timeout), with every process it started\n".encode())
            raise ToolchainError(f"{name} did not finish within {timeout_s:g} s", log_path=log_path) from err
        except BaseException:  # Ctrl-C while it runs: the tool goes too
            _kill_group(proc)
            raise
        log.seek(header)
        output = log.read().decode(errors="replace")
        log.write(f"\nexit code {returncode}\n".encode())
    if check and returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-5:])
        raise ToolchainError(f"{name} failed with exit code {returncode}:\n{tail}", log_path=log_path)
    return ToolRun(tuple(args), returncode, output, log_path)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the supervisor's process group (the tool and everything it started); the group id is its pid."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def require_program(name: str, needed_for: str, hint: str) -> str:
    """The path of program ``name``; BackendUnavailable saying what needs it and how to get it."""
    path = shutil.which(name)
    if path is None:
        raise BackendUnavailable(f"{name} is not installed (needed {needed_for})", hint=hint)
    return path


CPUS_ENV = "EDGEKIT_CPUS"


def available_cpus() -> int:
    """The cores this process may use: ``EDGEKIT_CPUS`` when a scheduler (a sweep worker) set it, else all."""
    value = os.environ.get(CPUS_ENV, "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return os.cpu_count() or 1
