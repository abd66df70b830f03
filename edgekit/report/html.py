"""``report.html``: the build's results with plots, in one self-contained file.

No scripts and no network: the plots are inline SVG drawn here, the styles
inline CSS, so the file opens the same on a laptop, a lab PC without internet,
or attached to an issue. Every figure has an id (``plot-...``) for tests.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit.core.builddir import atomic_write_text
from edgekit.core.results import TargetResult, ValidationReport
from edgekit.report.markdown import quant_diff, user_layer_names
from edgekit.report.plots import bar_chart, number, scatter_chart

__all__ = ["sweep_html", "write_html_report"]

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1d2430; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #e6e9ed; }
th { text-align: left; background: #f3f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
.ref { color: #57606a; } .skip { color: #9a6700; font-weight: 600; }
figure { margin: 1em 0; } figcaption { color: #57606a; font-size: 0.9em; }
code { background: #f3f5f7; padding: 0 3px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float) -> str:
    return number(value)


def _status(result: TargetResult) -> tuple[str, str]:
    if result.status != "ok":
        return result.status.upper(), "skip"
    return ("PASS", "pass") if result.passed else ("FAIL", "fail")


def _results_table(report: ValidationReport) -> str:
    rows = []
    references = [report.reference, *report.extra_references]
    for result in [*references, *report.targets]:
        is_ref = any(result is r for r in references)
        status, css = ("reference", "ref") if is_ref else _status(result)
        quant = _e(quant_diff(result)) if result.quant_family and not is_ref else "-"
        rows.append(
            f"<tr><td>{_e(result.target)}</td><td class='{css}'>{status}</td>"
            f"<td class='num'>{_fmt(result.metric)}</td><td class='num'>{_fmt(result.accuracy)}</td>"
            f"<td class='num'>{'-' if result is report.reference else _fmt(result.max_abs_diff_vs_float)}</td>"
            f"<td class='num'>{_fmt(result.top1_agreement * 100 if result.status == 'ok' else math.nan)}%</td>"
            f"<td class='num'>{quant}</td><td class='num'>{result.n_samples}</td></tr>"
        )
    header = (
        f"<tr><th>target</th><th>status</th><th>{_e(report.metric_name)}</th><th>accuracy</th>"
        "<th>max |diff| vs float</th><th>top-1 agree</th><th>max |diff| vs quantized</th><th>samples</th></tr>"
    )
    return f"<table id='results'>{header}{''.join(rows)}</table>"


def _gates(report: ValidationReport) -> str:
    items = []
    for t in report.targets:
        status, css = _status(t)
        inner = (
            "".join(f"<li class='{'pass' if g.passed else 'fail'}'>{_e(g.describe())}</li>" for g in t.gates)
            or f"<li>{_e(t.reason)}</li>"
        )
        divergence = f"<p><strong>{_e(t.divergence)}</strong></p>" if t.divergence else ""
        if t.modified:
            divergence = f"<p class='fail'>validated as modified since compile: {_e(', '.join(t.modified))}</p>" + (
                divergence
            )
        items.append(
            f"<h3>{_e(t.target)} ({_e(t.backend)}): <span class='{css}'>{status}</span></h3>"
            f"<p class='ref'>{_e(t.runner)}</p><ul>{inner}</ul>{divergence}"
        )
    return "".join(items)


def _resource_rows(manifest: dict[str, Any]) -> list[tuple[str, dict[str, float], dict[str, int]]]:
    """(label, used resources, part capacity) of every FPGA figure in the build: estimates and yosys counts."""
    rows = []
    for name, artifact in (manifest["artifacts"].get("compiled") or {}).items():
        info = artifact.get("info", {})
        fpga = (manifest["targets"].get(name, {}).get("profile") or {}).get("fpga") or {}
        capacity = fpga.get("resources") or {}
        if "estimate" in info:
            est = info["estimate"]
            rows.append((f"{name}: hls4ml estimate", {k: est[k] for k in ("lut", "ff", "dsp", "bram_18k")}, capacity))
        if "da4ml_estimate" in info:
            est = info["da4ml_estimate"]
            rows.append((f"{name}: da4ml estimate", {"lut": est["lut"], "ff": est["ff"], "dsp": 0}, capacity))
        syn = info.get("synthesis")
        if syn:
            used = {"lut": syn["lut"], "ff": syn["ff"], "dsp": syn["dsp"], "bram_18k": syn["bram"]}
            rows.append((f"{name}: yosys (mapped)", used, capacity))
        route = info.get("route")
        if route:
            used = {k: route["used"][k] for k in ("lut", "ff", "dsp", "bram_18k")}
            rows.append((f"{name}: nextpnr (post-route)", used, capacity))
    return rows


def _bit_width_points(root: Path, manifest: dict[str, Any], compare: Sequence[Path]) -> list[tuple[str, float]]:
    """The quantized metric of this build and of the builds the user named (``edgekit report BUILD --compare
    OTHER...``) of the same model, by precision: the accuracy-vs-bits curve. A report reads no build it was not
    given, so it is the same whatever lies beside it; a named build that is not of this model is left out."""
    import json

    model = manifest["model"]
    points: list[tuple[int, int, str, float]] = []
    for folder in [root, *compare]:
        try:
            other = manifest if folder == root else json.loads((folder / "manifest.json").read_text())
            same = other["model"]["name"] == model["name"] and other["model"]["metric"] == model["metric"]
            quant = other["settings"]["model"]["quant"]
            references = other["validation"]["extra_references"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not same or not quant.get("enabled"):
            continue
        for ref in references:
            if ref.get("quant_family") and ref.get("metric") is not None:  # null: no number (strict JSON)
                label = f"w{quant['weight_bits']}a{quant['activation_bits']} {ref['quant_family']} ({folder.name})"
                points.append((quant["weight_bits"], quant["activation_bits"], label, float(ref["metric"])))
    return [(label, metric) for _, _, label, metric in sorted(points)]


def _latency_plots(ok: list[TargetResult]) -> list[str]:
    """One plot per batch size (times of different batch sizes do not share an axis); each bar names its
    clock by a number that the caption spells out, since a wall clock and a device timer are not the same."""
    clocks = sorted({s.clock for r in ok for s in r.latency})
    figures = []
    for batch in sorted({s.batch_size for r in ok for s in r.latency}):
        bars = [(f"{r.target} [{clocks.index(s.clock) + 1}]", s.p50_us) for r in ok for s in r.latency
                if s.batch_size == batch]  # fmt: skip
        used = sorted({clocks.index(s.clock) + 1 for r in ok for s in r.latency if s.batch_size == batch})
        figures.append(
            bar_chart(
                f"plot-latency-batch-{batch}", f"p50 latency at batch {batch}", bars, unit="us", log=True,
                caption="clocks: " + "; ".join(f"[{i}] {clocks[i - 1]}" for i in used),
            )
        )  # fmt: skip
    return figures


def _layer_bars(manifest: dict[str, Any]) -> list[tuple[str, float]]:
    """Estimated LUTs per weighted layer of each hls4ml target, under the names the user gave the layers."""
    user_names = user_layer_names(manifest)
    bars = []
    for name, artifact in (manifest["artifacts"].get("compiled") or {}).items():
        info = artifact.get("info", {})
        weighted = [layer for layer in (info.get("estimate") or {}).get("layers", [])
                    if layer.get("kind") in ("dense", "conv")]  # fmt: skip
        named = len(user_names) == len(weighted) and str(info.get("path", "")).startswith("QONNX")
        for i, layer in enumerate(weighted):
            label = f"{user_names[i]} ({layer['name']})" if named else layer["name"]
            bars.append((f"{name}: {label}", float(layer["lut"])))
    return bars


def _plots(manifest: dict[str, Any], report: ValidationReport, root: Path, compare: Sequence[Path]) -> str:
    results = [report.reference, *report.extra_references, *report.targets]
    ok = [r for r in results if r.status == "ok"]
    figures = [
        bar_chart(
            "plot-metric",
            f"{report.metric_name} per target",
            [(r.target, r.metric) for r in ok],
            axis_label=report.metric_name,
            reference=report.reference.metric,
            caption=f"held-out set; the dashed line is the float reference ({_fmt(report.reference.metric)}); the "
            "axis starts near the smallest value so that differences from float show",
            zoom=True,
        ),
        bar_chart(
            "plot-agreement",
            "max |difference| from the float reference",
            [(r.target, r.max_abs_diff_vs_float) for r in ok if r is not report.reference],
            log=True,
            axis_label="max |difference| per output value",
            caption="per output value, over the held-out set",
        ),
    ]
    quant = [r for r in report.targets if r.status == "ok" and r.quant_family]
    in_lsb = all(not math.isnan(r.max_lsb_diff_vs_quantized) for r in quant)
    if quant:
        figures.append(
            bar_chart(
                "plot-exactness",
                "max |difference| from the quantized reference (brevitas)"
                + (", in units of the output's last bit (LSB)" if in_lsb else ""),
                [(r.target, r.max_lsb_diff_vs_quantized if in_lsb else r.max_abs_diff_vs_quantized) for r in quant],
                log=True,
                axis_label="LSB" if in_lsb else "max |difference|",
                caption="0 means every output value equals brevitas' bit for bit",
            )
        )
    figures += _latency_plots(ok)
    figures += _comparison_plots(manifest, report, root, compare)
    figures += _fpga_plots(manifest)
    figures += _learned_plots(manifest)
    return "".join(figures)


def _learned_plots(manifest: dict[str, Any]) -> list[str]:
    """quant.method "learned": per layer, how many output channels ended with each number of bits."""
    figures = []
    for family, quantized in (manifest["artifacts"].get("quantized") or {}).items():
        learned = quantized.get("learned_bits") or {}
        if not learned:
            continue
        bars = [
            (f"{layer}: {bits} bit{'s' if bits != 1 else ''}", float(list(channels).count(bits)))
            for layer, channels in learned.items()
            for bits in sorted(set(channels))
        ]
        ratio = quantized.get("resource_ratio") or []
        figures.append(
            bar_chart(
                f"plot-learned-bits-{family}",
                f"learned precision ({family}): output channels per number of weight bits, per layer",
                bars,
                unit="channels",
                caption="the bits each channel's weights need after QAT (sign included; 0: the channel has no weight "
                "left)" + (f"; bit operations {ratio[-1]:.1%} of the uniform model's at the end" if ratio else ""),
            )
        )
    return figures


def _comparison_plots(
    manifest: dict[str, Any], report: ValidationReport, root: Path, compare: Sequence[Path]
) -> list[str]:
    """Quantized metric by bit width beside the named builds, and each departing target's per-layer errors."""
    figures = []
    bits = _bit_width_points(root, manifest, compare)
    if len(bits) >= 2:
        figures.append(
            bar_chart(
                "plot-bits", f"quantized {report.metric_name} by bit width (builds of {manifest['model']['name']} "
                "side by side)", bits, reference=report.reference.metric,
                caption="the quantized reference of this build and of the builds named by edgekit report "
                "--compare; the dashed line is this build's float reference",
            )
        )  # fmt: skip
    for r in report.targets:
        if r.layer_errors:
            figures.append(
                bar_chart(
                    "plot-layer-errors-" + re.sub(r"[^A-Za-z0-9_-]+", "-", r.target),
                    f"{r.target}: max |difference| per layer from brevitas",
                    [(f"{e.layer} ({e.kind})", e.max_abs_diff) for e in r.layer_errors], log=True,
                    caption=r.divergence or "every traced layer, in forward order",
                )
            )  # fmt: skip
    return figures


