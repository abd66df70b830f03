"""External tools and worker processes die with edgekit; a tool that times out keeps its log and its children go.

Processes are found by a tag in their environment (tests/process_tree.py), which survives reparenting to
init after their parent was killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from process_tree import new_tag, tagged, wait_for, wait_until_gone

from edgekit.core.errors import ToolchainError
from edgekit.core.tools import run_tool


def test_a_timeout_keeps_what_the_tool_printed_and_kills_what_it_started(tmp_path: Path) -> None:
    env = new_tag()
    log = tmp_path / "logs" / "tool.log"
    os.environ["EDGEKIT_TEST_TAG"] = env["EDGEKIT_TEST_TAG"]  # run_tool's children inherit this process's env
    try:
        started = time.monotonic()
        with pytest.raises(ToolchainError) as caught:
            run_tool(["sh", "-c", "echo first words; sleep 60 & sleep 60"], cwd=tmp_path, timeout_s=1.0,
                     log_path=log, name="sleepy")  # fmt: skip
        assert time.monotonic() - started < 10
    finally:
        del os.environ["EDGEKIT_TEST_TAG"]
    assert "sleepy did not finish within 1 s" in caught.value.message and caught.value.log_path == log
    text = log.read_text()
    assert "first words" in text and "killed after 1 s" in text  # streamed while it ran, kept after the kill
    assert wait_until_gone(env, timeout_s=5) == []  # the background sleep too, not only the shell


def test_output_streams_into_the_log_while_the_tool_runs(tmp_path: Path) -> None:
    log = tmp_path / "tool.log"
    result = run_tool(["sh", "-c", "echo out; echo err >&2; exit 3"], cwd=tmp_path, timeout_s=30, log_path=log,
                      check=False)  # fmt: skip
    assert result.returncode == 3 and "out" in result.output and "err" in result.output
    assert log.read_text().endswith("exit code 3\n")
    with pytest.raises(ToolchainError, match="failed with exit code 3"):
        run_tool(["sh", "-c", "exit 3"], cwd=tmp_path, timeout_s=30)
    with pytest.raises(ToolchainError, match="is not installed or not on PATH"):
        run_tool(["no-such-program-here"], cwd=tmp_path, timeout_s=30)


PARENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from edgekit.core.lifetime import worker_pool
    from edgekit.core.tools import run_tool

    def start_grandchild(_):
        import subprocess
        subprocess.Popen(["sleep", "60"])  # a worker's own child (a compiler, say)
        return True

    if __name__ == "__main__":
        if sys.argv[1] == "tool":
            print("running", flush=True)
            run_tool(["sh", "-c", "sleep 60 & sleep 60"], cwd=Path("."), timeout_s=600)
        else:
            with worker_pool(2) as pool:
                assert all(pool.map(start_grandchild, range(2)))
                print("running", flush=True)
                pool.submit(__import__("time").sleep, 60).result()
    """
)


@pytest.mark.parametrize("kind", ["tool", "workers"])
def test_children_die_with_a_parent_killed_by_sigkill(tmp_path: Path, kind: str) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = new_tag()
    parent = subprocess.Popen([sys.executable, str(script), kind], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "running"
        # the grandchild itself: the supervisor's and the shell's command lines hold "sleep 60" too
        assert wait_for(env, "sleep 60", timeout_s=30, exact=True)
        assert len(tagged(env)) >= 3  # the parent, and the processes it started
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert wait_until_gone(env, timeout_s=10) == []
