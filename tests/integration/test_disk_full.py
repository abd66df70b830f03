"""A full disk under ``--out``: one clear error (exit code 4), the earlier build untouched, nothing half-written.

The disk is a small tmpfs mounted in a private mount namespace (``unshare --mount``, with a user namespace
when the test does not run as root), so nothing outside the test sees it. A driver script runs inside the
namespace: a first build that fits, a filler file that leaves a few KiB, a rebuild that must fail cleanly,
then the filler removed and the rebuild run again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent(
    """
    import hashlib, json, os, subprocess, sys
    from pathlib import Path

    disk, repo = Path(sys.argv[1]), sys.argv[2]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], check=True)
    out = disk / "build"
    base = [sys.executable, "-m", "edgekit", "compile", "jet_tagger", "--tiny", "--out", str(out)]

    def run(*extra):
        proc = subprocess.run([*base, *extra], cwd=repo, capture_output=True, text=True, timeout=600)
        return {"code": proc.returncode, "stderr": proc.stderr[-4000:]}

    def tree():
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".edgekit.lock"}

    result = {"first": run()}
    before = tree()
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / "filler", "wb") as filler:  # leave 8 KiB: less than the retrained float stage needs
        filler.write(b"x" * max(0, free - 8192))
    result["full"] = run("--set", "train.epochs=3")
    result["unchanged"] = tree() == before
    result["leftovers"] = [str(p) for p in out.rglob(".*") if ".tmp" in p.name or ".old-" in p.name]
    (disk / "filler").unlink()
    result["rerun"] = run("--set", "train.epochs=3")
    print(json.dumps(result))
    subprocess.run(["umount", str(disk)], check=False)
    """
)


def _namespace() -> list[str] | None:
    """How to enter a private mount namespace here, or None where this machine allows none."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None
    for command in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        probe = subprocess.run([*command, "true"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return command
    return None


def test_a_full_disk_is_one_clear_error_and_leaves_the_build_intact(tmp_path: Path) -> None:
    namespace = _namespace()
    if namespace is None:
        pytest.skip("no private mount namespace here (unshare --mount, with or without a user namespace, failed)")
    (tmp_path / "disk").mkdir()
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    run = subprocess.run([*namespace, sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "disk"), str(REPO)],
                         capture_output=True, text=True, timeout=1200, env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["first"]["code"] == 0, result["first"]["stderr"]
    full = result["full"]
    assert full["code"] == 4, full["stderr"]
    errors = [line for line in full["stderr"].splitlines() if line.startswith("edgekit: error:")]
    assert len(errors) == 1 and "could not be written: the disk is full" in errors[0], full["stderr"]
    assert "hint: free some space" in full["stderr"] and "Traceback" not in full["stderr"]
    assert result["unchanged"], "the earlier build changed"
    assert result["leftovers"] == []
    rerun = result["rerun"]
    assert rerun["code"] == 0, rerun["stderr"]
    assert "reused cached float/" not in rerun["stderr"]  # nothing half-written was taken for a finished stage