def _fpga_plots(manifest: dict[str, Any]) -> list[str]:
    """Utilization of the part, latency of one inference, and LUTs per layer, for the FPGA targets."""
    figures: list[str] = []
    resources = _resource_rows(manifest)
    if resources:
        bars = []
        for label, used, capacity in resources:
            for kind in ("lut", "ff", "dsp", "bram_18k"):
                if kind in used and capacity.get(kind):
                    bars.append((f"{label} {kind.upper()}", 100.0 * float(used[kind]) / capacity[kind]))
        figures.append(
            bar_chart(
                "plot-fpga-resources",
                "FPGA resource utilization of the part",
                bars,
                unit="%",
                caption="estimates are not synthesis; yosys counts are synthesis-mapped, no timing; nextpnr's are "
                "placed and routed",
            )
        )
        latency_bars = []
        for name, artifact in (manifest["artifacts"].get("compiled") or {}).items():
            info = artifact.get("info", {})
            if "latency_ns" in info and info.get("route"):  # routed: stages / the achieved clock
                fmax = info["route"]["fmax_mhz"]
                latency_bars.append((f"{name} ({info['latency_cycles']} stages at {fmax:.1f} MHz, post-route)",
                                     float(info["latency_ns"])))  # fmt: skip
            elif "latency_ns" in info:  # the RTL pipeline: stages x clock period
                latency_bars.append((f"{name} ({info['latency_cycles']} stages)", float(info["latency_ns"])))
            elif "estimate" in info:
                est = info["estimate"]
                latency_bars.append((f"{name} ({est['latency_cycles']} cycles, estimate)", float(est["latency_ns"])))
        figures.append(
            bar_chart("plot-fpga-latency", "FPGA latency of one inference", latency_bars, unit="ns",
                      caption="RTL: pipeline stages x clock period (routed: at the achieved Fmax, nextpnr's timing); "
                      "hls4ml: edgekit's estimate")
        )  # fmt: skip
        layer_bars = _layer_bars(manifest)
        if layer_bars:
            figures.append(
                bar_chart(
                    "plot-fpga-layers",
                    "estimated LUTs per layer (hls4ml targets)",
                    layer_bars,
                    unit="LUT",
                    caption="edgekit's analytical estimate, pruned weights counted as free",
                )
            )
    return figures


