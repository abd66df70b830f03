"""Stage 4: each compiled artifact against the float reference (and the quantized one), and the gates.

It fills the result types of :mod:`edgekit.core.results`, plain data a report or a sweep reads without this stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from edgekit.core.config import GateSettings, Settings
from edgekit.core.errors import InputError
from edgekit.core.latency import LatencyStat, measure_latency
from edgekit.core.metrics import (
    CLASSIFICATION_METRICS,
    accuracy,
    lsb_grid,
    max_abs_diff,
    max_lsb_diff,
    mean_abs_diff,
    metric_drop,
    reconstruction_metrics,
    task_metric,
    top1_agreement,
)
from edgekit.core.progress import bar
from edgekit.core.results import GateResult, Resources, Status, TargetResult
from edgekit.core.runner import Runner
from edgekit.core.targets import TargetProfile

__all__ = [
    "GoldenSet",
    "HostTail",
    "evaluate_runner",
    "reference_from_outputs",
    "score_outputs",
    "skipped_result",
    "target_resources",
]


@dataclass(frozen=True)
class HostTail:
    """The rest of a quantized model after ``quant.deploy_until``'s layer, run on the host on its values."""

    layer: str
    run: Callable[[np.ndarray], np.ndarray]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self.run(values)


@dataclass(frozen=True)
class GoldenSet:
    inputs: np.ndarray
    labels: np.ndarray
    float_outputs: np.ndarray
    metric: str
    quant_outputs: np.ndarray | None = None  # brevitas' outputs, for targets that run a quantized graph
    quant_family: str = ""
    quant_lsb: np.ndarray | None = None  # the last bit of each quantized output value (None: not on a 2**k grid)
    quant_head: str = ""  # "softmax"/"log_softmax": the quantized graphs output logits, the host applies it
    # quant.deploy_until: the quantized graphs output a cut's values; this runs the rest of the model on them
    quant_tail: HostTail | None = None

    def limited(self, max_samples: int | None) -> GoldenSet:
        if max_samples is None or max_samples >= len(self.labels):
            return self
        n = max_samples
        quant = None if self.quant_outputs is None else self.quant_outputs[:n]
        return replace(
            self,
            inputs=self.inputs[:n],
            labels=self.labels[:n],
            float_outputs=self.float_outputs[:n],
            quant_outputs=quant,
        )

    def with_quant(
        self,
        outputs: np.ndarray,
        family: str,
        head: str = "",
        tail: HostTail | None = None,
    ) -> GoldenSet:
        """The quantized reference's outputs; their last bit is read off the whole set before any limit."""
        lsb = lsb_grid(outputs)
        return replace(
            self, quant_outputs=outputs, quant_family=family, quant_lsb=lsb, quant_head=head, quant_tail=tail
        )


def _run_all(runner: Runner, inputs: np.ndarray, batch_size: int, desc: str) -> np.ndarray:
    starts = range(0, len(inputs), batch_size)
    parts = [runner.run(inputs[i : i + batch_size]) for i in bar(starts, desc=desc, total=len(starts), unit="batch")]
    return np.concatenate(parts)


def _gates(cfg: GateSettings, result: TargetResult, reference_metric: float) -> tuple[GateResult, ...]:
    drop = metric_drop(result.metric_name, reference_metric, result.metric)
    checks: list[tuple[str, Literal["<=", ">="], float | None, float]] = [
        (f"min_metric ({result.metric_name})", ">=", cfg.min_metric, result.metric),
        (f"max_metric ({result.metric_name})", "<=", cfg.max_metric, result.metric),
        ("max_metric_drop_vs_float", "<=", cfg.max_metric_drop_vs_float, drop),
        ("max_abs_diff_vs_float", "<=", cfg.max_abs_diff_vs_float, result.max_abs_diff_vs_float),
    ]
    if result.metric_name in CLASSIFICATION_METRICS:  # top-1 means nothing for a reconstruction
        checks.append(("min_top1_agreement", ">=", cfg.min_top1_agreement, result.top1_agreement))
    if result.quant_family:
        checks.append(
            ("max_abs_diff_vs_quantized", "<=", cfg.max_abs_diff_vs_quantized, result.max_abs_diff_vs_quantized)
        )
        checks.append(
            ("max_lsb_diff_vs_quantized", "<=", cfg.max_lsb_diff_vs_quantized, result.max_lsb_diff_vs_quantized)
        )
    budgets = (("lut", cfg.max_lut), ("ff", cfg.max_ff), ("dsp", cfg.max_dsp), ("bram_18k", cfg.max_bram_18k),
               ("latency_ns", cfg.max_fpga_latency_ns))  # fmt: skip
    for key, limit in budgets:
        if result.resource_source and limit is not None:  # a CPU or GPU target has no such budget
            name = "max_fpga_latency_ns" if key == "latency_ns" else f"max_{key}"
            checks.append((f"{name} ({result.resource_source})", "<=", limit, result.resources.get(key, math.nan)))
    if cfg.min_fmax_mhz is not None and "fmax_mhz" in result.resources:  # only a routed design has a timing
        checks.append(
            (f"min_fmax_mhz ({result.resource_source})", ">=", cfg.min_fmax_mhz, result.resources["fmax_mhz"])
        )
    used = result.utilization()
    if result.resource_source and used and cfg.max_utilization is not None:
        fullest = max(used, key=lambda k: used[k])  # the gate names the resource that overflows first
        checks.append((f"max_utilization ({fullest} of the part, {result.resource_source})", "<=",
                       cfg.max_utilization, used[fullest]))  # fmt: skip
    batch1 = result.latency_at(1)
    if cfg.max_latency_p50_us_batch1 is not None:
        value = batch1.p50_us if batch1 else math.nan
        checks.append(("max_latency_p50_us_batch1", "<=", cfg.max_latency_p50_us_batch1, value))
    gates = []
    for name, comparison, threshold, value in checks:
        if threshold is None:
            continue
        ok = value >= threshold if comparison == ">=" else value <= threshold
        gates.append(GateResult(name, comparison, float(threshold), float(value), bool(ok and not math.isnan(value))))
    return tuple(gates)


