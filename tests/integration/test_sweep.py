"""edgekit sweep on a local Ray cluster: 4 points of jet_tagger on the FPGA target, interrupted and resumed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="edgekit sweep runs on Ray: pip install 'edgekit[sweep]'")
pytest.importorskip("hls4ml", reason="the FPGA target needs the fpga extra: pip install 'edgekit[fpga]'")
REPO = Path(__file__).resolve().parents[2]
GRID = ["weight_bits=4,8", "sparsity=0,0.5", "reuse=4"]
POINTS = 2 * 2 * 1  # the grid's size


def _sweep(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edgekit", "sweep", "jet_tagger", "--tiny", "--grid", *GRID,
            "--target", "fpga-xcvu13p", "--out", str(out), "--workers", "2", *extra]  # fmt: skip


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found | {pid}


def _listening_off_loopback(pids: set[int]) -> list[str]:
    """TCP sockets the processes listen on at an address other than 127.0.0.1 / ::1."""
    inodes = {}
    # 127.0.0.1, ::1 and ::ffff:127.0.0.1 as the kernel writes them
    loopback = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and address.split(":")[0] not in loopback:  # 0A: LISTEN
                inodes[inode] = address
    found = []
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                    found.append(f"{name} (pid {pid}) on {inodes[target[8:-1]]}")
        except OSError:
            continue
    return found


def _finished(out: Path) -> int:
    return len(list((out / "points").glob("*/point.json")))


def _sigint_as_in_a_terminal() -> None:
    """The sweep starts with SIGINT unblocked and at its default, as from a shell: a child inherits its parent's
    signal mask and ignored signals, and in a full CI run an earlier test in the same pytest worker left SIGINT
    so that the sweep never saw the Ctrl-C and ran to the end."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_sweep_resumes_with_only_the_missing_points(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    log = (tmp_path / "first.log").open("w")  # a file, not a pipe nobody reads while the sweep runs
    first = subprocess.Popen(_sweep(out), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True, preexec_fn=_sigint_as_in_a_terminal)  # fmt: skip
    off_loopback: list[str] = []
    deadline = time.monotonic() + 300
    while _finished(out) < 2 and first.poll() is None and time.monotonic() < deadline:
        if not off_loopback:
            off_loopback = _listening_off_loopback(_descendants(first.pid))
        time.sleep(0.5)
    assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    assert not off_loopback, off_loopback  # Ray's head, raylet and workers listen on 127.0.0.1 only
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole foreground group
    first.wait(timeout=120)
    log.close()
    assert first.returncode == 130, (tmp_path / "first.log").read_text()[-3000:]
    before = _finished(out)
    assert 2 <= before < POINTS

    second = subprocess.run(_sweep(out), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"{POINTS} points: {POINTS - before} run now, {before} reused, 0 failed" in second.stdout
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == POINTS and {r["status"] for r in rows} == {"ok"}
    assert {r["point"] for r in rows} == {f"w{b}a{b}-s{s}-r{r}" for b in (4, 8) for s in (0, 0.5) for r in (4,)}
    assert all(float(r["lut"]) > 0 and r["fpga-xcvu13p.status"] == "pass" for r in rows)
    # the reuse factor reached the profile as a --set of that target, recorded in the point's manifest
    point = json.loads(next((out / "points").glob("*/build/manifest.json")).read_text())
    profile = point["targets"]["fpga-xcvu13p"]["profile"]
    assert profile["fpga"]["reuse_factor"] == 4 and profile["overrides"] == {"fpga": {"reuse_factor": 4}}
    assert "## Pareto front: accuracy against lut" in (out / "sweep.md").read_text()
    import pyarrow.parquet as pq

    assert pq.read_table(out / "results.parquet").num_rows == POINTS
    page = (out / "sweep.html").read_text()
    lut_plot = page.split("id='plot-lut'")[1].split("</figure>")[0]
    scored = [(float(r["lut"]), float(r["accuracy"])) for r in rows]
    front = [p for p in scored if not any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in scored)]
    assert lut_plot.count("<circle") == POINTS  # every point
    assert ("<polyline" in lut_plot) == (len(front) > 1)  # the front joined, when it has two points or more

    # a fully cached rerun starts no Ray and picks a point by its numbers
    third = subprocess.run(_sweep(out, "--json", "--best", "accuracy>=0.3, lut<=100000"), cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert third.returncode == 0, third.stderr[-3000:]
    result = json.loads(third.stdout)
    assert (result["ran"], result["reused"]) == (0, POINTS)
    best = result["best"]
    fitting = [r for r in rows if float(r["accuracy"]) >= 0.3 and float(r["lut"]) <= 100000]
    assert float(best["accuracy"]) == max(float(r["accuracy"]) for r in fitting)
    assert (
        result["rebuild"].startswith("edgekit compile jet_tagger --target ")
        and f"--quant w{best['weight_bits']}" in (result["rebuild"])
        and """--set 'targets."fpga-xcvu13p".fpga.reuse_factor=4'""" in result["rebuild"]
    )


def test_grid_and_best_errors_are_clear(tmp_path: Path) -> None:
    from edgekit.core.errors import ConfigError, InputError
    from edgekit.explore.sweep import grid_points, parse_grid
    from edgekit.explore.sweep_results import best_point

    assert len(grid_points(parse_grid(GRID))) == POINTS
    with pytest.raises(ConfigError, match="keys: weight_bits, act_bits, sparsity, reuse"):
        parse_grid(["bits=4,6"])
    with pytest.raises(ConfigError, match="a sparsity is a fraction"):
        parse_grid(["sparsity=0,1.5"])
    rows = [{"point": "a", "status": "ok", "accuracy": 0.7, "lut": 900.0},
            {"point": "b", "status": "ok", "accuracy": 0.75, "lut": 30_000.0},
            {"point": "c", "status": "failed", "accuracy": 0.9, "lut": 10.0}]  # fmt: skip
    assert best_point(rows, "accuracy>=0.7, lut<=20000")["point"] == "a"
    assert best_point(rows, "accuracy>=0.7")["point"] == "b"  # a failed point is never picked
    with pytest.raises(InputError, match="no finished point meets"):
        best_point(rows, "accuracy>=0.8")
    with pytest.raises(ConfigError, match="no column 'luts'"):
        best_point(rows, "luts<=5")


def test_a_failing_point_is_recorded_and_the_recipe_grid_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from edgekit.core.errors import ConfigError
    from edgekit.core.progress import _state
    from edgekit.core.tools import CPUS_ENV
    from edgekit.explore.sweep import SweepPoint, SweepSpec, finished_row, grid_from_recipe, run_point

    # run_point configures the process it runs in (a Ray worker): this one is put back afterwards
    monkeypatch.setenv(CPUS_ENV, os.environ.get(CPUS_ENV, ""))
    monkeypatch.setitem(_state, "bars", _state["bars"])
    monkeypatch.setitem(_state, "messages", _state["messages"])
    threads = torch.get_num_threads()
    spec = SweepSpec("jet_tagger", ("fpga-xcvu13p",), str(tmp_path / "s"), tiny=True)
    point = SweepPoint(weight_bits=1, act_bits=1)  # below what brevitas quantizes to
    try:
        row = run_point(spec, point, 1)
    finally:
        torch.set_num_threads(threads)
    assert row["status"] == "failed" and row["exit_code"] == 2 and "weight_bits" in row["error"]
    assert finished_row(spec, point) == json.loads(json.dumps(row))  # recorded: a rerun does not retry it
    grid, targets = grid_from_recipe({"grid": {"weight_bits": [4, 6], "sparsity": 0.5}, "targets": ["fpga-xc7z020"]})
    assert grid == {"weight_bits": (4, 6), "sparsity": (0.5,)} and targets == ("fpga-xc7z020",)
    with pytest.raises(ConfigError, match="unknown key"):
        grid_from_recipe({"grids": {}})


def test_a_ray_session_runs_and_stops_from_a_worker_thread() -> None:
    """A notebook or GUI may sweep from a thread: there no SIGTERM handler can be set, and none is needed."""
    from edgekit.explore.ray_session import RaySession

    before = signal.getsignal(signal.SIGTERM)
    seen: dict[str, object] = {}

    def use() -> None:
        try:
            with RaySession(workers=1) as session:
                ray = session.ray()
                seen["answer"] = ray.get(ray.remote(num_cpus=1)(lambda: 2**5).remote())
            seen["stopped"] = not ray.is_initialized()
            seen["starts"] = session.starts
        except BaseException as err:  # handed to the test thread
            seen["error"] = err

    thread = threading.Thread(target=use)
    thread.start()
    thread.join(timeout=180)
    assert not thread.is_alive() and "error" not in seen, seen.get("error")
    assert seen == {"answer": 32, "stopped": True, "starts": 1}
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_nested_model_sweeps_with_a_per_layer_setting(tmp_path: Path) -> None:
    """Layer names with dots (encoder.0.fc) through --set, every point's plan, and the rebuild command."""
    nested = REPO / "tests" / "fixtures" / "user_models" / "nested_mlp"
    run = subprocess.run(
        [sys.executable, "-m", "edgekit", "sweep", str(nested), "--tiny", "--grid", "weight_bits=4,6",
         "--set", "quant.layers.encoder.0.fc.weight_bits=3", "--target", "fpga-xcvu13p", "--out", str(tmp_path),
         "--workers", "2", "--json", "--best", "accuracy>=0"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert [r["point"] for r in result["rows"]] == ["w4a4-s0", "w6a6-s0"]
    for row in result["rows"]:
        manifest = json.loads((tmp_path / "points" / row["point"] / "build" / "manifest.json").read_text())
        plan = {lp["name"]: lp for lp in manifest["artifacts"]["quantized"]["fixed"]["plan"]["layers"]}
        assert plan["encoder.0.fc"]["weight_bits"] == 3 and plan["encoder.1.fc"]["weight_bits"] == row["weight_bits"]
        assert row["fpga-xcvu13p.status"] == "pass"
    assert "quant.layers.encoder.0.fc.weight_bits=3" in result["rebuild"]


def test_a_factory_and_a_data_file_sweep(tmp_path: Path) -> None:
    """module:factory with --data and no recipe: every point reads the file, and the rebuild command names it."""
    import numpy as np

    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    np.savez(tmp_path / "ev.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    (tmp_path / "nets.py").write_text(
        "from torch import nn\ndef mlp():\n    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "edgekit", "sweep", "nets:mlp", "--data", "ev.npz", "--tiny", "--grid",
         "weight_bits=4,8", "--target", "cpu-onnxruntime-int8", "--out", "sw", "--workers", "1", "--json",
         "--best", "accuracy>=0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert len(result["rows"]) == 2
    golden = np.load(tmp_path / "sw" / "points" / result["rows"][0]["point"] / "build" / "float" / "golden_inputs.npy")
    assert golden.shape == (80, 6)  # a fifth of the file's 400 samples, held out
    assert f"--data {tmp_path / 'ev.npz'}" in result["rebuild"]


def test_sweep_and_search_from_python(tmp_path: Path) -> None:
    """The functions the two commands call: a grid as a dict, settings as tables, the rows back as data."""
    import edgekit
    from edgekit.core.errors import ConfigError

    grid = {"weight_bits": [8], "sparsity": [0]}
    result = edgekit.sweep_grid("jet_tagger", grid, ["cpu-onnxruntime-int8"], out=tmp_path / "py", tiny=True,
                                settings={"train": {"epochs": 1}}, workers=1)  # fmt: skip
    assert [r["point"] for r in result.rows] == ["w8a8-s0"] and result.rows[0]["status"] == "ok"
    assert "train.epochs=1" in result.spec.overrides and (tmp_path / "py" / "results.csv").is_file()
    with pytest.raises(ConfigError, match="must be an FPGA target"):  # refused before any trial
        edgekit.search_precision("jet_tagger", "cpu-onnxruntime", out=tmp_path / "search", tiny=True)
