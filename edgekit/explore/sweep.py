"""Design-space sweeps: every point of a grid (bit widths, sparsity, reuse factor) built and validated, on Ray.

Each point is an ordinary ``compile_model`` run into its own build folder under ``SWEEP/points/``, so it
reuses the normal stage cache; a finished point leaves ``point.json`` (its settings, measured numbers and a
key over everything that defines it), which is what lets a repeated or interrupted sweep skip finished
points. Points run as Ray tasks: ``ray.init()`` on this machine by default (every port on 127.0.0.1), or
an existing cluster with ``address``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core import provenance
from edgekit.core.errors import ConfigError, EdgekitError, InputError
from edgekit.core.jsonio import dumps
from edgekit.core.progress import Tally, say, silenced
from edgekit.core.tools import CPUS_ENV
from edgekit.explore.ray_session import RaySession
from edgekit.explore.sweep_results import write_results

__all__ = [
    "GRID_KEYS",
    "SweepPoint",
    "SweepResult",
    "SweepSpec",
    "grid_points",
    "longest_first",
    "parse_grid",
    "rebuild_command",
    "run_sweep",
]

GRID_KEYS: dict[str, type] = {
    "weight_bits": int,
    "act_bits": int,
    "sparsity": float,
    "reuse": int,
    "resource_weight": float,
}
_ALIASES = {"activation_bits": "act_bits"}
GRID_HINT = "e.g. --grid weight_bits=4,6,8 act_bits=8 sparsity=0,0.5 reuse=1,4 resource_weight=0.05,0.5"
POINT_FILE = "point.json"
POINT_SCHEMA = 1


@dataclass(frozen=True)
class SweepPoint:
    weight_bits: int | None = None
    act_bits: int | None = None
    sparsity: float = 0.0
    reuse: int | None = None
    # per-layer precision on top of the uniform one: (layer, "weight_bits" or "activation_bits", bits)
    layers: tuple[tuple[str, str, int], ...] = ()
    # learned precision (quant.method = "learned") with this weight on the resource term; None: uniform QAT
    resource_weight: float | None = None

    @property
    def name(self) -> str:
        parts = []
        if self.weight_bits is not None or self.act_bits is not None:
            parts.append(f"w{self.weight_bits or self.act_bits}a{self.act_bits or self.weight_bits}")
        else:
            parts.append("float")
        parts.append(f"s{self.sparsity:g}")
        if self.reuse is not None:
            parts.append(f"r{self.reuse}")
        if self.resource_weight is not None:
            parts.append(f"learned{self.resource_weight:g}")
        if self.layers:
            short = {"weight_bits": "w", "activation_bits": "a"}
            parts.append("+".join(f"{layer}.{short.get(kind, kind)}{bits}" for layer, kind, bits in self.layers))
        return "-".join(parts)

    @property
    def layer_overrides(self) -> tuple[str, ...]:
        # quoted: a nested module's path has dots (quant.layers."encoder.0.fc".weight_bits=4)
        return tuple(f'quant.layers."{layer}".{kind}={bits}' for layer, kind, bits in self.layers)

    @property
    def learned_overrides(self) -> tuple[str, ...]:
        if self.resource_weight is None:
            return ()
        return ("quant.method=learned", f"quant.resource_weight={self.resource_weight!r}")

    @property
    def quant(self) -> str | None:
        if self.weight_bits is None and self.act_bits is None:
            return None
        return f"w{self.weight_bits or self.act_bits}a{self.act_bits or self.weight_bits}"

    @property
    def prune(self) -> str | None:
        return None if self.sparsity == 0 else f"{self.sparsity:g}"


@dataclass(frozen=True)
class SweepSpec:
    """What every point shares; plain data, sent to the Ray workers."""

    model: str
    targets: tuple[str, ...]
    root: str
    tiny: bool = False
    overrides: tuple[str, ...] = ()
    recipe: str | None = None
    code_sha256: str = ""  # the model's code and recipe: a change invalidates every finished point
    data: str | None = None  # a data file for the built-in loader (--data), as an absolute path


def parse_grid(items: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """``["weight_bits=4,6,8", "sparsity=0,0.5"]`` -> ``{"weight_bits": (4, 6, 8), "sparsity": (0.0, 0.5)}``."""
    grid: dict[str, tuple[Any, ...]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = _ALIASES.get(key.strip(), key.strip())
        if not sep or key not in GRID_KEYS:
            raise ConfigError(
                f"grid entry {item!r} is not KEY=V1,V2,...", hint=f"keys: {', '.join(GRID_KEYS)}; {GRID_HINT}"
            )
        kind = GRID_KEYS[key]
        try:
            parsed = tuple(kind(v) for v in values.split(",") if v.strip())
        except ValueError as err:
            raise ConfigError(f"grid entry {item!r}: {err}", hint=GRID_HINT) from err
        if not parsed:
            raise ConfigError(f"grid entry {item!r} has no values", hint=GRID_HINT)
        if key == "sparsity" and not all(0 <= v < 1 for v in parsed):
            raise ConfigError(f"grid entry {item!r}: a sparsity is a fraction in [0, 1)", hint=GRID_HINT)
        if key == "resource_weight" and not all(v >= 0 for v in parsed):
            raise ConfigError(f"grid entry {item!r}: a resource weight is at least 0", hint=GRID_HINT)
        if key not in ("sparsity", "resource_weight") and not all(v >= 1 for v in parsed):
            raise ConfigError(f"grid entry {item!r}: values must be at least 1", hint=GRID_HINT)
        grid[key] = tuple(dict.fromkeys(parsed))
    return grid


def grid_from_recipe(table: Mapping[str, Any]) -> tuple[dict[str, tuple[Any, ...]], tuple[str, ...]]:
    """A recipe's ``[sweep]``: ``grid = {weight_bits = [4, 6], ...}`` and ``targets = [...]``."""
    unknown = set(table) - {"grid", "targets"}
    if unknown:
        raise ConfigError(f"unknown key(s) in [sweep]: {', '.join(sorted(unknown))}", hint="allowed: grid, targets")
    grid = table.get("grid", {})
    items = [f"{k}={','.join(str(v) for v in (vs if isinstance(vs, list) else [vs]))}" for k, vs in grid.items()]
    return parse_grid(items), tuple(table.get("targets", ()))


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[SweepPoint]:
    keys = list(grid)
    return [SweepPoint(**dict(zip(keys, combo, strict=True))) for combo in itertools.product(*grid.values())]


