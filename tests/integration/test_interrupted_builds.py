"""A build killed with SIGKILL at each stage leaves no process behind, and its rerun equals an uninterrupted build.

Also: two builds into one folder (the second is refused by name), the killed stages' temporary folders
(removed by the next run), and the modes of what a build writes (the umask's, so colleagues can read it).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from process_tree import new_tag, tagged, wait_for, wait_until_gone

from edgekit.pipeline.request import BuildResult

pytest.importorskip("hls4ml", reason="the FPGA target needs the fpga extra: pip install 'edgekit[fpga]'")
REPO = Path(__file__).resolve().parents[2]
# QAT and an hls4ml build with its g++ emulation and worker pools: every kind of child edgekit starts
ARGS = ("compile", "jet_tagger", "--tiny", "--quant", "w6a8", "--target", "fpga-xcvu13p", "--set", "train.epochs=30")


def _start(out: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgekit", *ARGS, "--out", str(out)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for_line(proc: subprocess.Popen[str], marker: str, timeout_s: float = 300) -> list[str]:
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never came; stderr so far:\n{''.join(seen)}")


def _numbers(manifest: dict) -> list:  # type: ignore[type-arg]
    """What a build computed, without its timings."""
    return [(t["target"], t["status"], t["metric"], t["max_abs_diff_vs_float"], t.get("max_abs_diff_vs_quantized"))
            for t in manifest["validation"]["targets"]]  # fmt: skip


# (what the build is doing when it is killed, how the test sees it is there)
KILL_POINTS = [
    ("training", "[train] float model", None),
    ("quantization-aware training", "[quantize]", None),
    ("hls4ml's g++ build", "[compile] fpga-xcvu13p", "cc1plus"),
    ("validation in emulator workers", "[validate]", "spawn_main"),  # a worker, not the resource tracker
]


@pytest.mark.slow
def test_kill_at_each_stage_then_rerun(tmp_path: Path) -> None:
    reference = subprocess.run([sys.executable, "-m", "edgekit", *ARGS, "--out", str(tmp_path / "ref"), "--json"],
                               cwd=REPO, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-2000:]
    out = tmp_path / "killed"
    for what, marker, process in KILL_POINTS:
        env = new_tag()
        proc = _start(out, env)
        try:
            _wait_for_line(proc, marker)
            if process is not None:
                assert wait_for(env, process, timeout_s=120), f"no {process} process during {what}"
            else:
                time.sleep(0.1)  # inside the stage: it starts as its line is printed
            assert proc.poll() is None, f"the build finished before it could be killed during {what}"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        left = wait_until_gone(env, timeout_s=10)
        assert left == [], f"killed during {what}, these were still running 10 s later: {left}"
    env = new_tag()
    rerun = _start(out, env)
    _, stderr = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, stderr[-3000:]
    assert wait_until_gone(env, timeout_s=10) == []
    leftovers = [p for p in out.rglob(".*") if ".tmp" in p.name or ".old-" in p.name]
    assert leftovers == []  # what the killed stages left is removed by the next run
    ours, theirs = (json.loads((d / "manifest.json").read_text()) for d in (out, tmp_path / "ref"))
    assert _numbers(ours) == _numbers(theirs)
    for name in ("golden_float_outputs.npy", "golden_inputs.npy"):
        assert np.array_equal(np.load(out / "float" / name), np.load(tmp_path / "ref" / "float" / name))
    assert np.array_equal(np.load(out / "quant-fixed" / "golden_quant_outputs.npy"),
                          np.load(tmp_path / "ref" / "quant-fixed" / "golden_quant_outputs.npy"))  # fmt: skip


def test_a_second_build_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    env = new_tag()
    first = _start(tmp_path / "b", env)
    try:
        _wait_for_line(first, "[train] float model")
        second = subprocess.run([sys.executable, "-m", "edgekit", *ARGS, "--out", str(tmp_path / "b")], cwd=REPO,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert f"build folder {tmp_path / 'b'} is in use by another edgekit run (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        validate = subprocess.run([sys.executable, "-m", "edgekit", "validate", str(tmp_path / "b")], cwd=REPO,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
        assert validate.returncode == 2  # not a build yet (no manifest), and never while one is being written
    finally:
        first.kill()
        first.wait()
    wait_until_gone(env)


def test_outputs_have_the_mode_the_umask_gives(tiny_jet_build: BuildResult) -> None:
    umask = os.umask(0)
    os.umask(umask)
    root = tiny_jet_build.build_dir
    for name in ("manifest.json", "report.md", "report.html"):
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o666 & ~umask, name
    for folder in ("float", "export", "targets/cpu-onnxruntime"):
        assert stat.S_IMODE((root / folder).stat().st_mode) == 0o777 & ~umask, folder


def test_outputs_follow_a_group_readable_umask(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "edgekit", "compile", "jet_tagger", "--tiny", "--out", str(tmp_path / "b"), "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.umask(0o027),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE((tmp_path / "b" / "report.html").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b" / "float").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "b" / "float" / "model.pt").stat().st_mode) == 0o640
    assert tagged(new_tag()) == []  # (a fresh tag finds nothing: the helper does not match everything)
