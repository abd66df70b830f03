"""Stage 4 (first cut): each compiled artifact against the float reference, and the gates.

The result is plain data: a :class:`ValidationReport` is truthy when every gate
of every validated target passed (Polygraphy's convention for comparisons).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from edgekit.config import GateSettings, Settings
from edgekit.errors import InputError
from edgekit.latency import LatencyStat, measure_latency
from edgekit.metrics import (
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
from edgekit.progress import bar
from edgekit.runner import Runner
from edgekit.targets import TargetProfile

__all__ = [
    "GateResult",
    "GoldenSet",
    "HostTail",
    "LayerError",
    "Resources",
    "TargetResult",
    "ValidationReport",
    "evaluate_runner",
    "reference_from_outputs",
    "score_outputs",
    "skipped_result",
    "target_resources",
]

Status = Literal["ok", "unavailable", "failed"]


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


@dataclass(frozen=True)
class GateResult:
    name: str
    comparison: Literal["<=", ">="]
    threshold: float
    value: float
    passed: bool

    def describe(self) -> str:
        return f"{self.name}: {self.value:.6g} (must be {self.comparison} {self.threshold:.6g})"


@dataclass(frozen=True)
class Resources:
    """An FPGA target's figures for its budget gates: counts (lut, ff, dsp, bram_18k, latency_ns), their source."""

    counts: Mapping[str, float]
    source: str  # "estimate", "yosys", "nextpnr post-route", ...
    capacity: Mapping[str, float] = field(default_factory=dict)  # the part's, from the target profile


@dataclass(frozen=True)
class LayerError:
    layer: str  # the reference (brevitas) layer name
    kind: str
    max_abs_diff: float


@dataclass(frozen=True)
class TargetResult:
    """One row of a validation report: a target (or a reference), its metric, agreement and gates.

    >>> result = edgekit.compile(net, data=arrays, targets=["fpga-xcvu13p"], quant="w6a8")  # doctest: +SKIP
    >>> row = result.report.targets[0]  # doctest: +SKIP
    >>> row.passed, row.max_abs_diff_vs_quantized, [g.name for g in row.failed_gates()]  # doctest: +SKIP
    (True, 0.0, [])
    """

    target: str
    backend: str
    status: Status
    reason: str = ""
    runner: str = ""
    n_samples: int = 0
    metric_name: str = ""
    metric: float = math.nan
    accuracy: float = math.nan
    reconstruction: Mapping[str, float] = field(default_factory=dict)  # mse, psnr, signal_recovered
    max_abs_diff_vs_float: float = math.nan
    mean_abs_diff_vs_float: float = math.nan
    top1_agreement: float = math.nan
    quant_family: str = ""  # the quantized model this target runs, if any
    host_head: str = ""  # "softmax"/"log_softmax" applied on the host to the outputs before metric and float diffs
    host_tail: str = ""  # quant.deploy_until: the outputs are this layer's values, the host ran the rest on them
    max_abs_diff_vs_quantized: float = math.nan
    exact_match_vs_quantized: float = math.nan  # fraction of output values equal to brevitas' bit for bit
    max_lsb_diff_vs_quantized: float = math.nan  # the same difference in units of the output's last bit
    divergence: str = ""  # when not exact: the first layer that departs from the quantized reference
    layer_errors: tuple[LayerError, ...] = ()  # when not exact: max |diff| per traced layer
    latency: tuple[LatencyStat, ...] = ()
    gates: tuple[GateResult, ...] = ()
    exit_code: int = 0  # for a target that was not validated: why (3 unavailable, 4 toolchain)
    modified: tuple[str, ...] = ()  # artifact files that changed after the compile (edgekit validate ran them as is)
    # FPGA targets: lut, ff, dsp, bram_18k, latency_ns, and where they come from (for the budget gates)
    resources: Mapping[str, float] = field(default_factory=dict)
    resource_source: str = ""
    capacity: Mapping[str, float] = field(default_factory=dict)  # the part's lut, ff, dsp, bram_18k

    def utilization(self) -> dict[str, float]:
        """Used over available, per resource the part has (an FPGA target's resources; empty elsewhere)."""
        return {k: self.resources[k] / n for k, n in self.capacity.items() if n and k in self.resources}

    @property
    def passed(self) -> bool:
        return self.status == "ok" and all(g.passed for g in self.gates)

    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def latency_at(self, batch_size: int) -> LatencyStat | None:
        return next((s for s in self.latency if s.batch_size == batch_size), None)


@dataclass(frozen=True)
class ValidationReport:
    """The validation of one build: the float reference, every target, and the extra references.

    >>> report = edgekit.validate_build(Path("build/jet_tagger")).report  # doctest: +SKIP
    >>> report.passed, [t.target for t in report.targets]  # doctest: +SKIP
    (True, ['cpu-onnxruntime'])
    """

    model: str
    metric_name: str
    reference: TargetResult
    targets: tuple[TargetResult, ...] = field(default_factory=tuple)
    # the pruned float model and the quantized (brevitas) models: numbers from their stored outputs
    extra_references: tuple[TargetResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.targets)

    def __bool__(self) -> bool:
        return self.passed


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
