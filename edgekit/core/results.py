"""What a validation finds, as plain data: one row per target and reference, its gates, the whole report.

These types belong to no stage: the validate stage fills them, the reports (``report.md``, ``report.html``),
hardware-in-the-loop checks and sweeps read them, and the manifest stores them. A
:class:`ValidationReport` is truthy when every gate of every validated target passed (Polygraphy's
convention for comparisons).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from edgekit.core.latency import LatencyStat

__all__ = ["GateResult", "LayerError", "Resources", "Status", "TargetResult", "ValidationReport"]

Status = Literal["ok", "unavailable", "failed"]


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
