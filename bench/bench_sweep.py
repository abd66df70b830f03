"""Speedup of a sweep on a 2-worker local Ray cluster over the same points run one after another.

    python bench/bench_sweep.py [--out build/bench-sweep] [--tiny] [--json]

All runs build the same 8 points of jet_tagger (weight/activation bits 4, 6, 8, 10 x sparsity 0, 0.5) for
the hls4ml FPGA target into fresh folders, in the same process:

1. one after another, each point exactly as the sweep builds it (one core: one torch thread, one emulator
   worker): the baseline the goal is judged against, since these are the same computations;
2. one after another with both cores per point, as ``edgekit compile`` builds a point on its own (run 1
   and run 2 alternate point by point). Two torch threads sum in another order, so these points train to
   slightly different models; the speedup over this run is printed too;
3. as Ray tasks on 2 workers, one core each; the bench checks that every point's numbers equal run 1's;
4. the Ray sweep again on its finished folder: the time a fully cached sweep costs.

Goal: a speedup of at least 1.7 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

from edgekit.core.progress import configure
from edgekit.explore.sweep import SweepSpec, grid_points, parse_grid, run_point, run_sweep
from edgekit.model.zoo import resolve_model

GOAL = 1.7
GRID = ["weight_bits=4,6,8,10", "sparsity=0,0.5"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench-sweep"))
    parser.add_argument("--tiny", action="store_true", help="the recipe's tiny model (a quick check, not the number)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    shutil.rmtree(args.out, ignore_errors=True)
    points = grid_points(parse_grid(GRID))
    code = resolve_model("jet_tagger").code_sha256
    cores = os.cpu_count() or 1

    def spec(folder: str) -> SweepSpec:
        return SweepSpec("jet_tagger", ("fpga-xcvu13p",), str((args.out / folder).resolve()), args.tiny, (), None, code)

    # the two one-after-another runs alternate point by point, so that a slower minute of this shared machine
    # weighs on both alike
    serial, both, serial_s, both_s = [], [], 0.0, 0.0
    for p in points:
        started = time.perf_counter()
        serial.append(run_point(spec("serial"), p, 1))
        serial_s += time.perf_counter() - started
        started = time.perf_counter()
        both.append(run_point(spec("serial-2-cores"), p, cores))
        both_s += time.perf_counter() - started
    started = time.perf_counter()
    ray_run = run_sweep(spec("ray"), points, workers=2)
    ray_s = time.perf_counter() - started
    started = time.perf_counter()
    cached = run_sweep(spec("ray"), points, workers=2)
    cached_s = time.perf_counter() - started
    failed = [r["point"] for r in [*serial, *ray_run.rows, *both] if r.get("status") != "ok"]
    differ = [a["point"] for a, b in zip(serial, ray_run.rows, strict=True) if _numbers(a) != _numbers(b)]
    mean = {name: sum(r["wall_s"] for r in rows) / len(rows)
            for name, rows in (("serial", serial), ("ray", ray_run.rows), ("both", both))}  # fmt: skip
    # what Ray adds on top of the points' own time, two at a time: start, worker imports, scheduling, stop
    overhead_s = ray_s - sum(r["wall_s"] for r in ray_run.rows) / 2
    summary = {
        "machine": f"{platform.machine()}, {cores} cores, {platform.platform()}",
        "points": len(points),
        "tiny": args.tiny,
        "serial_s": serial_s,
        "ray_2_workers_s": ray_s,
        "speedup": serial_s / ray_s,
        "serial_point_s": mean["serial"],
        "ray_point_s": mean["ray"],
        "ray_overhead_s": overhead_s,
        "same_numbers": not differ,
        "differing_points": differ,
        "cached_rerun_s": cached_s,
        "cached_reused": cached.reused,
        "serial_2_cores_s": both_s,
        "serial_2_cores_point_s": mean["both"],
        "speedup_vs_2_cores": both_s / ray_s,
        "failed": failed,
        "goal": GOAL,
    }
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    print(f"\nsweep of {len(points)} jet_tagger points on fpga-xcvu13p{' (tiny)' if args.tiny else ''}, "
          f"{summary['machine']}")  # fmt: skip
    print(f"  one after another, 1 core per point (as the sweep runs them): {serial_s:7.1f} s")
    print(f"  Ray, 2 workers, 1 core per point:                            {ray_s:7.1f} s")
    print(f"  mean time per point: {mean['serial']:.1f} s alone, {mean['ray']:.1f} s two at a time on Ray; "
          f"Ray's start, worker imports and stop: {overhead_s:.1f} s")  # fmt: skip
    same = "yes" if not differ else f"NO ({', '.join(differ)})"
    print(f"  every point's numbers equal in both runs: {same}")
    verdict = "met" if summary["speedup"] >= GOAL else "not met"
    print(f"  speedup {summary['speedup']:.2f}x (goal >= {GOAL}: {verdict})")
    print(f"  fully cached rerun ({cached.reused} of {len(points)} points reused): {cached_s:.2f} s")
    print(f"  one after another, {cores} cores per point (as edgekit compile alone): {both_s:.1f} s, "
          f"{mean['both']:.1f} s per point; Ray's speedup over it {summary['speedup_vs_2_cores']:.2f}x")  # fmt: skip
    if failed:
        print(f"  FAILED points: {', '.join(failed)}")


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    """A point's settings and measured numbers: everything but its wall time."""
    return {k: v for k, v in row.items() if k != "wall_s"}


if __name__ == "__main__":
    main()
