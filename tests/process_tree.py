"""Finding every process a test started, even after its parent died: they all carry a tag in their environment.

A process killed with SIGKILL leaves its children to init, where no parent/child walk finds them; the
environment variable ``EDGEKIT_TEST_TAG`` is inherited by every descendant (external tools, spawned
workers, a tool's own children), so scanning ``/proc`` for it finds what is left.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

TAG_VARIABLE = "EDGEKIT_TEST_TAG"


def new_tag() -> dict[str, str]:
    """An environment (the current one plus a fresh tag) for a process tree to be found by."""
    return {**os.environ, TAG_VARIABLE: uuid.uuid4().hex}


def tagged(env: dict[str, str]) -> list[tuple[int, str]]:
    """(pid, command line) of every live process (zombies aside) carrying ``env``'s tag."""
    needle = f"{TAG_VARIABLE}={env[TAG_VARIABLE]}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):  # gone meanwhile, or not ours to read
            continue
        if state != "Z":
            found.append((int(entry.name), command))
    return found


def wait_until_gone(env: dict[str, str], timeout_s: float = 10.0) -> list[tuple[int, str]]:
    """The tagged processes still alive after ``timeout_s`` (empty when all went)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = tagged(env)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def wait_for(env: dict[str, str], word: str, timeout_s: float, exact: bool = False) -> bool:
    """True once a tagged process whose command line holds ``word`` (is ``word``, with ``exact``) is running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(word == command if exact else word in command for _, command in tagged(env)):
            return True
        time.sleep(0.05)
    return False
