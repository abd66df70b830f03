"""Per-layer precision search: the narrowest weights and activations, layer by layer, that keep an accuracy budget.

Built on the sweep machinery: every trial is a sweep point (a QAT fine-tune, a compile for the FPGA target,
a validation), trials of one round run side by side on Ray, and finished trials are reused by a rerun.

1. Uniform precision at ``start`` bits down to ``lowest``: the baseline to beat (the narrowest uniform
   point within the budget, by the target's LUT estimate).
2. Sensitivity: for every knob (a weighted layer's weight bits, a ReLU's activation bits) on its own, the
   fewest bits that keep the budget with everything else at ``start``, found by bisection: one round of
   trials per bisection step, all knobs at once.
3. Combination: every knob at its own minimum. If the combination misses the budget, one round tries each
   knob one bit wider and keeps the trial that meets the budget with the fewest LUTs (or, if none does, the
   most accurate), until the budget is met or no knob can widen.

The result is a model folder (the recipe with ``[quant.layers.NAME]`` tables, and the model's code) that
``edgekit compile`` builds as it is.
"""

from __future__ import annotations

import json
import math
import shutil
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.config import flatten_layer_tables
from edgekit.core.errors import ConfigError, InputError
from edgekit.core.progress import say
from edgekit.explore.ray_session import RaySession
from edgekit.explore.sweep import SweepPoint, SweepSpec, run_sweep
from edgekit.explore.sweep_results import write_results

__all__ = ["SearchResult", "precision_search", "toml_text"]

