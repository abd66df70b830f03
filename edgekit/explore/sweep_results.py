"""A sweep's results: ``results.csv`` (and Parquet), ``sweep.md`` with the Pareto fronts, ``sweep.html``, and
picking a point by conditions on its numbers (``--best "accuracy>=0.74, lut<=20000"``)."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit.core.errors import ConfigError, InputError
from edgekit.core.progress import say

__all__ = ["best_point", "pareto_front", "parse_conditions", "sweep_markdown", "write_results"]


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    first = ["point", "status", "weight_bits", "act_bits", "sparsity", "reuse", "resource_weight", "metric_name",
             "metric", "accuracy", "float_metric", "lut", "ff", "dsp", "fpga_latency_ns", "resource_source",
             "p50_us"]  # fmt: skip
    seen = [c for c in first if any(c in r for r in rows)]
    rest = sorted({k for r in rows for k in r} - set(seen) - {"error", "wall_s", "exit_code"})
    return [*seen, *rest, "exit_code", "wall_s", "error"]


def write_results(root: Path, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``results.csv`` always; ``results.parquet`` with pyarrow; ``sweep.md`` with the Pareto fronts."""
    columns = _columns(rows)
    files = {}
    with (root / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    files["csv"] = str(root / "results.csv")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        say("[sweep] pyarrow is not installed: results.csv only (pip install 'edgekit[sweep]' adds Parquet)")
    else:
        table = pa.table({c: [_cell(r.get(c)) for r in rows] for c in columns})
        pq.write_table(table, root / "results.parquet")
        files["parquet"] = str(root / "results.parquet")
    (root / "sweep.md").write_text(sweep_markdown(rows))
    files["markdown"] = str(root / "sweep.md")
    from edgekit.report.html import sweep_html

    metric = _ranking_metric(rows)
    groups = series_groups(rows)
    fronts = {
        cost: [str(r["point"]) for group in groups.values() for r in pareto_front(group, metric, cost)]
        for cost in _cost_columns(rows)
    }
    series = {str(r.get("point")): name for name, group in groups.items() for r in group}
    (root / "sweep.html").write_text(sweep_html([dict(r) for r in rows], fronts, metric, series))
    files["html"] = str(root / "sweep.html")
    return files


def _cell(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value if value is None else str(value)
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def _number(row: Mapping[str, Any], key: str) -> float:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def series_groups(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The points by how their precision was chosen: one width per layer, or learned (a resource weight);
    one group when the sweep has no learned points."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        learned = math.isfinite(_number(r, "resource_weight"))
        groups.setdefault("learned precision" if learned else "uniform precision", []).append(r)
    return groups if len(groups) > 1 else {"": list(rows)}


def _ranking_metric(rows: Sequence[Mapping[str, Any]]) -> str:
    """What the fronts weigh costs against: accuracy for a classifier, the task metric otherwise."""
    ok = [r for r in rows if r.get("status") == "ok"]
    return "accuracy" if any(math.isfinite(_number(r, "accuracy")) for r in ok) else "metric"


def pareto_front(rows: Sequence[Mapping[str, Any]], maximize: str, minimize: str) -> list[Mapping[str, Any]]:
    """The finished points no other point beats on both: higher ``maximize`` and lower ``minimize``."""
    pts = [r for r in rows if r.get("status") == "ok"]
    pts = [r for r in pts if math.isfinite(_number(r, maximize)) and math.isfinite(_number(r, minimize))]
    front = []
    for r in pts:
        a, c = _number(r, maximize), _number(r, minimize)
        dominated = any(
            _number(o, maximize) >= a and _number(o, minimize) <= c
            and (_number(o, maximize) > a or _number(o, minimize) < c)
            for o in pts
        )  # fmt: skip
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: _number(r, minimize))


def _cost_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    keys = {k for r in rows for k in r}
    costs = [c for c in ("lut", "dsp", "fpga_latency_ns", "p50_us") if c in keys]
    return costs + sorted(k for k in keys if k.endswith(".p50_us") and k not in costs)


def sweep_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    ok = [r for r in rows if r.get("status") == "ok"]
    metric = _ranking_metric(rows)
    lines = [f"# Sweep: {len(rows)} points, {len(ok)} finished, {len(rows) - len(ok)} failed", ""]
    columns = [c for c in ("point", "status", "metric", "accuracy", "lut", "dsp", "fpga_latency_ns", "p50_us")
               if any(c in r for r in rows)]  # fmt: skip
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    groups = series_groups(rows)
    for cost in _cost_columns(rows):
        for name, group in groups.items():
            front = pareto_front(group, metric, cost)
            if front:
                lines += ["", f"## Pareto front: {metric} against {cost}" + (f" ({name})" if name else ""), ""]
                lines += [f"- {r['point']}: {metric} {_fmt(r.get(metric))}, {cost} {_fmt(r.get(cost))}" for r in front]
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        lines += ["", "## Failed points", ""] + [f"- {r.get('point')}: {r.get('error', '')}" for r in failed]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)\s*$")


def parse_conditions(text: str) -> list[tuple[str, str, float]]:
    conditions = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = _CONDITION.match(part)
        if match is None:
            raise ConfigError(
                f"--best condition {part.strip()!r} is not COLUMN OP NUMBER", hint='e.g. "accuracy>=0.74"'
            )
        try:
            number = float(match[3])
        except ValueError as err:
            raise ConfigError(f"--best condition {part.strip()!r}: {match[3]!r} is not a number") from err
        conditions.append((match[1], match[2], number))
    if not conditions:
        raise ConfigError("--best needs at least one condition", hint='e.g. "accuracy>=0.74, lut<=20000"')
    return conditions


def best_point(rows: Sequence[Mapping[str, Any]], text: str) -> Mapping[str, Any]:
    """The finished point meeting every condition with the highest accuracy (then metric, then fewest LUTs)."""
    conditions = parse_conditions(text)
    known = {k for r in rows for k in r}
    for column, _, _ in conditions:
        if column not in known:
            raise ConfigError(
                f"--best: no column {column!r} in this sweep", hint=f"columns: {', '.join(sorted(known))}"
            )
    ops: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        "<": lambda a, b: a < b, "==": lambda a, b: a == b,
    }  # fmt: skip
    fits = [
        r for r in rows
        if r.get("status") == "ok" and all(ops[op](_number(r, col), value) for col, op, value in conditions)
    ]  # fmt: skip
    if not fits:
        raise InputError(f"no finished point meets {text!r}", hint="loosen a condition, or widen the grid")

    def score(r: Mapping[str, Any]) -> tuple[float, float, float]:
        lut = _number(r, "lut")
        return (_number(r, "accuracy"), _number(r, "metric"), -(lut if math.isfinite(lut) else 0.0))

    return max(fits, key=lambda r: tuple(-math.inf if math.isnan(v) else v for v in score(r)))
