"""Quantized sigmoid, tanh, LeakyReLU, hard sigmoid and clamps as tables: one definition every target meets.

A table activation re-quantizes its input (signed, power-of-two scale, b bits), applies
the function, and quantizes the output (power-of-two scale, round half to even,
saturate). It is therefore a table of 2**b output codes, which edgekit computes here
in float64. Every target evaluates the function in its own arithmetic (torch's and
ONNX Runtime's float32 kernels, hls4ml's float-filled C++ table indexed by the
fixed-point input), so exactness is not assumed: each target's table is computed
over all 2**b input codes and compared with this one when the model is built.

No brevitas, hls4ml or onnxruntime here: only the QONNX graph and numpy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "COMPUTED",
    "FUNCTIONS",
    "HARD_SIGMOID_SLOPE",
    "HARD_SIGMOID_SLOPE_BITS",
    "HLS4ML_CLAMPS",
    "HLS4ML_STREAM_CLAMPS",
    "TableSpec",
    "clip_bounds",
    "exact_slope",
    "hls4ml_codes",
    "hls4ml_layer_config",
    "hls4ml_table_config",
    "mismatch",
    "table_specs",
]

FUNCTIONS: dict[str, Callable[[np.ndarray, TableSpec], np.ndarray]] = {
    "Sigmoid": lambda x, _: 1.0 / (1.0 + np.exp(-x)),
    "Tanh": lambda x, _: np.tanh(x),
    # float64 holds the product of a b-bit code and a float32 slope exactly: the reference rounds it once
    "LeakyRelu": lambda x, spec: np.where(x > 0, x, np.float64(spec.alpha) * x),
    "Clip": lambda x, spec: np.clip(x, spec.low, spec.high),
    # torch's hardsigmoid, relu6(x + 3) / 6: x + 3 is exact, and float64 rounds the quotient once
    "HardSigmoid": lambda x, _: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
}
# hls4ml computes LeakyReLU (alpha * x), hard sigmoid (slope * x + shift) and clamps in fixed point, not from a table
COMPUTED = ("LeakyRelu", "Clip", "HardSigmoid")
# torch.onnx writes F.hardsigmoid as HardSigmoid(alpha = float32(1/6), beta = 0.5). hls4ml's hard_sigmoid computes
# slope * x + shift exactly in fixed point, with the slope in an unsigned fixed type of HARD_SIGMOID_SLOPE_BITS
# fraction bits: 1/6 rounded to them. The slope error times the largest input must stay below half the distance
# of any x / 6 + 1/2 from a rounding boundary of the output grid; each table is checked over all input codes.
HARD_SIGMOID_SLOPE_BITS = 32
HARD_SIGMOID_SLOPE = Fraction(round(Fraction(2**HARD_SIGMOID_SLOPE_BITS, 6)), 2**HARD_SIGMOID_SLOPE_BITS)
TORCH_HARD_SIGMOID = (float(np.float32(1.0 / 6.0)), 0.5)  # ONNX HardSigmoid's (alpha, beta) for F.hardsigmoid
# The clamps hls4ml 1.3.0 has a kernel for (nnet_activation.h): relu_max as relu1 and relu6, and hard_tanh,
# which computes 2 * clip(slope * x + shift, 0, 1) - 1 (slope 0.5 and shift 0.5: exact in its default types).
HLS4ML_CLAMPS: dict[tuple[float, float], dict[str, Any]] = {
    (0.0, 1.0): {"class_name": "Activation", "activation": "relu1"},
    (0.0, 6.0): {"class_name": "Activation", "activation": "relu6"},
    (-1.0, 1.0): {"class_name": "HardActivation", "activation": "hard_tanh", "slope": 0.5, "shift": 0.5},
}
# hls4ml 1.3.0 (nnet_activation.h, nnet_activation_stream.h): the table spans [-8, 8) for sigmoid and
# [-4, 4) for tanh, and an input x reads entry int(x * table_size / span) + table_size / 2, clamped.
HLS4ML_SPAN = {"Sigmoid": 16, "Tanh": 8}
MAX_TABLE_SIZE = 2**16
HLS4ML_CLAMP_NOTE = "it takes [0, 1], [0, 6] (nn.ReLU6) and [-1, 1] (nn.Hardtanh()); io_stream only [-1, 1]"
# hls4ml 1.3.0's io_stream has hard_tanh but no relu_max (relu1, relu6): its io_parallel kernel does not compile
HLS4ML_STREAM_CLAMPS = ((-1.0, 1.0),)


FLOAT32_SIGNIFICAND_BITS = 24


def exact_slope(slope: float, in_bits: int) -> float:
    """A LeakyReLU slope in [0, 1) rounded to 24 - ``in_bits`` fraction bits.

    A b-bit code times it then needs at most 23 bits, so torch's and ONNX Runtime's float32 product equals the
    exact product hls4ml computes in fixed point. With the float32 slope itself (0.1 is 13421773 / 2**27) the
    float32 product is rounded, and lands on a rounding tie of the output grid where the exact product does not
    (measured: 7 of 256 codes of an 8-bit LeakyReLU(0.1) differed). The slope is quantized like a weight.
    """
    if not 0.0 <= slope < 1.0:
        raise ValueError(f"a LeakyReLU slope in [0, 1) is supported, got {slope}")
    fraction = max(1, FLOAT32_SIGNIFICAND_BITS - in_bits)
    return float(round(slope * 2**fraction) / 2**fraction)


@dataclass(frozen=True)
class TableSpec:
    """One table activation as the QONNX graph holds it: Quant -> Sigmoid/Tanh/LeakyRelu/Clip -> Quant."""

    function: str  # ONNX op type
    in_bits: int
    in_exponent: int  # input scale is 2**in_exponent; the input is signed
    out_bits: int
    out_exponent: int
    out_signed: bool
    alpha: float = 0.0  # LeakyRelu's slope below zero or HardSigmoid's slope, the float32 value of the attribute
    low: float = 0.0  # Clip's bounds, float32 values of the graph's constants
    high: float = 0.0

    def input_codes(self) -> np.ndarray:
        return np.arange(-(2 ** (self.in_bits - 1)), 2 ** (self.in_bits - 1), dtype=np.int64)

    def inputs(self) -> np.ndarray:
        """Every value the input quantizer can produce, in float32 (exact: dyadic)."""
        return (self.input_codes() * 2.0**self.in_exponent).astype(np.float32)

    def quantize(self, y: np.ndarray) -> np.ndarray:
        """Output codes of function values: round half to even (np.round), saturate."""
        bits = self.out_bits
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if self.out_signed else (0, 2**bits - 1)
        return np.clip(np.round(np.asarray(y, dtype=np.float64) * 2.0**-self.out_exponent), lo, hi).astype(np.int64)

    def reference(self) -> np.ndarray:
        """edgekit's table: the output code for each input code, from float64."""
        return self.quantize(FUNCTIONS[self.function](self.inputs().astype(np.float64), self))

    def output_type(self) -> str:
        """The ap_fixed type of the output quantizer, rounding like brevitas (half to even) and saturating."""
        integer = self.out_bits + self.out_exponent
        return f"{'' if self.out_signed else 'u'}fixed<{self.out_bits},{integer},RND_CONV,SAT>"

    def alpha_type(self) -> str:
        """A signed ap_fixed type that holds the float32 slope exactly (the product alpha * x is then exact)."""
        numerator, denominator = (int(part) for part in abs(float(self.alpha)).as_integer_ratio())
        fraction = denominator.bit_length() - 1  # float32 values are dyadic: denominator = 2**fraction
        integer = max(1, numerator.bit_length() - fraction + 1)  # a sign bit and the bits above the point
        return f"fixed<{fraction + integer},{integer},TRN,WRAP>"


