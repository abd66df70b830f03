"""Plots as inline SVG for the self-contained HTML reports (``report.html``, ``sweep.html``).

Drawn here rather than by a plotting library on purpose: every ``edgekit compile`` and ``edgekit validate``
writes a report, and the same manifest must give the same bytes (a test compares them), with nothing
fetched and no dependency beyond numpy. Every chart has labelled axes with tick marks (``class="tick"``)
and tick labels, numbers in one format (:func:`number`), and says when an axis does not start at zero.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Sequence

__all__ = ["bar_chart", "log_ticks", "nice_ticks", "number", "scatter_chart", "tick_labels"]

COLORS = ("#0969da", "#1a7f37", "#bc4c00", "#8250df", "#cf222e", "#57606a", "#9a6700", "#1b7c83")
MUTED, EXACT, FRONT = "#57606a", "#1a7f37", "#cf222e"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def number(value: float | None, unit: str = "") -> str:
    """One format for every number a report shows: counts with thousands separators (13,700, not 1.37e+04),
    fractions to four decimals (0.7500, not 0.75), tiny and huge values in scientific notation.

    >>> number(13700.0, "LUT"), number(0.75), number(3.81e-06), number(35.094), number(float("nan"))
    ('13,700 LUT', '0.7500', '3.81e-06', '35.09', '-')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    magnitude = abs(value)
    if value == 0:
        text = "0"
    elif magnitude >= 1e7 or magnitude < 1e-3:
        text = f"{value:.3g}"
    elif magnitude >= 1000 or float(value).is_integer():
        text = f"{value:,.0f}"
    elif magnitude < 1:
        text = f"{value:.4f}"
    else:
        text = f"{value:.4g}"
    return f"{text} {unit}".rstrip()


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering ``[low, high]``.

    >>> nice_ticks(0.9, 0.95)
    [0.9, 0.91, 0.92, 0.93, 0.94, 0.95]
    """
    if not high > low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= high + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten from the one at or below ``low`` to the one at or above ``high``.

    >>> log_ticks(3e-5, 0.2)
    [1e-05, 0.0001, 0.001, 0.01, 0.1, 1.0]
    """
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    return [10.0**p for p in range(first, max(last, first + 1) + 1)]


def tick_labels(ticks: Sequence[float], log: bool = False) -> list[str]:
    """Tick labels with the decimals their spacing needs: 0.80, 0.82 ...; 0.1, 1, 10; 2,000, 4,000.

    >>> tick_labels([0.8, 0.82, 0.84]), tick_labels([0.01, 0.1, 1.0], log=True), tick_labels([0.0, 5000.0])
    (['0.80', '0.82', '0.84'], ['0.01', '0.1', '1'], ['0', '5,000'])
    """
    if log:
        return [f"{t:g}" if 1e-4 <= t < 1e7 else f"{t:.0e}" for t in ticks]
    step = min((b - a for a, b in itertools.pairwise(ticks)), default=1.0) or 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [f"{t:,.{decimals}f}" for t in ticks]


Segment = tuple[float, float, float, float]


def _tick(grid: Segment, mark: Segment, at: tuple[float, float], anchor: str, text: str) -> list[str]:
    """One tick: a light grid line across the plot, the mark on the axis, and its label."""
    return [
        f"<line class='grid' x1='{grid[0]:.1f}' y1='{grid[1]:.1f}' x2='{grid[2]:.1f}' y2='{grid[3]:.1f}' "
        "stroke='#eaeef2'/>",
        f"<line class='tick' x1='{mark[0]:.1f}' y1='{mark[1]:.1f}' x2='{mark[2]:.1f}' y2='{mark[3]:.1f}' "
        f"stroke='{MUTED}'/>",
        f"<text class='tick-label' x='{at[0]:.1f}' y='{at[1]:.1f}' text-anchor='{anchor}' font-size='11' "
        f"fill='{MUTED}'>{_e(text)}</text>",
    ]


def _value_ticks(values: Sequence[float], log: bool, zoom: bool) -> list[float]:
    """The value axis' ticks: decades on a log axis (none when every value is zero: every target exact), from
    zero on a linear one, or from just below the smallest value when ``zoom`` and the values are close."""
    positive = [v for v in values if v > 0]
    if log:
        return log_ticks(min(positive) / 2, max(positive) * 1.2) if positive else []
    top, bottom = max(values, default=1.0), min(values, default=0.0)
    if zoom and bottom > 0 and top > bottom:
        margin = 0.15 * (top - bottom)
        ticks = nice_ticks(bottom - margin, top + margin)
        if ticks[0] > 0:
            return ticks  # the values spread down to near zero: an axis from zero shows them
    return nice_ticks(min(0.0, bottom), top * 1.05 or 1.0)


