"""Resolved build settings and the one place they are merged.

Layers, lowest first: code defaults < target profile < model recipe (< its
``[tiny]`` table when asked for) < command-line ``--set`` flags. Each layer is
checked on its own, so an error names the file it came from, and the merge
result is built once into frozen dataclasses.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from edgekit.errors import ConfigError
from edgekit.schema import build, check_table, deep_merge

__all__ = [
    "FORMAT_GATES",
    "ExportSettings",
    "GateSettings",
    "LatencySettings",
    "Layer",
    "LayerQuantSettings",
    "PruneSettings",
    "QuantSettings",
    "Settings",
    "SynthSettings",
    "TrainSettings",
    "ValidationSettings",
    "format_gates_layer",
    "merge_settings",
    "parse_set_flags",
    "prune_shorthand",
    "quant_shorthand",
]


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = field(default=20, metadata={"min": 0, "max": 10_000})
    batch_size: int = field(default=256, metadata={"min": 1})
    learning_rate: float = field(default=1e-3, metadata={"min": 0.0})
    weight_decay: float = field(default=0.0, metadata={"min": 0.0})
    optimizer: Literal["adam", "sgd"] = "adam"
    seed: int = 0


@dataclass(frozen=True)
class ExportSettings:
    # The TorchScript exporter (dynamo=False) is pinned: it needs no onnxscript and it is
    # the path brevitas' QONNX/QCDQ exports take, so float and quantized graphs match in form.
    opset: int = field(default=17, metadata={"min": 13, "max": 23})


@dataclass(frozen=True)
class LatencySettings:
    batch_sizes: tuple[int, ...] = field(default=(1, 1024), metadata={"min": 1})
    warmup_iters: int = field(default=20, metadata={"min": 0})
    min_iters: int = field(default=50, metadata={"min": 1})
    max_iters: int = field(default=20_000, metadata={"min": 1})
    min_time_s: float = field(default=0.3, metadata={"min": 0.0})
    max_time_s: float = field(default=3.0, metadata={"min": 0.0})


@dataclass(frozen=True)
class ValidationSettings:
    max_samples: int | None = field(default=None, metadata={"min": 1})
    batch_size: int = field(default=1024, metadata={"min": 1})


@dataclass(frozen=True)
class GateSettings:
    """Pass/fail thresholds; a gate set to nothing (absent in every layer) is not checked."""

    min_metric: float | None = None  # for metrics where higher is better (accuracy, ROC AUC, PSNR)
    max_metric: float | None = None  # for metrics where lower is better (MSE)
    # how much worse than the float reference: lower for accuracy, ROC AUC and PSNR, higher for MSE
    max_metric_drop_vs_float: float | None = 0.002
    # Agreement with the float reference: set by each target profile for its number format.
    max_abs_diff_vs_float: float | None = None
    min_top1_agreement: float | None = None
    # Agreement with the quantized (brevitas) reference, for targets that run a quantized graph.
    max_abs_diff_vs_quantized: float | None = None
    max_lsb_diff_vs_quantized: float | None = field(default=None, metadata={"min": 0.0})  # in the output's last bit
    max_latency_p50_us_batch1: float | None = field(default=None, metadata={"min": 0.0})
    # Resource and latency budgets of an FPGA target, checked against what its backend reports
    # (yosys' mapped cells for an RTL target, else the estimate); other targets have none to check.
    max_lut: float | None = field(default=None, metadata={"min": 0.0})
    max_ff: float | None = field(default=None, metadata={"min": 0.0})
    max_dsp: float | None = field(default=None, metadata={"min": 0.0})
    max_bram_18k: float | None = field(default=None, metadata={"min": 0.0})
    max_fpga_latency_ns: float | None = field(default=None, metadata={"min": 0.0})


@dataclass(frozen=True)
class LayerQuantSettings:
    """Per-layer overrides in ``[quant.layers.NAME]``; anything absent comes from ``[quant]``."""

    weight_bits: int | None = field(default=None, metadata={"min": 2, "max": 16})
    activation_bits: int | None = field(default=None, metadata={"min": 2, "max": 16})
    bias_bits: int | None = field(default=None, metadata={"min": 2, "max": 32})
    accumulator_bits: int | None = field(default=None, metadata={"min": 2, "max": 32})
    weight_scaling: Literal["per_tensor", "per_channel"] | None = None
    activation_signed: bool | None = None


@dataclass(frozen=True)
class QuantSettings:
    """Quantization: off unless ``enabled`` (``--quant w6a8`` turns it on).

    Bit widths are model-wide defaults; ``layers`` overrides them per module path.
    ``None`` means "the quantizer family's default" (fixed-point for FPGA targets,
    8-bit symmetric for INT8 targets), so the family decides, not chance.
    """

    enabled: bool = False
    weight_bits: int = field(default=8, metadata={"min": 2, "max": 16})
    activation_bits: int = field(default=8, metadata={"min": 2, "max": 16})
    input_bits: int | None = field(default=None, metadata={"min": 2, "max": 16})
    bias_bits: int | None = field(default=None, metadata={"min": 2, "max": 32})
    accumulator_bits: int | None = field(default=None, metadata={"min": 2, "max": 32})
    weight_scaling: Literal["per_tensor", "per_channel"] | None = None
    activation_signed: bool | None = None
    scale_type: Literal["power_of_two", "float"] = "power_of_two"
    # Rounding is always half to even: the only mode QuantizeLinear has, and brevitas 0.13.4's floor
    # quantizers export to QONNX with different numbers (measured), so no other mode is offered.
    weight_overflow: Literal["saturate", "saturate_symmetric"] = "saturate_symmetric"
    method: Literal["qat", "ptq"] = "qat"
    qat_epochs: int = field(default=6, metadata={"min": 0, "max": 10_000})
    qat_learning_rate: float = field(default=1e-3, metadata={"min": 0.0})
    calibration_samples: int = field(default=2048, metadata={"min": 1})
    bias_correction: bool = True
    layers: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class PruneSettings:
    """Pruning: off unless ``method`` is set (``--prune 0.8``, ``--prune structured:0.5``, ``--prune 2:4``).

    ``sparsity`` is the fraction of weights (unstructured) or of channels and neurons
    (structured) removed; 2:4 is always half of every group of four. It is reached in
    ``steps`` rounds of prune -> fine-tune, each fine-tune ``finetune_epochs`` long.
    """

    method: Literal["none", "unstructured", "structured", "2:4"] = "none"
    sparsity: float = field(default=0.0, metadata={"min": 0.0, "max": 0.99})
    scope: Literal["global", "layer"] = "global"
    steps: int = field(default=4, metadata={"min": 1, "max": 50})
    finetune_epochs: int = field(default=3, metadata={"min": 0, "max": 1000})
    finetune_learning_rate: float = field(default=1e-3, metadata={"min": 0.0})
    exclude: tuple[str, ...] = ()  # layers left dense; structured pruning always keeps the output layer


@dataclass(frozen=True)
class SynthSettings:
    """Vendor C synthesis of FPGA targets (``--synth``); needs Vitis HLS or Vivado HLS on PATH."""

    enabled: bool = False
    timeout_s: int = field(default=7200, metadata={"min": 1})


@dataclass(frozen=True)
class Settings:
    train: TrainSettings = TrainSettings()
    export: ExportSettings = ExportSettings()
    latency: LatencySettings = LatencySettings()
    validation: ValidationSettings = ValidationSettings()
    gates: GateSettings = GateSettings()
    quant: QuantSettings = QuantSettings()
    prune: PruneSettings = PruneSettings()
    synth: SynthSettings = SynthSettings()
    model_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    data_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


SETTINGS_SECTIONS = tuple(f.name for f in fields(Settings))


@dataclass(frozen=True)
class Layer:
    """One source of settings: where it came from and its (nested) table."""

    source: str
    table: Mapping[str, Any]


def merge_settings(layers: Sequence[Layer]) -> Settings:
    """Check each layer, merge them in order (later wins) and build frozen settings."""
    merged: dict[str, Any] = {}
    for layer in layers:
        check_table(Settings, layer.table, layer.source)
        for name, table in layer.table.get("quant", {}).get("layers", {}).items():
            check_table(LayerQuantSettings, table, layer.source, f"quant.layers.{name}")
        merged = deep_merge(merged, layer.table)
    return build(Settings, merged, "merged settings")


def quant_shorthand(text: str) -> Layer:
    """``--quant w6a8`` (weights 6 bits, activations 8), ``w4a6i8`` (input 8), ``int8``, ``off``."""
    spec = text.strip().lower()
    if spec in ("off", "none", "float"):
        return Layer("--quant", {"quant": {"enabled": False}})
    if spec == "int8":
        spec = "w8a8"
    match = re.fullmatch(r"w(\d+)a(\d+)(?:i(\d+))?", spec)
    if not match:
        raise ConfigError(
            f"--quant {text!r} is not a precision shorthand",
            hint="use wNaM (weights N bits, activations M bits), e.g. w6a8, w4a8i8 (input 8 bits), int8, or off",
        )
    table: dict[str, Any] = {"enabled": True, "weight_bits": int(match[1]), "activation_bits": int(match[2])}
    if match[3]:
        table["input_bits"] = int(match[3])
    return Layer("--quant", {"quant": table})


def parse_set_flags(flags: Sequence[str]) -> Layer:
    """``--set train.epochs=5 --set latency.batch_sizes=[1,64]`` as one settings layer.

    Values are TOML values; a bare word that is not valid TOML is taken as a string.
    """
    table: dict[str, Any] = {}
    for flag in flags:
        key, sep, raw = flag.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--set {flag!r} is not KEY=VALUE",
                hint="for example --set train.epochs=5 or --set gates.min_metric=0.9",
            )
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        *parents, leaf = key.split(".")
        node = table
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {flag!r} conflicts with an earlier --set of {part!r}")
        node[leaf] = value
    return Layer("command line --set", table)


def prune_shorthand(text: str) -> Layer:
    """``--prune 0.8`` (unstructured), ``unstructured:0.8``, ``structured:0.5``, ``2:4``, or ``off``."""
    spec = text.strip().lower()
    if spec in ("off", "none"):
        return Layer("--prune", {"prune": {"method": "none"}})
    if spec == "2:4":
        return Layer("--prune", {"prune": {"method": "2:4", "sparsity": 0.5}})
    method, _, amount = spec.rpartition(":")
    method = method or "unstructured"
    try:
        sparsity = float(amount)
    except ValueError:
        sparsity = -1.0
    if method not in ("unstructured", "structured") or sparsity < 0:
        raise ConfigError(
            f"--prune {text!r} is not a pruning shorthand",
            hint="use a sparsity (0.8: unstructured), structured:0.5 (channels), 2:4, or off",
        )
    return Layer("--prune", {"prune": {"method": method, "sparsity": sparsity}})


# Agreement a target is held to by default, by the number format it computes in (a layer below the target
# profile, so a profile, a recipe or --set overrides it). Rationale:
# - fp32: another kernel library sums in another order; logits of O(10) agree to about 1e-5.
# - fp16: 11 significant bits (unit roundoff 4.9e-4) through a few layers of sums: a few 1e-2 on logits of
#   O(10); top-1 may flip on near-ties only.
# - bf16: 8 significant bits (unit roundoff 3.9e-3): eight times looser than fp16.
# - int8 and fixed: the quantized reference is the model; power-of-two scales make every runtime exact.
FORMAT_GATES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_diff_vs_float": 1e-4, "min_top1_agreement": 0.999},
    "fp16": {"max_abs_diff_vs_float": 5e-2, "min_top1_agreement": 0.995},
    "bf16": {"max_abs_diff_vs_float": 4e-1, "min_top1_agreement": 0.99},
    "int8": {"max_abs_diff_vs_quantized": 0.0, "max_metric_drop_vs_float": 0.01},
    "fixed": {"max_abs_diff_vs_quantized": 0.0, "max_metric_drop_vs_float": 0.01},
}


def format_gates_layer(precision: str) -> Layer:
    """The default gates for targets computing in ``precision`` (fp32, fp16, bf16, int8, fixed)."""
    return Layer(f"default gates for {precision}", {"gates": dict(FORMAT_GATES.get(precision, {}))})