def _pot(scale: np.ndarray, what: str) -> int:
    value = float(np.max(scale))
    exponent = round(math.log2(value)) if value > 0 else 0
    if np.size(scale) != 1 or value <= 0 or 2.0**exponent != value:
        raise ValueError(f"{what}: a table activation needs one power-of-two scale, got {scale}")
    return exponent


def table_specs(model: Any) -> dict[str, TableSpec]:
    """Every Sigmoid/Tanh/LeakyRelu/Clip node of a QONNX graph (qonnx ModelWrapper), by node name."""
    specs: dict[str, TableSpec] = {}
    for node in model.graph.node:
        if node.op_type not in FUNCTIONS:
            continue
        producer = model.find_producer(node.input[0])
        consumers = model.find_consumers(node.output[0]) or []
        if producer is None or producer.op_type != "Quant" or len(consumers) != 1 or consumers[0].op_type != "Quant":
            raise ValueError(f"node {node.name} ({node.op_type}) is not between two Quant nodes")
        quant_in, quant_out = producer, consumers[0]
        attrs_in = {a.name: a.i for a in quant_in.attribute}
        attrs_out = {a.name: a.i for a in quant_out.attribute}
        for quant, attrs in ((quant_in, attrs_in), (quant_out, attrs_out)):
            if attrs.get("narrow", 0) or float(np.max(np.abs(model.get_initializer(quant.input[2])))) != 0.0:
                raise ValueError(f"{quant.name}: a table activation needs a full-range quantizer with zero point 0")
        if not attrs_in.get("signed", 1):
            raise ValueError(f"{quant_in.name}: a table activation's input quantizer must be signed")
        specs[node.name] = TableSpec(
            function=node.op_type,
            in_bits=int(model.get_initializer(quant_in.input[3])),
            in_exponent=_pot(model.get_initializer(quant_in.input[1]), quant_in.name),
            out_bits=int(model.get_initializer(quant_out.input[3])),
            out_exponent=_pot(model.get_initializer(quant_out.input[1]), quant_out.name),
            out_signed=bool(attrs_out.get("signed", 1)),
            alpha=_alpha(node),
            **clip_bounds(model, node),
        )
    return specs