@functools.lru_cache(maxsize=32)
def _profile_hashes(targets: tuple[str, ...]) -> tuple[str, ...]:
    """Content hashes of the target profiles, read once per sweep (an edited profile invalidates its points)."""
    from edgekit.core.targets import load_target

    return tuple(load_target(t).content_sha256 for t in targets)


@functools.lru_cache(maxsize=1)
def _toolchain_key() -> tuple[str, tuple[tuple[str, str], ...]]:
    """edgekit's code and every library and tool a point's stages may run: a change re-runs finished points."""
    tools = {name: provenance.tool_version(name) for name in provenance.TOOLS}
    return provenance.code_sha256("edgekit.pipeline.compile"), tuple(
        {**provenance.versions(provenance.LIBRARIES), **tools}.items()
    )


def point_key(spec: SweepSpec, point: SweepPoint) -> str:
    profiles = _profile_hashes(spec.targets)
    blob = json.dumps(
        {"edgekit": _toolchain_key(), "model": spec.model, "code": spec.code_sha256, "targets": spec.targets,
         "profiles": profiles,
         "tiny": spec.tiny, "overrides": spec.overrides, "recipe": spec.recipe, "point": asdict(point)},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()


def reuse_overrides(spec: SweepSpec, point: SweepPoint) -> tuple[str, ...]:
    """The point's reuse factor as a --set of each hls4ml target's profile (other targets have none to change)."""
    from edgekit.core.targets import load_target

    if point.reuse is None:
        return ()
    flags = []
    for requested in spec.targets:
        profile = load_target(requested)
        if (
            profile.backend == "hls4ml"
            and profile.fpga is not None
            and profile.fpga.strategy != "distributed_arithmetic"
        ):
            flags.append(f'targets."{profile.name}".fpga.reuse_factor={point.reuse}')
    return tuple(flags)


def _request(spec: SweepSpec, point: SweepPoint, out: Path) -> Any:
    from edgekit.pipeline.request import CompileRequest

    return CompileRequest(
        spec.model, spec.targets, out=out, recipe=spec.recipe, tiny=spec.tiny, quant=point.quant, prune=point.prune,
        overrides=(*spec.overrides, *point.layer_overrides, *point.learned_overrides, *reuse_overrides(spec, point)),
        data=spec.data,
    )  # fmt: skip


def check_points(spec: SweepSpec, points: Sequence[SweepPoint]) -> None:
    """Plan every point as its build will, before any work: a value no build can take is refused (exit 2).

    The same checks as ``edgekit compile`` with that point's ``--quant``, ``--prune`` and ``--set``: bit
    widths out of range, a sparsity a pruner refuses, a precision a target cannot take exactly.
    """
    from edgekit.pipeline.plan import plan_build

    with silenced():
        for point in points:
            out = Path(spec.root) / "points" / point.name / "build"
            try:
                plan_build(_request(spec, point, out))
            except (ConfigError, InputError) as err:
                raise ConfigError(f"sweep point {point.name}: {err.message}", hint=err.hint) from err


def _summary(result: Any, point: SweepPoint) -> dict[str, Any]:
    """The point's row: its settings, the compressed model's metric, and each target's numbers."""
    report = result.report
    model = report.extra_references[-1] if report.extra_references else report.reference
    row: dict[str, Any] = {
        "metric_name": report.metric_name,
        "float_metric": report.reference.metric,
        "float_accuracy": report.reference.accuracy,
        "metric": model.metric,  # the quantized (or pruned) model: what the bit-exact targets compute
        "accuracy": model.accuracy,
        "exit_code": result.exit_code,
    }
    for t in report.targets:
        if "[" in t.target:
            continue  # an emulator validated beside its target
        base = t.target
        row[f"{base}.status"] = t.status if t.status != "ok" else ("pass" if t.passed else "fail")
        row[f"{base}.metric"] = t.metric
        for key, value in t.resources.items():
            row[f"{base}.{key}"] = value
        batch1 = t.latency_at(1)
        if batch1 is not None and not t.resources:
            row[f"{base}.p50_us"] = batch1.p50_us
        if t.resources and not any(k in row for k in ("lut", "dsp")):  # the first FPGA target's, unprefixed
            row.update({"lut": t.resources.get("lut"), "ff": t.resources.get("ff"), "dsp": t.resources.get("dsp"),
                        "fpga_latency_ns": t.resources.get("latency_ns")})  # fmt: skip
            row["resource_source"] = t.resource_source  # which figures these are: estimate, yosys, post-route
        if batch1 is not None and not t.resources and "p50_us" not in row:
            row["p50_us"] = batch1.p50_us
    return row


def run_point(spec: SweepSpec, point: SweepPoint, cpus: int) -> dict[str, Any]:
    """Build and validate one point (in a Ray worker, or here); write and return its row."""
    os.environ[CPUS_ENV] = str(cpus)
    from edgekit.core.progress import configure
    from edgekit.pipeline.compile import compile_model

    configure(bars=False, messages=False)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(cpus)
    folder = Path(spec.root) / "points" / point.name
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    row: dict[str, Any] = {"point": point.name, **asdict(point)}
    try:
        result = compile_model(_request(spec, point, folder / "build"))
        row.update(**_summary(result, point))
        if result.exit_code in (0, 1):  # built and validated (a failed gate is a measured point, not a failure)
            row["status"] = "ok"
        else:  # a target did not build or could not run: the point has no numbers to compare
            reasons = [f"{t.target}: {t.reason.splitlines()[0]}" for t in result.report.targets if t.status != "ok"]
            row.update(status="failed", error="; ".join(reasons) or f"exit code {result.exit_code}")
    except EdgekitError as err:
        row.update(status="failed", error=err.message, exit_code=err.exit_code)
    except Exception as err:  # a bug in a point must not stop the sweep: recorded with its type
        row.update(status="failed", error=f"{type(err).__name__}: {err}", exit_code=70)
    row["wall_s"] = time.perf_counter() - started
    record = {"schema": POINT_SCHEMA, "key": point_key(spec, point), "row": row}
    tmp = folder / f".{POINT_FILE}.tmp"
    tmp.write_text(dumps(record))
    tmp.replace(folder / POINT_FILE)
    return row


def longest_first(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """The order to submit points in: those expected to take longest first, grid order among equals.

    Ray hands queued tasks to workers as they free up, so starting with the long points leaves short ones to
    fill the end, and the workers finish together (longest-processing-time-first scheduling). A pruned point
    runs one more fine-tune than an unpruned one (2 of its 20 s on jet_tagger in bench_sweep); in grid order
    a last axis of sparsity 0 and 0.5 sends every pruned point to the same one of two workers.
    """
    return sorted(points, key=lambda p: (p.sparsity > 0, len(p.layers)), reverse=True)


def finished_row(spec: SweepSpec, point: SweepPoint) -> dict[str, Any] | None:
    """The stored row of a finished point, if its key still matches."""
    path = Path(spec.root) / "points" / point.name / POINT_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("schema") != POINT_SCHEMA or record.get("key") != point_key(spec, point):
        return None
    row: dict[str, Any] = record["row"]
    return row


@dataclass
class SweepResult:
    root: Path
    rows: list[dict[str, Any]]
    ran: int  # points computed in this run
    reused: int  # finished points found from earlier runs
    failed: int
    wall_s: float
    workers: int
    files: dict[str, str] = field(default_factory=dict)
    spec: SweepSpec | None = None  # what the points shared (the rebuild command of a row needs it)


def run_sweep(
    spec: SweepSpec,
    points: Sequence[SweepPoint],
    *,
    address: str | None = None,
    workers: int | None = None,
    retry_failed: bool = False,
    on_progress: Callable[[int, int, int, int], None] | None = None,
    session: RaySession | None = None,
) -> SweepResult:
    """Run every point that has no finished row yet on Ray; return all rows in grid order.

    Without ``session`` the sweep starts its own Ray (``address``, ``workers``) when a point needs running
    and stops it at the end.
    """
    started = time.perf_counter()
    root = Path(spec.root)
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ConfigError("the grid has duplicate points", hint="give each value once per key")
    done = {p.name: finished_row(spec, p) for p in points}
    if retry_failed:
        done = {k: v for k, v in done.items() if v is not None and v.get("status") == "ok"}
    todo = [p for p in points if done.get(p.name) is None]
    check_points(spec, todo)  # before anything is written or started
    (root / "points").mkdir(parents=True, exist_ok=True)
    reused = len(points) - len(todo)
    own = session is None
    active = session if session is not None else RaySession(address, workers)
    if reused:
        say(f"[sweep] {reused} of {len(points)} points already finished (point.json matches); running {len(todo)}")
    if todo:
        try:
            ray = active.ray()
            # one core per point, always: a point's numbers (training threads) must not depend on the round size
            cpus = 1
            task = ray.remote(num_cpus=cpus, max_retries=0)(run_point)
            pending = {task.remote(spec, p, cpus): p for p in longest_first(todo)}
            failed = sum(1 for r in done.values() if r is not None and r.get("status") != "ok")
            where = f"cluster {active.address}" if active.address else f"{active.workers} local workers"
            say(f"[sweep] {len(todo)} points on Ray ({where}, {cpus} core per point)")
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
                for ref in ready:
                    point = pending.pop(ref)
                    try:
                        row = ray.get(ref)
                    except Exception as err:  # the worker died (killed, out of memory): recorded, the sweep goes on
                        row = {"point": point.name, **asdict(point), "status": "failed", "exit_code": 70,
                               "error": f"the Ray task died: {str(err).splitlines()[0][:300]}"}  # fmt: skip
                    done[point.name] = row
                    failed += row.get("status") != "ok"
                    state = "failed: " + str(row.get("error", ""))[:120] if row.get("status") != "ok" else "done"
                    say(f"[sweep] {point.name}: {state} ({row.get('wall_s', 0):.1f} s)")
                n_done = sum(1 for r in done.values() if r is not None)
                if on_progress:
                    on_progress(n_done, len(pending), failed, len(points))
                if ready:  # the 5 s timeout only polls (and keeps Ctrl-C responsive): nothing new to say
                    say(f"[sweep] {n_done}/{len(points)} done, {len(pending)} running or queued, {failed} failed")
        finally:
            if own:
                active.close()
    rows = [done[p.name] or {} for p in points]
    failed_total = sum(1 for r in rows if r.get("status") != "ok")
    result = SweepResult(root, rows, len(todo), reused, failed_total, time.perf_counter() - started, active.workers)
    result.files = write_results(root, rows)
    return result


def rebuild_command(spec: SweepSpec, row: Mapping[str, Any]) -> str:
    """The ``edgekit compile`` command that builds this point on its own."""
    layers = tuple((str(a), str(b), int(c)) for a, b, c in row.get("layers") or ())
    point = SweepPoint(row.get("weight_bits"), row.get("act_bits"), float(row.get("sparsity") or 0.0), row.get("reuse"),
                       layers, row.get("resource_weight"))  # fmt: skip
    words = ["edgekit", "compile", spec.model]
    for requested in spec.targets:
        words += ["--target", requested]
    for flag in reuse_overrides(spec, point):
        words += ["--set", flag]
    if point.quant:
        words += ["--quant", point.quant]
    if point.prune:
        words += ["--prune", point.prune]
    if spec.tiny:
        words.append("--tiny")
    if spec.recipe:
        words += ["--recipe", spec.recipe]
    if spec.data:
        words += ["--data", spec.data]
    for override in (*spec.overrides, *point.layer_overrides, *point.learned_overrides):
        words += ["--set", override]
    return shlex.join(words)


def progress_tally() -> tuple[Callable[[int, int, int, int], None], Tally]:
    """A sweep's ``on_progress`` as edgekit's one progress bar (tqdm): points done of all, running, failed."""
    tally = Tally("[sweep] points", unit="point")

    def report(done: int, running: int, failed: int, total: int) -> None:
        tally.update(done, total, f"{running} running or queued, {failed} failed")

    return report, tally