def evaluate_runner(
    target: str,
    backend: str,
    runner: Runner,
    golden: GoldenSet,
    settings: Settings,
    reference_metric: float | None,
    resources: Resources | None = None,
) -> TargetResult:
    """Outputs, metrics, agreement with the float reference, latency, and (for targets) gates.

    ``reference_metric`` is None for the float reference itself, which has no gates. ``resources`` is an
    FPGA target's counts, where they come from and the part's capacity, for its budget gates.
    """
    golden = golden.limited(settings.validation.max_samples)
    outputs = _run_all(runner, golden.inputs, settings.validation.batch_size, f"validate {target}")
    sample = golden.inputs[: max(settings.latency.batch_sizes)]
    latency = tuple(
        measure_latency(runner, sample, b, settings.latency)
        for b in bar(settings.latency.batch_sizes, desc=f"latency {target}", unit="batch size")
    )
    return score_outputs(target, backend, runner.description, outputs, latency, golden, settings, reference_metric,
                         resources)  # fmt: skip


def score_outputs(
    target: str,
    backend: str,
    runner: str,
    outputs: np.ndarray,
    latency: tuple[LatencyStat, ...],
    golden: GoldenSet,
    settings: Settings,
    reference_metric: float | None,
    resources: Resources | None = None,
) -> TargetResult:
    """Metrics, agreement and gates of outputs computed elsewhere (by a runner here, or on a device)."""
    expected = (golden.quant_outputs if golden.quant_outputs is not None else golden.float_outputs).shape
    if outputs.shape != expected:
        raise InputError(f"{target} returned outputs of shape {outputs.shape}, expected {expected}")
    head, tail = (golden.quant_head, golden.quant_tail) if golden.quant_outputs is not None else ("", None)
    result = replace(_scored(target, backend, runner, outputs, golden, head, tail), latency=latency)
    if resources is not None:
        result = replace(result, resources=dict(resources.counts), resource_source=resources.source,
                         capacity=dict(resources.capacity))  # fmt: skip
    if golden.quant_outputs is not None:
        result = replace(
            result,
            quant_family=golden.quant_family,
            max_abs_diff_vs_quantized=max_abs_diff(outputs, golden.quant_outputs),
            exact_match_vs_quantized=float(np.mean(outputs == golden.quant_outputs)),
            max_lsb_diff_vs_quantized=max_lsb_diff(outputs, golden.quant_outputs, golden.quant_lsb),
        )
    if reference_metric is None:
        return result
    return replace(result, gates=_gates(settings.gates, result, reference_metric))


def target_resources(backend: Any, artifact: Any, profile: TargetProfile) -> Resources | None:
    """What ``backend`` reports of a compiled ``artifact`` (its ``resources`` hook), with the part's capacity."""
    figures = backend.resources(artifact)
    if figures is None:
        return None
    capacity: dict[str, float] = {}
    if profile.fpga is not None:
        part = profile.fpga.resources
        capacity = {"lut": part.lut, "ff": part.ff, "dsp": part.dsp, "bram_18k": part.bram_18k}
    return Resources(figures[0], figures[1], capacity)


def skipped_result(target: str, backend: str, status: Status, reason: str, exit_code: int) -> TargetResult:
    return TargetResult(target=target, backend=backend, status=status, reason=reason, exit_code=exit_code)


def reference_from_outputs(
    target: str,
    backend: str,
    runner: str,
    outputs: np.ndarray,
    golden: GoldenSet,
    max_samples: int | None,
    head: str = "",
    tail: HostTail | None = None,
) -> TargetResult:
    """A reference model's numbers from its stored outputs on the golden inputs (no runner, no latency)."""
    golden = golden.limited(max_samples)
    return _scored(target, backend, runner, outputs[: len(golden.labels)], golden, head, tail)


def host_head(outputs: np.ndarray, head: str) -> np.ndarray:
    """The softmax (or log-softmax) a quantized model leaves to the host, applied to its logits in float64."""
    if not head:
        return outputs
    logits = outputs.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    result: np.ndarray = (log_probs if head == "log_softmax" else np.exp(log_probs)).astype(np.float32)
    return result


def _scored(
    target: str,
    backend: str,
    runner: str,
    outputs: np.ndarray,
    golden: GoldenSet,
    head: str = "",
    tail: HostTail | None = None,
) -> TargetResult:
    """Task metric and agreement with the float outputs of ``golden`` (after the host's tail and softmax)."""
    outputs = host_head(outputs if tail is None else tail(outputs), head)
    classes = golden.metric in CLASSIFICATION_METRICS
    return TargetResult(
        target=target,
        backend=backend,
        status="ok",
        runner=runner,
        n_samples=len(golden.labels),
        metric_name=golden.metric,
        metric=task_metric(golden.metric, outputs, golden.labels),
        accuracy=accuracy(outputs, golden.labels) if classes else math.nan,
        max_abs_diff_vs_float=max_abs_diff(outputs, golden.float_outputs),
        mean_abs_diff_vs_float=mean_abs_diff(outputs, golden.float_outputs),
        top1_agreement=top1_agreement(outputs, golden.float_outputs) if classes else math.nan,
        reconstruction={} if classes else reconstruction_metrics(outputs, golden.labels),
        host_head=head,
        host_tail="" if tail is None else tail.layer,
    )