def write_html_report(
    root: Path, manifest: dict[str, Any], report: ValidationReport, compare: Sequence[Path] = ()
) -> Path:
    """``report.html`` of the build in ``root`` from its manifest alone, and the builds in ``compare``."""
    model, env = manifest["model"], manifest["environment"]
    stages = "".join(
        f"<tr><td>{_e(s['name'])}</td><td>{_e(s['directory'])}</td><td>{'yes' if s['cached'] else 'no'}</td>"
        f"<td class='num'>{s['wall_s']:.2f} s</td></tr>"
        for s in manifest["stages"]
    )
    verdict = "all gates passed" if report.passed else "not every gate passed"
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>edgekit build: {_e(model["name"])}</title>
<style>{STYLE}</style></head><body>
<h1>edgekit build: {_e(model["name"])}</h1>
<p>edgekit {_e(manifest["edgekit_version"])}, built {_e(manifest["created_utc"])};
machine {_e(env["platform"])}, {_e(env["cpu_count"])} CPUs, Python {_e(env["python"])};
{model["n_parameters"]:,} parameters, input {_e(tuple(model["input_shape"]))};
validated on {report.reference.n_samples} held-out samples. <b>{verdict}</b> (exit code {manifest["exit_code"]}).</p>
<h2>Results</h2>{_results_table(report)}
<h2>Plots</h2>{_plots(manifest, report, root, compare)}
<h2>Gates</h2>{_gates(report)}
<h2>Stages</h2>
<table id="stages"><tr><th>stage</th><th>folder</th><th>cached</th><th>wall time</th></tr>{stages}</table>
<p class="ref">The same results as data: <code>manifest.json</code>; as text: <code>report.md</code>.</p>
</body></html>
"""
    path = root / "report.html"
    atomic_write_text(path, body)
    return path


def sweep_html(
    rows: list[dict[str, Any]], fronts: dict[str, list[str]], metric: str, series: dict[str, str] | None = None
) -> str:
    """A self-contained page for a sweep: one scatter per cost column against ``metric``, and the table;
    ``series`` (point -> name) draws each group of points (uniform, learned) apart with its own front."""
    figures = []
    for cost, names in fronts.items():
        points = [
            (str(r.get("point")), float(r[cost]), float(r[metric]), str(r.get("point")) in names)
            for r in rows
            if r.get("status") == "ok"
            and isinstance(r.get(cost), (int, float))
            and isinstance(r.get(metric), (int, float))
        ]
        groups = [series.get(label, "") for label, *_ in points] if series else None
        figures.append(
            scatter_chart(f"plot-{cost.replace('.', '-')}", f"{metric} against {cost}", points, cost, metric, groups)
        )
    columns = [c for c in ("point", "status", "metric", "accuracy", "lut", "dsp", "fpga_latency_ns", "p50_us", "error")
               if any(c in r for r in rows)]  # fmt: skip
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)

    def cell(value: Any) -> str:
        return _fmt(value) if isinstance(value, float) else str("-" if value is None else value)

    body = "".join("<tr>" + "".join(f"<td>{_e(cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
    ok = sum(1 for r in rows if r.get("status") == "ok")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edgekit sweep</title>
<style>{STYLE}</style></head><body>
<h1>edgekit sweep: {len(rows)} points, {ok} finished, {len(rows) - ok} failed</h1>
<h2>Trade-offs</h2>{"".join(figures) or "<p>no cost columns to plot</p>"}
<h2>Points</h2><table id='points'><tr>{head}</tr>{body}</table>
</body></html>
"""
