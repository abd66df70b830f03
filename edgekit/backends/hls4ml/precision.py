"""The fixed-point types edgekit sets in hls4ml's config, and the checks that hls4ml kept them.

hls4ml reads the precision of every quantized layer from the QONNX ``Quant``
nodes; edgekit sets the one it cannot infer: the input layer, which casts the
float input before the first ``Quant`` node rounds it. hls4ml's default there
(``fixed<16,6>``, truncating) rounds twice and differs from brevitas; edgekit
gives the input port the input quantizer's own type with brevitas' rounding
(``ap_fixed<8,4,AP_RND_CONV,AP_SAT>`` for 8 bits in steps of 2^-4: half to even,
saturating), so the firmware's port is the quantized width and the conversion
of a float into it is the quantizer. A quantizer no such type can express
(several scales, a zero point, another rounding) gets a wide port instead:
enough fraction bits to hold every float32 value that matters for its rounding
(its scale's bits plus 24), saturating.

Also here: the table size and types of sigmoid/tanh layers (checked entry by entry), the wide type of an
average pooling, and the float path's types, sized from measured activation ranges.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgekit.core.errors import ConfigError, ToolchainError
from edgekit.model.activation_table import (
    COMPUTED,
    HARD_SIGMOID_SLOPE_BITS,
    hls4ml_codes,
    hls4ml_layer_config,
    mismatch,
    table_specs,
)

__all__ = [
    "AVERAGE_POOL_PRECISION",
    "INPUT_INTEGER_BITS",
    "float_types",
    "input_precision",
    "input_type",
    "set_table_types",
    "table_configs",
]

INPUT_INTEGER_BITS = 16


def input_precision(model: Any) -> str:
    """ap_fixed type for the input layer: exact for every float32 the input quantizer can round differently."""
    graph = model.graph
    source = graph.input[0].name
    quant = next((n for n in graph.node if n.op_type == "Quant" and n.input[0] == source), None)
    if quant is None:
        raise ConfigError(
            "the clean QONNX graph does not start with the input's Quant node (a node before it, often a transpose "
            "the channels-last conversion could not absorb)",
            hint="start the model with one layer its branches share (a stem convolution), or use the INT8 target",
        )
    port = _quantized_port(model, quant)
    if port is not None:
        return port
    scale = float(np.max(model.get_initializer(quant.input[1])))
    fraction_bits = max(0, -math.floor(math.log2(scale))) + 24
    return f"fixed<{INPUT_INTEGER_BITS + fraction_bits},{INPUT_INTEGER_BITS},TRN,SAT>"


def _quantized_port(model: Any, quant: Any) -> str | None:
    """The input quantizer's own type, rounding like brevitas (half to even, saturating), where one exists.

    With one power-of-two scale, a zero point of 0 and ROUND, the conversion of a float into this type at the
    port is the quantizer itself, so the design's input is the quantized width (``ap_fixed<8,4>`` for an 8-bit
    input with steps of 2^-4) and the ``Quant`` layer after it changes nothing. None: the wide fallback.
    """
    scale = model.get_initializer(quant.input[1])
    zero_point = model.get_initializer(quant.input[2])
    bits = model.get_initializer(quant.input[3])
    attributes = {a.name: a for a in quant.attribute}
    rounding = attributes["rounding_mode"].s.decode() if "rounding_mode" in attributes else "ROUND"
    signed = bool(attributes["signed"].i) if "signed" in attributes else True
    narrow = bool(attributes["narrow"].i) if "narrow" in attributes else False
    if scale is None or zero_point is None or bits is None or np.size(scale) != 1 or np.any(zero_point != 0):
        return None
    exponent = math.log2(float(np.max(scale)))
    width = int(np.max(bits))
    if rounding != "ROUND" or exponent != round(exponent) or width < 2 or (narrow and not signed):
        return None
    integer = width + round(exponent)
    if integer < 1:
        return None
    overflow = "SAT_SYM" if narrow else "SAT"
    return f"{'' if signed else 'u'}fixed<{width},{integer},RND_CONV,{overflow}>"


# Exact while the pooling input's fraction bits plus log2(window) stay within 20 (8-bit activations with up to
# 12 fraction bits and windows up to 256 values); beyond that the exactness gate reports the difference.
AVERAGE_POOL_PRECISION = "fixed<40,20,TRN,WRAP>"


def table_configs(model: Any) -> dict[str, dict[str, Any]]:
    """Table size and types per sigmoid/tanh layer, each checked entry by entry against edgekit's table.

    hls4ml fills its table from float math on a fixed grid over [-8, 8) (tanh [-4, 4)) and clamps the index:
    with one entry per input step and the output type as table type, entry i is f(x_i) rounded once. Inputs
    outside the grid clamp to its edge, which is exact only if the output saturates there: the check finds it.
    """
    try:
        specs = table_specs(model)
        configs = {name: hls4ml_layer_config(spec) for name, spec in specs.items()}
    except ValueError as err:
        raise ConfigError(f"hls4ml cannot compute this table activation exactly: {err}") from err
    for name, spec in specs.items():
        for codes in hls4ml_codes(spec):
            problem = mismatch(spec, codes, f"{name}: hls4ml's table")
            if problem and spec.function == "HardSigmoid":
                raise ConfigError(
                    f"{problem}: its input step 2**{spec.in_exponent} is no coarser than its output step "
                    f"2**{spec.out_exponent}, so x / 6 + 1/2 lands exactly on rounding ties, which brevitas rounds to "
                    "even and hls4ml's slope (1/6 in fixed point) cannot",
                    hint="it happens when the hard sigmoid's input stays within about +-0.5; use the INT8 target "
                    "(cpu-onnxruntime-int8) or a float target for this model",
                )
            if problem:
                raise ConfigError(
                    problem,
                    hint="hls4ml clamps inputs beyond its table range ([-8, 8) sigmoid, [-4, 4) tanh), which is exact "
                    "only where the output quantizer saturates; use a CPU target for this model",
                )
    return configs


def set_table_types(hls_model: Any, model: Any) -> None:
    """Give each sigmoid/tanh layer its table type after conversion; check its result type is the table's.

    hls4ml 1.3.0 reads TableSize from the layer config but not the table precision (the layer keeps its
    default fixed<18,8,TRN,WRAP>, which truncates f(x) before the result rounds it again).
    """
    for name, spec in table_specs(model).items():
        layer = hls_model.graph.get(name)
        if layer is None:
            raise ToolchainError(f"hls4ml's model has no layer {name} for the {spec.function} of the QONNX graph")
        result = layer.get_attr("result_t").precision
        wanted = hls_model.config.backend.convert_precision_string(spec.output_type())
        if str(result) != str(wanted):
            raise ToolchainError(
                f"hls4ml gave {name} ({spec.function}) the result type {result}, not its output quantizer's {wanted}"
            )
        if spec.function == "Clip":
            continue  # hls4ml's relu_max and hard_tanh compute in their input's type: nothing rounds before result
        if spec.function == "HardSigmoid":
            slope = layer.get_attr("slope_t").precision
            if (int(slope.width), int(slope.integer), bool(slope.signed)) != (HARD_SIGMOID_SLOPE_BITS, 0, False):
                raise ToolchainError(
                    f"hls4ml gave {name} (HardSigmoid) the slope type {slope}, not ufixed<{HARD_SIGMOID_SLOPE_BITS},0>"
                )
            continue
        if spec.function in COMPUTED:
            param = layer.get_attr("param_t").precision
            wanted_param = hls_model.config.backend.convert_precision_string(spec.alpha_type())
            if str(param) != str(wanted_param):
                raise ToolchainError(
                    f"hls4ml gave {name} ({spec.function}) the slope type {param}, not {wanted_param}, which holds "
                    f"its slope {spec.alpha!r} exactly"
                )
            continue
        layer.get_attr("table_t").precision = result  # already in the backend's type classes


def _fixed(max_abs: float, width: int, headroom: int) -> str:
    """A rounding, saturating signed type whose integer bits hold ``max_abs`` with ``headroom`` doubling(s) spare."""
    integer = max(1, math.ceil(math.log2(max(max_abs, 2.0**-8))) + 1 + headroom)
    return f"fixed<{width},{min(integer, width)},RND,SAT>"


def float_types(config: dict[str, Any], model: Any, profile: dict[str, Any], width: int) -> dict[str, dict[str, str]]:
    """Set result, weight, bias and accumulator types per layer from measured ranges; returns what was set.

    hls4ml names its layers after the torch.fx nodes (``encoder_0`` runs module ``encoder.0``, ``relu_1`` is
    the second ``F.relu``), which is how the profile recorded the ranges; its first layer is the input,
    whatever the ``forward`` argument is called.
    """
    modules = dict(model.named_modules())
    ranges: dict[str, float] = profile["ranges"]
    targets: dict[str, str] = profile.get("modules", {})
    input_layer = next(iter(config["LayerName"]))
    chosen: dict[str, dict[str, str]] = {}
    for name, layer in config["LayerName"].items():
        precision = layer.setdefault("Precision", {})
        key = "input" if name == input_layer else name
        if key in ranges:
            precision["result"] = _fixed(ranges[key], width, headroom=1)
            if precision.get("accum") == "auto":  # pooling sums before it divides
                precision["accum"] = _fixed(ranges[key], width + 14, headroom=2)
        module = modules.get(targets.get(name, name))
        weight = getattr(module, "weight", None)
        if weight is not None and "weight" in precision:
            precision["weight"] = _fixed(float(weight.detach().abs().max()), width, headroom=0)
            bias = getattr(module, "bias", None)
            if bias is not None:
                precision["bias"] = _fixed(float(bias.detach().abs().max()), width, headroom=0)
            precision["accum"] = _fixed(ranges.get(name, 1.0), width + 14, headroom=2)
        chosen[name] = {k: str(v) for k, v in precision.items() if k != "table"}
    return chosen


def input_type(config: dict[str, Any]) -> str:
    """The input layer's type: hls4ml's first layer (``global_in`` from QONNX, the forward argument from torch)."""
    layer: dict[str, Any] = next(iter(config["LayerName"].values()), {})
    return str(layer.get("Precision", {}).get("result", ""))
