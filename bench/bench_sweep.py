"""Speedup of a sweep on a 2-worker local Ray cluster over the same points run one after another.

    python bench/bench_sweep.py [--out build/bench-sweep] [--tiny] [--json]

Both runs build the same 8 points of jet_tagger (weight/activation bits 4, 6, 8, 10 x sparsity 0, 0.5) for
the hls4ml FPGA target into fresh folders, in the same process: one after another, each point with both
cores (the baseline), then as Ray tasks on 2 workers with one core each. A third run repeats the Ray sweep
on its finished folder: the time a fully cached sweep costs. Goal: a speedup of at least 1.7 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

from edgekit.progress import configure
from edgekit.sweep import SweepSpec, grid_points, parse_grid, run_point, run_sweep
from edgekit.zoo import resolve_model

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

    started = time.perf_counter()
    serial = [run_point(spec("serial"), p, cores) for p in points]
    serial_s = time.perf_counter() - started
    started = time.perf_counter()
    ray_run = run_sweep(spec("ray"), points, workers=2)
    ray_s = time.perf_counter() - started
    started = time.perf_counter()
    cached = run_sweep(spec("ray"), points, workers=2)
    cached_s = time.perf_counter() - started
    failed = [r["point"] for r in [*serial, *ray_run.rows] if r.get("status") != "ok"]
    serial_point_s = sum(r["wall_s"] for r in serial) / len(serial)
    ray_point_s = sum(r["wall_s"] for r in ray_run.rows) / len(ray_run.rows)
    # what Ray adds on top of the points' own time, two at a time: start, worker imports, scheduling
    overhead_s = ray_s - sum(r["wall_s"] for r in ray_run.rows) / 2
    summary = {
        "machine": f"{platform.machine()}, {cores} cores, {platform.platform()}",
        "points": len(points),
        "tiny": args.tiny,
        "serial_s": serial_s,
        "ray_2_workers_s": ray_s,
        "speedup": serial_s / ray_s,
        "serial_point_s": serial_point_s,
        "ray_point_s": ray_point_s,
        "ray_overhead_s": overhead_s,
        "cached_rerun_s": cached_s,
        "cached_reused": cached.reused,
        "failed": failed,
        "goal": GOAL,
    }
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    print(f"\nsweep of {len(points)} jet_tagger points on fpga-xcvu13p{' (tiny)' if args.tiny else ''}, "
          f"{summary['machine']}")  # fmt: skip
    print(f"  one after another, {cores} cores per point: {serial_s:7.1f} s")
    print(f"  Ray, 2 workers, 1 core per point:       {ray_s:7.1f} s")
    print(f"  mean time per point: {serial_point_s:.1f} s with {cores} cores, {ray_point_s:.1f} s with 1 core; "
          f"Ray's start and worker imports: {overhead_s:.1f} s")  # fmt: skip
    verdict = "met" if summary["speedup"] >= GOAL else "not met"
    print(f"  speedup {summary['speedup']:.2f}x (goal >= {GOAL}: {verdict})")
    print(f"  fully cached rerun ({cached.reused} of {len(points)} points reused): {cached_s:.2f} s")
    if failed:
        print(f"  FAILED points: {', '.join(failed)}")


if __name__ == "__main__":
    main()