def clip_bounds(model: Any, node: Any) -> dict[str, float]:
    """A Clip's bounds: its constant inputs (opset 11 and later) or attributes (opset 6), as float32 values."""
    if node.op_type != "Clip":
        return {}
    attributes = {a.name: float(a.f) for a in node.attribute}
    bounds = {}
    for index, key, attribute in ((1, "low", "min"), (2, "high", "max")):
        name = node.input[index] if len(node.input) > index else ""
        value = model.get_initializer(name) if name else None
        if value is None and attribute not in attributes:
            raise ValueError(f"node {node.name} (Clip) needs a constant {attribute} bound")
        bounds[key] = float(np.float32(np.asarray(value).item() if value is not None else attributes[attribute]))
    if not bounds["low"] < bounds["high"]:
        raise ValueError(f"node {node.name} (Clip): its bounds {bounds['low']}, {bounds['high']} are not increasing")
    return bounds


def _alpha(node: Any) -> float:
    if node.op_type == "HardSigmoid":
        attributes = {a.name: float(np.float32(a.f)) for a in node.attribute}
        slope, shift = attributes.get("alpha", 0.2), attributes.get("beta", 0.5)  # ONNX's defaults
        if (slope, shift) != TORCH_HARD_SIGMOID:
            raise ValueError(
                f"node {node.name}: a HardSigmoid of slope {slope:g} and shift {shift:g}: torch's (x / 6 + 1/2, "
                "F.hardsigmoid) is supported"
            )
        return slope
    if node.op_type != "LeakyRelu":
        return 0.0
    value = next((float(a.f) for a in node.attribute if a.name == "alpha"), 0.01)  # ONNX's default
    alpha = float(np.float32(value))
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"node {node.name}: a LeakyReLU slope in [0, 1) is supported, got {alpha}")
    return alpha


def mismatch(spec: TableSpec, codes: np.ndarray, what: str) -> str | None:
    """None when ``codes`` (one per input code) equal edgekit's table, else the first differing entries."""
    ref = spec.reference()
    bad = np.flatnonzero(codes != ref)
    if not len(bad):
        return None
    x = spec.inputs()
    shown = ", ".join(f"x={float(x[i]):g}: {int(codes[i])} != {int(ref[i])}" for i in bad[:3])
    return f"{what} differs from the float64 table of {spec.function} at {len(bad)} of {len(ref)} inputs ({shown})"


def hls4ml_layer_config(spec: TableSpec) -> dict[str, Any]:
    """hls4ml's layer config for one table activation: a table for sigmoid/tanh, exact types for LeakyReLU
    and clamps (whose bounds must be one of hls4ml's kernels)."""
    if spec.function == "Clip":
        if (spec.low, spec.high) not in HLS4ML_CLAMPS:
            raise ValueError(f"hls4ml has no kernel for a clamp to [{spec.low:g}, {spec.high:g}] ({HLS4ML_CLAMP_NOTE})")
        return {"Precision": {"result": spec.output_type()}}
    if spec.function == "HardSigmoid":  # the slope's type is set where the layer is read (edgekit's reader)
        return {"Precision": {"result": spec.output_type()}}
    if spec.function in COMPUTED:
        return {"Precision": {"param": spec.alpha_type(), "result": spec.output_type()}}
    return hls4ml_table_config(spec)


def hls4ml_table_config(spec: TableSpec) -> dict[str, Any]:
    """hls4ml layer config that makes entry int(x * size / span) + size / 2 hold f(x) for every input code.

    table_size = span * 2**-in_exponent gives one entry per input step, and a table type equal to the
    output type rounds the float value once (hls4ml's default table type truncates to 10 fraction bits
    and the result rounds again).
    """
    size = HLS4ML_SPAN[spec.function] * 2.0**-spec.in_exponent
    if size < 2 or size > MAX_TABLE_SIZE:
        raise ValueError(
            f"{spec.function} with input scale 2**{spec.in_exponent} needs a {size:g}-entry hls4ml table "
            f"(2..{MAX_TABLE_SIZE} supported)"
        )
    return {"TableSize": int(size), "Precision": {"table": spec.output_type(), "result": spec.output_type()}}


def _libm() -> Any:
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name, kind in (("expf", ctypes.c_float), ("tanhf", ctypes.c_float), ("tanh", ctypes.c_double)):
        getattr(lib, name).restype = kind
        getattr(lib, name).argtypes = [kind]
    return lib


def hls4ml_codes(spec: TableSpec) -> list[np.ndarray]:
    """What hls4ml's emulation outputs for each input code, emulating its table fill and index (g++, glibc).

    Sigmoid fills with float ``1.0 / (1 + std::exp(-x))`` (expf); tanh calls an unqualified ``tanh`` on a
    float, which is tanhf or the double tanh depending on the headers: both are returned, and a caller
    accepts the table only when every variant equals edgekit's. LeakyReLU is hls4ml's ``alpha * x`` in
    fixed point (alpha exact in its type), assigned to the output type: rounded half to even, saturated.
    """
    if spec.function == "LeakyRelu":
        return [_fixed_leaky_relu(spec)]
    if spec.function == "Clip":
        return [_fixed_clip(spec)]
    if spec.function == "HardSigmoid":
        return [_fixed_hard_sigmoid(spec)]
    size = hls4ml_table_config(spec)["TableSize"]
    span = HLS4ML_SPAN[spec.function]
    entries = np.arange(size)
    table_x = (span * (entries - size / 2.0) / size).astype(np.float32)
    lib = _libm()
    if spec.function == "Sigmoid":
        fills = [[np.float32(1.0 / np.float64(np.float32(1) + np.float32(lib.expf(-float(v))))) for v in table_x]]
    else:
        fills = [[lib.tanhf(float(v)) for v in table_x], [lib.tanh(float(v)) for v in table_x]]
    index = np.clip(spec.input_codes() * 2.0**spec.in_exponent * size / span + size // 2, 0, size - 1).astype(np.int64)
    return [spec.quantize(np.asarray(fill, dtype=np.float64))[index] for fill in fills]


def _fixed_leaky_relu(spec: TableSpec) -> np.ndarray:
    """LeakyReLU in integers: code * numerator at 2**(in_exponent - fraction), to the output grid."""
    numerator, denominator = (int(part) for part in float(spec.alpha).as_integer_ratio())
    fraction = denominator.bit_length() - 1
    bits = spec.out_bits
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if spec.out_signed else (0, 2**bits - 1)
    codes = []
    for code in spec.input_codes().tolist():
        value, shift = (code, spec.in_exponent) if code > 0 else (code * numerator, spec.in_exponent - fraction)
        shift -= spec.out_exponent  # value * 2**shift in output steps
        if shift >= 0:
            out = value << shift
        else:
            quotient, remainder = divmod(value, 1 << -shift)  # floor division: remainder >= 0
            half = 1 << (-shift - 1)
            out = quotient + (remainder > half or (remainder == half and quotient % 2 == 1))
        codes.append(min(max(out, lo), hi))
    return np.asarray(codes, dtype=np.int64)


def _fixed_hard_sigmoid(spec: TableSpec) -> np.ndarray:
    """hls4ml's hard_sigmoid in exact rationals: HARD_SIGMOID_SLOPE * x + 1/2 (exact in ap_fixed), clipped to
    [0, 1], then one rounding to the output grid (half to even, RND_CONV) and saturation."""
    bits = spec.out_bits
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if spec.out_signed else (0, 2**bits - 1)
    step_in, step_out = Fraction(2) ** spec.in_exponent, Fraction(2) ** spec.out_exponent
    codes = [
        min(max(round(min(max(HARD_SIGMOID_SLOPE * code * step_in + Fraction(1, 2), Fraction(0)), Fraction(1))
                      / step_out), lo), hi)
        for code in spec.input_codes().tolist()
    ]  # fmt: skip
    return np.asarray(codes, dtype=np.int64)


def _fixed_clip(spec: TableSpec) -> np.ndarray:
    """A clamp in exact rationals, as hls4ml's fixed point computes it: clip, then one rounding to the output
    grid (half to even, RND_CONV) and saturation."""
    bits = spec.out_bits
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if spec.out_signed else (0, 2**bits - 1)
    low, high = Fraction(spec.low), Fraction(spec.high)
    step_in, step_out = Fraction(2) ** spec.in_exponent, Fraction(2) ** spec.out_exponent
    codes = [
        min(max(round(min(max(code * step_in, low), high) / step_out), lo), hi)  # round(): half to even
        for code in spec.input_codes().tolist()
    ]
    return np.asarray(codes, dtype=np.int64)