WEIGHTED_KINDS = ("linear", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d")


@dataclass
class SearchResult:
    target_accuracy: float  # float accuracy minus the budget
    float_accuracy: float
    uniform: list[dict[str, Any]]  # the uniform rows, widest first
    best_uniform: dict[str, Any] | None  # the fewest LUTs among uniform rows within budget
    chosen: dict[str, Any] | None  # the per-layer result (None: even ``start`` bits miss the budget)
    layers: dict[str, dict[str, int]]  # layer -> {"weight_bits": n, "activation_bits": m} of ``chosen``
    trials: int
    recipe_folder: Path | None = None
    history: list[str] = field(default_factory=list)
    ray_starts: int = 0  # 1: every round ran in one Ray session; 0: every trial was already finished
    spec: SweepSpec | None = None  # what every trial shared (the rebuild command of a trial needs it)


def _ok(row: Mapping[str, Any] | None, goal: float) -> bool:
    return row is not None and row.get("status") == "ok" and float(row.get("accuracy", math.nan)) >= goal


def _lut(row: Mapping[str, Any] | None) -> float:
    value = (row or {}).get("lut")
    return float(value) if isinstance(value, (int, float)) else math.inf


def precision_search(
    spec: SweepSpec,
    *,
    budget: float = 0.01,
    start: int = 8,
    lowest: int = 2,
    workers: int | None = None,
    address: str | None = None,
    max_repair_rounds: int = 6,
) -> SearchResult:
    """Search per-layer bit widths for ``spec.model`` on ``spec.targets`` (one FPGA target gives the LUTs).

    Every round of trials runs in one Ray session, started when the first trial needs running.
    """
    if not 2 <= lowest < start <= 16:
        raise ConfigError(
            f"precision search needs 2 <= lowest < start <= 16, got lowest {lowest}, start {start}",
            hint="e.g. --start 8 --lowest 3",
        )
    if not (math.isfinite(budget) and 0 <= budget < 1):
        raise ConfigError(
            f"--budget {budget:g} is not an accuracy drop: it must be at least 0 and below 1",
            hint="e.g. --budget 0.01 (at most one point of accuracy below the float model)",
        )
    with RaySession(address, workers) as session:
        result = _search(spec, session, budget, start, lowest, max_repair_rounds)
    result.ray_starts = session.starts
    return result


def _search(
    spec: SweepSpec, session: RaySession, budget: float, start: int, lowest: int, max_repair_rounds: int
) -> SearchResult:
    trials = 0
    every: dict[str, dict[str, Any]] = {}

    def run(points: Sequence[SweepPoint]) -> list[dict[str, Any]]:
        nonlocal trials
        unique = list(dict.fromkeys(points))
        result = run_sweep(spec, unique, session=session)
        trials += result.ran
        rows = {p.name: r for p, r in zip(unique, result.rows, strict=True)}
        every.update(rows)
        return [rows[p.name] for p in points]

    say(f"[search] uniform precision, {start} down to {lowest} bits")
    uniform = run([SweepPoint(weight_bits=b, act_bits=b) for b in range(start, lowest - 1, -1)])
    base = uniform[0]
    if base.get("status") != "ok":
        raise InputError(f"the {start}-bit baseline failed: {base.get('error')}", hint="fix that build first")
    float_accuracy = float(base["float_accuracy"])
    goal = float_accuracy - budget
    within = [r for r in uniform if _ok(r, goal)]
    best_uniform = min(within, key=_lut) if within else None
    history = [f"float accuracy {float_accuracy:.4f}, goal >= {goal:.4f}"]
    if best_uniform is None:
        history.append(f"no uniform precision up to {start} bits keeps the budget")
        return SearchResult(goal, float_accuracy, uniform, None, None, {}, trials, history=history)

    knobs = _knobs(Path(spec.root) / "points" / SweepPoint(weight_bits=start, act_bits=start).name / "build")
    # bisection per knob: bits in (bad, good]; good = start meets the budget
    good = {k: start for k in knobs}
    bad = {k: lowest - 1 for k in knobs}
    while any(good[k] - bad[k] > 1 for k in knobs):
        open_knobs = [k for k in knobs if good[k] - bad[k] > 1]
        trial = {k: (good[k] + bad[k]) // 2 for k in open_knobs}
        say(f"[search] sensitivity round: {', '.join(f'{k[0]}.{k[1]}={b}' for k, b in trial.items())}")
        rows = run([_point(start, {k: b}) for k, b in trial.items()])
        for (k, b), row in zip(trial.items(), rows, strict=True):
            if _ok(row, goal):
                good[k] = b
            else:
                bad[k] = b
    history.append("each knob alone: " + ", ".join(f"{k[0]}.{k[1]} {b}" for k, b in good.items()))

    config = dict(good)
    (row,) = run([_point(start, config)])
    rounds = 0
    while not _ok(row, goal) and rounds < max_repair_rounds:
        rounds += 1
        wider = {k: b + 1 for k, b in config.items() if b < start}
        if not wider:
            break
        candidates = [{**config, k: b} for k, b in wider.items()]
        rows = run([_point(start, c) for c in candidates])
        meeting = [(c, r) for c, r in zip(candidates, rows, strict=True) if _ok(r, goal)]
        if meeting:
            config, row = min(meeting, key=lambda cr: _lut(cr[1]))
        else:
            config, row = max(zip(candidates, rows, strict=True), key=lambda cr: float(cr[1].get("accuracy", -1)))
        history.append(f"repair round {rounds}: accuracy {float(row.get('accuracy', math.nan)):.4f}")
    chosen = row if _ok(row, goal) else None
    if chosen is None:
        history.append(f"no per-layer combination met the budget within {max_repair_rounds} repair rounds")
    write_results(Path(spec.root), list(every.values()))  # every trial of the search in one table
    layers: dict[str, dict[str, int]] = {}
    for (layer, kind), bits in config.items():
        layers.setdefault(layer, {})[kind] = bits
    return SearchResult(goal, float_accuracy, uniform, best_uniform, chosen, layers if chosen else {}, trials,
                        history=history)  # fmt: skip


def _point(start: int, config: Mapping[tuple[str, str], int]) -> SweepPoint:
    layers = tuple(sorted((layer, kind, bits) for (layer, kind), bits in config.items() if bits != start))
    return SweepPoint(weight_bits=start, act_bits=start, layers=layers)


def _knobs(build_dir: Path) -> list[tuple[str, str]]:
    """(layer, field) pairs to search, from the baseline build's quantization plan, in forward order."""
    try:
        manifest = json.loads((build_dir / "manifest.json").read_text())
        plan = next(iter(manifest["artifacts"]["quantized"].values()))["plan"]
    except (OSError, ValueError, KeyError, StopIteration) as err:
        raise InputError(f"the baseline build {build_dir} has no quantization plan: {err}") from err
    knobs = []
    for layer in plan["layers"]:
        if layer["kind"] in WEIGHTED_KINDS:
            knobs.append((layer["name"], "weight_bits"))
        elif layer["kind"] == "relu":
            knobs.append((layer["name"], "activation_bits"))
    return knobs


def write_recipe_folder(result: SearchResult, model_folder: Path, start: int, out: Path) -> Path:
    """A copy of the model folder whose recipe quantizes at ``start`` bits with the searched per-layer widths."""
    recipe_path = model_folder / "recipe.toml"
    recipe = tomllib.loads(recipe_path.read_text())
    name = f"{recipe['name']}-mixed"
    quant = dict(recipe.get("quant", {}))
    quant.update(enabled=True, weight_bits=start, activation_bits=start)
    layers = flatten_layer_tables(quant.get("layers", {}))  # by full module path, however the recipe nested them
    for layer, fields in result.layers.items():
        layers[layer] = {**layers.get(layer, {}), **fields}
    quant["layers"] = layers
    recipe.update(name=name, quant=quant)
    recipe["description"] = f"{recipe.get('description', '')} (per-layer precision from edgekit search)".strip()
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model_folder, out, ignore=shutil.ignore_patterns("__pycache__", "recipe.toml"))
    header = (
        f"# Per-layer precision found by edgekit's precision search (accuracy >= {result.target_accuracy:.4f},\n"
        f"# float {result.float_accuracy:.4f}); everything else is {recipe_path}.\n"
    )
    (out / "recipe.toml").write_text(header + toml_text(recipe))
    return out


def toml_text(table: Mapping[str, Any]) -> str:
    """A recipe as TOML, by a TOML writer: a layer name with dots is a quoted key (``[quant.layers."a.b"]``)."""
    import tomli_w

    return tomli_w.dumps(table)
