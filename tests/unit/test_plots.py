"""The report plots: value axes with ticks, a zoomed metric axis that says so, one number format."""

from __future__ import annotations

import doctest
import re

import edgekit.report.plots
from edgekit.report.plots import bar_chart, number, scatter_chart


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(edgekit.report.plots).failed == 0


def test_a_bar_chart_has_a_value_axis_with_ticks_and_labels() -> None:
    svg = bar_chart("plot-x", "LUT per layer", [("fc1", 13700.0), ("fc2", 2540.0)], unit="LUT")
    ticks = re.findall(r"class='tick-label'[^>]*>([^<]+)<", svg)
    assert svg.count("class='tick'") == len(ticks) >= 3 and ticks[0] == "0"
    assert "13,700 LUT" in svg and "2,540 LUT" in svg and "e+0" not in svg  # one format, no 1.37e+04
    assert "LUT (linear)" in svg


def test_close_metrics_get_an_axis_that_shows_their_difference_and_says_it_is_not_from_zero() -> None:
    bars = [("float reference", 0.9424), ("fpga-xcvu13p", 0.9418), ("cpu-onnxruntime-int8", 0.9421)]
    zoomed = bar_chart("plot-metric", "roc_auc", bars, reference=0.9424, zoom=True, axis_label="roc_auc")
    widths = [float(w) for w in re.findall(r'class="bar" x="\d+" y="[\d.]+" width="([\d.]+)"', zoomed)]
    assert max(widths) - min(widths) > 50  # pixels: the difference is visible
    assert "roc_auc (axis from 0.9" in zoomed and ", not 0)" in zoomed
    flat = bar_chart("plot-metric", "roc_auc", bars, reference=0.9424)
    flat_widths = [float(w) for w in re.findall(r'class="bar" x="\d+" y="[\d.]+" width="([\d.]+)"', flat)]
    assert max(flat_widths) - min(flat_widths) < 2  # from zero the three look the same
    spread = bar_chart("plot-metric", "accuracy", [("a", 0.05), ("b", 0.9)], zoom=True)
    assert "not 0" not in spread  # values down near zero: the axis starts at zero


def test_all_exact_draws_no_meaningless_log_axis_and_scatter_has_ticks_on_both_axes() -> None:
    exact = bar_chart("plot-exactness", "LSB", [("t1", 0.0), ("t2", 0.0)], log=True, axis_label="LSB")
    assert exact.count("0 (exact)") == 2 and "class='tick'" not in exact and "every value is 0" in exact
    svg = scatter_chart("plot-lut", "accuracy against lut", [("a", 1000.0, 0.70, True), ("b", 5000.0, 0.75, True),
                                                            ("c", 4000.0, 0.71, False)], "lut", "accuracy")  # fmt: skip
    x_labels = re.findall(r"text-anchor='middle' font-size='11' fill='#57606a'>([^<]+)<", svg)
    y_labels = re.findall(r"text-anchor='end' font-size='11' fill='#57606a'>([^<]+)<", svg)
    assert len(x_labels) >= 3 and len(y_labels) >= 3 and "<polyline" in svg
    assert svg.count("class='tick'") == len(x_labels) + len(y_labels)
    assert number(0.75) == "0.7500" and number(1.37e4) == "13,700"
