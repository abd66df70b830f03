"""Child processes that die with edgekit, however edgekit ends.

A batch scheduler or an impatient user may end a build with SIGKILL, which runs no cleanup code. Two kinds of
children must not outlive it:

* external tools (g++ through hls4ml's ``build_lib.sh``, Verilator, yosys) with their own children
  (``cc1plus``): each runs under a small supervisor process in a session of its own. The supervisor polls
  its parent; when edgekit is gone it kills the tool's whole process group. On a timeout edgekit kills that
  group itself, and when the tool exits, the supervisor ends anything the tool left running in it.
* worker processes (emulator pools, the isolated AOTInductor and TensorRT builds): each worker starts a
  process group of its own and a thread that kills the group when its parent is gone, so the worker and
  whatever it started (a g++ run inside hls4ml's tracing build) go too.

Both poll, so they end within a fraction of a second; no signal handler of the parent is needed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["PARENT_POLL_S", "supervised_command", "worker_pool"]

PARENT_POLL_S = 0.2

# Runs as ``python -I -S -c SUPERVISOR PARENT_PID LOG_FD PROGRAM ARGS...`` in a new session (its pid is the
# group id). Exit code: the tool's, or 128 + the signal that ended it.
SUPERVISOR = r"""
import os, signal, sys, time
parent, log_fd, args = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
child = os.fork()
if child == 0:
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        os.execvp(args[0], args)
    except OSError as err:
        os.write(2, f"cannot run {args[0]}: {err}\n".encode())
    os._exit(127)
os.close(log_fd)
pause = 0.002
while True:
    done, status = os.waitpid(child, os.WNOHANG)
    if done:
        break
    if os.getppid() != parent:
        os.killpg(0, signal.SIGKILL)
    time.sleep(pause)
    pause = min(pause * 2, POLL_S)
me = os.getpid()
if os.path.isdir("/proc"):
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == me:
                    os.kill(int(entry), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
""".replace("POLL_S", repr(PARENT_POLL_S))


def supervised_command(args: Sequence[str], log_fd: int) -> list[str]:
    """The command line that runs ``args`` under the supervisor, its output going to ``log_fd``."""
    return [sys.executable, "-I", "-S", "-c", SUPERVISOR, str(os.getpid()), str(log_fd), *args]


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)


def _start_worker(parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """In each worker: a process group of its own, a thread watching the parent, then the caller's initializer."""
    os.setpgid(0, 0)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="edgekit-parent-watch").start()
    if initializer is not None:
        initializer(*initargs)


def worker_pool(
    max_workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """Spawned worker processes that end (with their children) when this process ends, even by SIGKILL."""
    return ProcessPoolExecutor(
        max_workers=max_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )
