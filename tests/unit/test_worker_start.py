"""How worker processes start (native_pool) and in which order a sweep submits its points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgekit.core.errors import ConfigError
from edgekit.explore.sweep import SweepPoint, grid_points, longest_first, parse_grid

# A main script that notes every run of its top level: once in the parent, and once more in each spawned
# child that re-runs it (those run it as "__mp_main__").
SCRIPT = textwrap.dedent(
    """
    import concurrent.futures
    import multiprocessing
    import os
    import sys
    from pathlib import Path

    with open(os.environ["MARKER"], "a") as handle:
        handle.write(__name__ + "\\n")

    if __name__ == "__main__":
        from edgekit.backends.native_pool import run_isolated, without_main_script

        mine = sys.modules["__main__"]
        print("isolated", run_isolated(os.getpid, timeout_s=60, what="a test child", log_path=Path("x.log")) > 0)
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            with without_main_script():
                future = pool.submit(os.getpid)
            print("pool", future.result() > 0, sys.modules["__main__"] is mine)
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            print("plain", pool.submit(os.getpid).result() > 0)  # the contrast: this child re-runs the script
    """
)


def test_spawned_workers_do_not_rerun_the_callers_main_script(tmp_path: Path) -> None:
    script = tmp_path / "main_script.py"
    script.write_text(SCRIPT)
    marker = tmp_path / "runs.txt"
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env={**os.environ, "MARKER": str(marker)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["isolated", "True", "pool", "True", "True", "plain", "True"]
    # the parent ran it once; of three children only the plain spawned one ran it again
    assert marker.read_text().split() == ["__main__", "__mp_main__"]


def test_sweep_points_are_submitted_longest_first_in_grid_order_among_equals() -> None:
    points = grid_points(parse_grid(["weight_bits=4,6,8", "sparsity=0,0.5"]))
    order = [p.name for p in longest_first(points)]
    assert order == ["w4a4-s0.5", "w6a6-s0.5", "w8a8-s0.5", "w4a4-s0", "w6a6-s0", "w8a8-s0"]
    layered = SweepPoint(6, 6, 0.0, None, (("fc1", "weight_bits", 3),))
    assert [p.name for p in longest_first([points[0], layered])] == [layered.name, points[0].name]


def test_a_ray_session_defaults_to_edgekit_cpus_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekit.explore.ray_session import RaySession

    monkeypatch.setenv("EDGEKIT_CPUS", "3")
    assert RaySession().workers == 3 and RaySession(workers=1).workers == 1
    monkeypatch.delenv("EDGEKIT_CPUS")
    assert RaySession().workers == (os.cpu_count() or 1)
    with pytest.raises(ConfigError, match="at least 1"):
        RaySession(workers=0)
