"""Quantizer families, per-layer precision, and what each target can take exactly.

The family is chosen by the target, never by accident:

* ``fixed`` (FPGA targets): power-of-two scales, a quantized bias and an explicit
  input precision, per-tensor weight scales, unsigned activations after ReLU.
  Anything else converts through hls4ml without an error and computes different
  numbers (a 6-bit MLP with float scales fell to 19.8% accuracy in our tests).
* ``int8`` (TensorRT / ONNX Runtime INT8): 8-bit symmetric weights with one
  scale per output channel, signed 8-bit activations with one scale per tensor
  (TensorRT's Q/DQ is signed), a 32-bit bias. Scales are powers of two by
  default: with float scales the float accumulation order of each runtime
  differs, and re-quantization flips about 2 in 100,000 outputs by one step
  (measured on onnxruntime), so nothing is bit-exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from edgekit.core.config import LayerQuantSettings, QuantSettings
from edgekit.core.errors import ConfigError
from edgekit.core.schema import build, to_plain
from edgekit.core.targets import TargetProfile

__all__ = [
    "Family",
    "LayerPrecision",
    "QuantPlan",
    "family_for",
    "legality_problems",
    "plan_quantization",
    "transposed_conv_problems",
]

Family = Literal["fixed", "int8"]

_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "fixed": {"weight_scaling": "per_tensor", "bias_bits": 16, "activation_signed": False},
    "int8": {"weight_scaling": "per_channel", "bias_bits": 32, "activation_signed": True},
}


def family_for(target: TargetProfile) -> Family | None:
    """The quantizer family a target needs, or None for a float target."""
    if target.family == "fpga":
        return "fixed"
    if target.precision == "int8":
        return "int8"
    return None


@dataclass(frozen=True)
class LayerPrecision:
    """The resolved precision of one weighted layer or activation of the model."""

    name: str  # module path in the float model, or "input"
    kind: str  # linear, conv1d, conv2d, conv_transpose1d/2d, relu, input, add, avgpool, sigmoid, tanh, leaky_relu
    weight_bits: int | None
    activation_bits: int
    bias_bits: int | None
    accumulator_bits: int | None  # None: wide enough for the layer (derived downstream)
    weight_scaling: Literal["per_tensor", "per_channel"] | None
    activation_signed: bool


@dataclass(frozen=True)
class QuantPlan:
    family: Family
    scale_type: Literal["power_of_two", "float"]
    weight_overflow: Literal["saturate", "saturate_symmetric"]
    layers: tuple[LayerPrecision, ...]
    host_head: str = ""  # "softmax" or "log_softmax": the model's last step, left to the host (outputs are logits)
    host_tail: str = ""  # quant.deploy_until: the artifacts output this ReLU's values, the host runs the rest

    def layer(self, name: str) -> LayerPrecision:
        return next(layer for layer in self.layers if layer.name == name)

    def deployed(self) -> tuple[LayerPrecision, ...]:
        """The layers the quantized artifacts compute: all, or those up to ``host_tail`` (forward order)."""
        names = [layer.name for layer in self.layers]
        return self.layers if not self.host_tail else self.layers[: names.index(self.host_tail) + 1]


WEIGHTED = ("linear", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d")


def plan_quantization(
    cfg: QuantSettings, family: Family, layers: Iterable[tuple[str, str]], nonnegative: frozenset[str] = frozenset()
) -> QuantPlan:
    """Resolve every layer's precision: family defaults < ``[quant]`` < ``[quant.layers.NAME]``.

    ``layers`` are (module path, kind) pairs in forward order, from the model's graph; ``nonnegative``
    names the average poolings of a ReLU's output and the clamps bounded below by 0 or more (they may
    re-quantize unsigned, the others are signed).
    """
    layers = list(layers)
    known = {name for name, _ in layers}
    unknown = sorted(set(cfg.layers) - known)
    if unknown:
        raise ConfigError(
            f"[quant.layers] names layer(s) the model does not have: {', '.join(unknown)}",
            hint=f"quantized layers of this model: {', '.join(n for n, _ in layers)}",
        )
    defaults = _FAMILY_DEFAULTS[family]
    resolved = []
    for name, kind in layers:
        override: LayerQuantSettings = build(LayerQuantSettings, to_plain(cfg.layers.get(name, {})))

        def pick(key: str, _o: LayerQuantSettings = override) -> Any:
            for value in (getattr(_o, key, None), getattr(cfg, key, None)):
                if value is not None:
                    return value
            return defaults.get(key)

        weighted = kind in WEIGHTED
        if kind == "input":
            activation_bits, signed = cfg.input_bits or pick("activation_bits"), True
        else:
            activation_bits, signed = pick("activation_bits"), bool(pick("activation_signed"))
        resolved.append(
            LayerPrecision(
                name=name,
                kind=kind,
                weight_bits=pick("weight_bits") if weighted else None,
                activation_bits=activation_bits,
                bias_bits=pick("bias_bits") if weighted else None,
                accumulator_bits=pick("accumulator_bits") if weighted else None,
                weight_scaling=pick("weight_scaling") if weighted else None,
                activation_signed=kind in ("add", "cat", "mul", "tanh", "leaky_relu")
                or (kind in ("avgpool", "clamp") and name not in nonnegative)
                or signed,
            )
        )
    return QuantPlan(family, cfg.scale_type, cfg.weight_overflow, tuple(resolved))


# a * b of two b-bit codes needs 2b - 1 bits; float32 (brevitas, torch, ONNX Runtime) holds 24 exactly
MAX_PRODUCT_BITS = 12


def legality_problems(plan: QuantPlan, target: TargetProfile) -> list[str]:
    """Every layer the target's number format cannot take exactly, with the reason; empty when all is well.

    These are the rules of the format (fixed point through QONNX on the FPGA); what one backend cannot build
    (TensorRT's 8-bit Q/DQ, QuantizeLinear's width, hls4ml's or the RTL path's layers) is that backend's
    :meth:`~edgekit.backends.base.Backend.quant_problems`."""
    problems: list[str] = [
        f"{layer.name}: a product of {layer.activation_bits}-bit operands: the quantized model computes a * b in "
        f"float32, exact only for operands of up to {MAX_PRODUCT_BITS} bits (their product in its 24-bit significand)"
        for layer in plan.deployed()
        if layer.kind == "mul" and layer.activation_bits > MAX_PRODUCT_BITS
    ]
    if target.family == "fpga":
        if plan.scale_type != "power_of_two":
            problems += [
                f"{layer.name}: float scales are not bit-exact through hls4ml (it computes different numbers "
                'without an error); use quant.scale_type = "power_of_two"'
                for layer in plan.deployed()
            ]
        problems += [
            f"{layer.name}: per-channel weight scales: the FPGA flow takes one power-of-two scale per tensor"
            for layer in plan.deployed()
            if layer.weight_scaling == "per_channel"
        ]
    return problems


def transposed_conv_problems(plan: QuantPlan, reader: str) -> list[str]:
    """The deployed transposed convolutions a fixed-point ``reader`` (hls4ml's, the RTL path's) cannot build."""
    return [
        f"{layer.name}: a transposed convolution: {reader} has no ConvTranspose; use "
        "Upsample(scale_factor=2, mode='nearest') and a Conv, or a CPU target"
        for layer in plan.deployed()
        if layer.kind in ("conv_transpose1d", "conv_transpose2d")
    ]
