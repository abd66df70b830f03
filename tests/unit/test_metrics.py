"""Task metrics for regression, the direction of a metric drop, and differences in units of the last bit."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from edgekit.core.config import GateSettings
from edgekit.core.metrics import lsb_grid, max_lsb_diff, metric_drop, mse, psnr, roc_auc_ovr, task_metric
from edgekit.core.results import TargetResult
from edgekit.stages.validate import _gates


def test_mse_and_psnr_against_hand_computed_values() -> None:
    target = np.array([[0.0, 1.0], [2.0, 4.0]])
    out = target + np.array([[0.5, 0.0], [0.0, -0.5]])
    assert mse(out, target) == pytest.approx(0.125)
    assert psnr(out, target) == pytest.approx(10 * math.log10(16 / 0.125))  # range 4
    assert psnr(target, target) == math.inf and task_metric("mse", target, target) == 0.0
    assert task_metric("psnr", out, target) == psnr(out, target)
    with pytest.raises(ValueError, match="unknown metric"):
        task_metric("f1", out, target)


def test_a_drop_is_a_worsening_whichever_way_the_metric_points() -> None:
    assert metric_drop("accuracy", 0.9, 0.85) == pytest.approx(0.05)
    assert metric_drop("psnr", 40.0, 42.0) == pytest.approx(-2.0)
    assert metric_drop("mse", 0.01, 0.03) == pytest.approx(0.02)  # higher MSE is worse
    assert metric_drop("psnr", math.inf, math.inf) == 0.0  # both exact


def _result(metric_name: str, metric: float) -> TargetResult:
    return TargetResult("t", "b", "ok", metric_name=metric_name, metric=metric, max_abs_diff_vs_float=0.0)


def test_gates_follow_the_metric_and_skip_top1_for_a_reconstruction() -> None:
    cfg = GateSettings(max_metric=0.02, max_metric_drop_vs_float=0.005, min_top1_agreement=0.99)
    gates = {g.name: g for g in _gates(cfg, _result("mse", 0.012), reference_metric=0.010)}
    assert "min_top1_agreement" not in gates  # no argmax in an autoencoder's output
    assert gates["max_metric (mse)"].passed and gates["max_metric_drop_vs_float"].passed
    gates = {g.name: g for g in _gates(cfg, _result("mse", 0.030), reference_metric=0.010)}
    assert not gates["max_metric (mse)"].passed and not gates["max_metric_drop_vs_float"].passed
    gates = {g.name: g for g in _gates(cfg, _result("accuracy", 0.9), reference_metric=0.9)}
    assert not gates["min_top1_agreement"].passed  # classification: the NaN agreement of this result fails


def test_lsb_grid_reads_the_last_bit_of_each_output() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(-500, 500, size=(400, 3)).astype(np.float64)
    q = codes * np.array([2.0**-13, 2.0**-6, 0.5])
    q[:, 1] *= 4  # every value of column 1 is a multiple of 2**-4 after all
    lsb = lsb_grid(q.astype(np.float32))
    assert lsb is not None and list(lsb) == [2.0**-13, 2.0**-4, 0.5]
    assert max_lsb_diff(q + np.array([2.0**-13, 0, 0]), q, lsb) == 1.0
    assert max_lsb_diff(q + np.array([0, 0, 1.5]), q, lsb) == 3.0
    assert lsb_grid(np.array([[0.1], [0.2]])) is None  # not on a power-of-two grid: no LSB
    zero = lsb_grid(np.zeros((4, 1)))
    assert zero is not None and math.isnan(zero[0])
    assert max_lsb_diff(np.ones((4, 1)), np.zeros((4, 1)), zero) == math.inf
    assert math.isnan(max_lsb_diff(q, q, None))


def test_resource_budgets_apply_to_fpga_targets_only() -> None:
    cfg = GateSettings(max_metric_drop_vs_float=None, max_lut=20_000, max_dsp=0, max_fpga_latency_ns=40)
    fpga = TargetResult(
        "fpga", "rtl", "ok", metric_name="accuracy", metric=0.7,
        resources={"lut": 19_005, "ff": 5_000, "dsp": 0, "bram_18k": 0, "latency_ns": 45.0}, resource_source="yosys",
    )  # fmt: skip
    gates = {g.name: g for g in _gates(cfg, fpga, reference_metric=0.7)}
    assert gates["max_lut (yosys)"].passed and gates["max_dsp (yosys)"].passed
    assert not gates["max_fpga_latency_ns (yosys)"].passed
    assert "max_fpga_latency_ns (yosys): 45 (must be <= 40)" in gates["max_fpga_latency_ns (yosys)"].describe()
    cpu = _gates(cfg, _result("accuracy", 0.7), reference_metric=0.7)
    assert not [g for g in cpu if g.name.startswith(("max_lut", "max_dsp", "max_fpga"))]  # nothing to check on a CPU


def test_a_design_over_the_part_fails_by_default_and_names_the_resource() -> None:
    # the MLPerf-Tiny-style dense autoencoder of issue 18 on the VU13P: 677% of the LUTs, 110% of the FFs
    capacity = {"lut": 1_728_000, "ff": 3_456_000, "dsp": 12_288, "bram_18k": 5_376}
    over = TargetResult(
        "fpga-xcvu13p", "hls4ml", "ok", metric_name="mse", metric=0.1, resource_source="estimate",
        resources={"lut": 11_700_000, "ff": 3_800_000, "dsp": 0, "bram_18k": 0, "latency_ns": 100.0},
        capacity=capacity,
    )  # fmt: skip
    (fits,) = [g for g in _gates(GateSettings(), over, reference_metric=0.1) if g.name.startswith("max_utilization")]
    assert not fits.passed and fits.name == "max_utilization (lut of the part, estimate)"
    assert fits.value == pytest.approx(11_700_000 / 1_728_000) and fits.threshold == 1.0
    loose = _gates(GateSettings(max_utilization=8.0), over, reference_metric=0.1)
    assert next(g for g in loose if g.name.startswith("max_utilization")).passed  # the user can loosen it
    half = replace(over, resources={**over.resources, "lut": 864_000.0, "ff": 3_800_000.0})
    (ff,) = [g for g in _gates(GateSettings(), half, reference_metric=0.1) if g.name.startswith("max_utilization")]
    assert not ff.passed and ff.name.startswith("max_utilization (ff of")  # the FFs overflow, not the LUTs
    no_part = replace(over, capacity={})
    assert not [g for g in _gates(GateSettings(), no_part, reference_metric=0.1) if "utilization" in g.name]


def test_roc_auc_ranks_probabilities_as_they_are_and_logits_after_a_softmax() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    probs = rng.dirichlet([0.5, 0.5, 0.5], 300)  # a softmax head's outputs
    direct = np.mean([roc_auc_score(labels == k, probs[:, k]) for k in range(3)])
    resoftmaxed = np.exp(probs) / np.exp(probs).sum(axis=1, keepdims=True)
    # The planted data is one where a second softmax re-ranks: the metric must not apply it to probabilities.
    assert np.mean([roc_auc_score(labels == k, resoftmaxed[:, k]) for k in range(3)]) != direct
    assert roc_auc_ovr(probs, labels) == pytest.approx(direct, abs=1e-12)
    logits = np.log(probs) + 5.0  # the same model before its softmax: outside [0, 1], so a softmax comes first
    assert roc_auc_ovr(logits, labels) == pytest.approx(direct, abs=1e-9)