def bar_chart(
    plot_id: str,
    title: str,
    bars: Sequence[tuple[str, float]],
    unit: str = "",
    log: bool = False,
    reference: float | None = None,
    caption: str = "",
    zoom: bool = False,
    axis_label: str = "",
) -> str:
    """A horizontal bar chart as an SVG ``<figure>`` with a value axis (ticks and their labels).

    NaN bars are drawn as 'n/a', zero on a log axis as '0 (exact)'. ``zoom``: the axis starts below the
    smallest value instead of at zero, so 0.9418 and 0.9424 do not look the same (the axis says so).
    ``axis_label``: what the axis measures, when the bars carry no unit of their own (a metric).
    """
    label_w, plot_w, row_h, pad, axis_h = 340, 520, 22, 8, 40
    rows_h = row_h * max(1, len(bars))
    height = pad + rows_h + axis_h
    finite = [v for _, v in bars if v is not None and math.isfinite(v) and (v > 0 or not log)]
    if reference is not None and math.isfinite(reference) and not log:
        finite.append(reference)
    ticks = _value_ticks(finite, log, zoom)
    lo, hi = (ticks[0], ticks[-1]) if ticks else (1.0, 10.0)

    def scale(v: float) -> float:
        if log:
            return plot_w * (math.log10(v) - math.log10(lo)) / max(math.log10(hi) - math.log10(lo), 1e-9)
        return plot_w * (v - lo) / max(hi - lo, 1e-12)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{label_w + plot_w + 130}" height="{height}" '
        f'aria-label="{_e(title)}" font-size="12">'
    ]
    axis_y = pad + rows_h + 2
    for tick, text in zip(ticks, tick_labels(ticks, log), strict=True):
        x = label_w + scale(tick)
        parts += _tick((x, pad, x, axis_y), (x, axis_y, x, axis_y + 5), (x, axis_y + 17), "middle", text)
    if ticks:
        parts.append(
            f'<line class="axis" x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="{MUTED}"/>'
        )
    for i, (label, value) in enumerate(bars):
        y = pad + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(label)}</text>')
        if value is None or not math.isfinite(value):
            parts.append(f'<text x="{label_w + 4}" y="{y + 15}" fill="{MUTED}">n/a</text>')
            continue
        if log and value <= 0:
            parts.append(f'<text x="{label_w + 4}" y="{y + 15}" fill="{EXACT}">0 (exact)</text>')
            continue
        width = max(1.0, scale(value))
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row_h - 6}" '
            f'fill="{COLORS[i % len(COLORS)]}"><title>{_e(label)}: {_e(number(value, unit))}</title></rect>'
        )
        parts.append(f'<text x="{label_w + width + 4:.1f}" y="{y + 15}">{_e(number(value, unit))}</text>')
    if reference is not None and math.isfinite(reference) and not log:
        x = label_w + scale(reference)
        parts.append(
            f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{axis_y}" stroke="{MUTED}" stroke-dasharray="4 3"/>'
        )
    linear = "linear" if lo <= 0 else f"axis from {number(lo)}, not 0"
    axis = ("log scale" if ticks else "every value is 0") if log else linear
    parts.append(
        f'<text class="axis-label" x="{label_w + plot_w / 2}" y="{height - 4}" text-anchor="middle" font-size="11" '
        f'fill="{MUTED}">{_e(axis_label or unit or "value")} ({_e(axis)})</text>'
    )
    parts.append("</svg>")
    cap = _e(caption) if caption else ""
    return (
        f'<figure id="{_e(plot_id)}"><figcaption><b>{_e(title)}</b>{" - " + cap if cap else ""}</figcaption>'
        + "".join(parts)
        + "</figure>"
    )


def _series_marks(
    members: Sequence[tuple[str, float, float, bool]],
    number_: int,
    kind: str,
    px: Callable[[float], float],
    py: Callable[[float], float],
) -> list[str]:
    """One series of a scatter: its front joined, its points (circles, or squares for every second series;
    off-front points of a named series lighter)."""
    color = FRONT if not kind else COLORS[(2 * number_) % len(COLORS)]
    parts = []
    front = sorted((p for p in members if p[3]), key=lambda p: p[1])
    if len(front) > 1:
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for _, x, y, _ in front)
        parts.append(f"<polyline points='{path}' fill='none' stroke='{color}' stroke-width='1.5'/>")
    for label, x, y, on_front in members:
        title = f"<title>{_e(label)}: {_e(number(x))}, {_e(number(y))}</title>"
        fill = color if (on_front or kind) else COLORS[0]
        opacity = 1 if on_front or not kind else 0.45
        r = 5 if on_front else 4
        if number_ % 2:
            parts.append(f"<rect x='{px(x) - r:.1f}' y='{py(y) - r:.1f}' width='{2 * r}' height='{2 * r}' "
                         f"fill='{fill}' fill-opacity='{opacity}'>{title}</rect>")  # fmt: skip
        else:
            parts.append(f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='{r}' fill='{fill}' "
                         f"fill-opacity='{opacity}'>{title}</circle>")  # fmt: skip
    return parts


def scatter_chart(
    plot_id: str,
    title: str,
    points: Sequence[tuple[str, float, float, bool]],
    x_label: str,
    y_label: str,
    series: Sequence[str] | None = None,
) -> str:
    """An SVG scatter plot as a ``<figure>``: (label, x, y, highlighted) points, highlighted ones joined (a Pareto
    front); both axes with ticks, tick labels and light grid lines. With ``series`` (a name per point), each
    series has its own colour and marker, and its highlighted points (its own front) are joined in its colour."""
    width, height, left, bottom, pad = 640, 380, 84, 52, 16
    finite = [(lbl, x, y, h) for lbl, x, y, h in points if math.isfinite(x) and math.isfinite(y)]
    if not finite:
        return f"<figure id='{_e(plot_id)}'><figcaption>{_e(title)}: no points</figcaption></figure>"
    xs, ys = [p[1] for p in finite], [p[2] for p in finite]
    x_span, y_span = (max(xs) - min(xs)) or abs(max(xs)) or 1.0, (max(ys) - min(ys)) or abs(max(ys)) or 1.0
    x_ticks = nice_ticks(min(xs) - 0.05 * x_span, max(xs) + 0.05 * x_span)
    y_ticks = nice_ticks(min(ys) - 0.05 * y_span, max(ys) + 0.05 * y_span)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - pad)

    def py(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - bottom - pad)

    base, top = height - bottom, pad
    parts = [
        f"<line class='axis' x1='{left}' y1='{base}' x2='{width - pad}' y2='{base}' stroke='{MUTED}'/>",
        f"<line class='axis' x1='{left}' y1='{top}' x2='{left}' y2='{base}' stroke='{MUTED}'/>",
        f"<text class='axis-label' x='{(left + width) / 2}' y='{height - 8}' text-anchor='middle'>{_e(x_label)}</text>",
        f"<text class='axis-label' x='14' y='{(base + top) / 2}' transform='rotate(-90 14 {(base + top) / 2})' "
        f"text-anchor='middle'>{_e(y_label)}</text>",
    ]
    for tick, text in zip(x_ticks, tick_labels(x_ticks), strict=True):
        x = px(tick)
        parts += _tick((x, top, x, base), (x, base, x, base + 5), (x, base + 18), "middle", text)
    for tick, text in zip(y_ticks, tick_labels(y_ticks), strict=True):
        y = py(tick)
        parts += _tick((left, y, width - pad, y), (left - 5, y, left, y), (left - 8, y + 4), "end", text)
    names = list(series) if series is not None else []
    kinds = [names[i] if names else "" for i, p in enumerate(points) if math.isfinite(p[1]) and math.isfinite(p[2])]
    order = list(dict.fromkeys(kinds))
    for number_, kind in enumerate(order):
        members = [p for p, k in zip(finite, kinds, strict=True) if k == kind]
        parts += _series_marks(members, number_, kind, px, py)
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-size='12'>"
        f"{''.join(parts)}</svg>"
    )
    if order and order[0]:
        shapes = ("circles", "squares")
        legend = "; ".join(f"{shapes[i % 2]}: {_e(kind)}" for i, kind in enumerate(order))
        caption = f"{_e(title)} ({legend}; each series' own Pareto front solid and joined; hover a point for its name)"
    else:
        caption = f"{_e(title)} (red: the Pareto front, joined; blue: the other points; hover a point for its name)"
    return f"<figure id='{_e(plot_id)}'>{svg}<figcaption>{caption}</figcaption></figure>"
