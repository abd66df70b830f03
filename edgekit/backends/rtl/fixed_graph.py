"""A fixed-point reading of edgekit's cleaned QONNX graph, replayed on any array type.

The RTL backend has no PyTorch importer to lean on: da4ml traces numpy-style code
written over its symbolic ``FixedVariableArray``. This module reads the cleaned
QONNX export (the same graph hls4ml compiles) into a short list of steps with
exact fixed-point semantics, and replays them with one set of array operations:

* on numpy float64 arrays, as an exact reference (every value is a dyadic
  rational far inside float64's 53-bit mantissa), and
* on da4ml's symbolic arrays, which records the logic to generate.

Only rounding differs between the two, so it is passed in as a :class:`Rounder`.
A step the RTL path cannot take raises ConfigError naming the ONNX node; nothing
is guessed. This module imports onnx and numpy, never da4ml.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgekit.core.errors import ConfigError, InputError

__all__ = [
    "FixedFormat",
    "FixedGraph",
    "NumpyRounder",
    "Rounder",
    "Step",
    "read_fixed_graph",
]

SUPPORTED = (
    "Quant, MatMul, Gemm, Add, Relu, Conv, MaxPool, AveragePool and GlobalAveragePool (power-of-two windows), "
    "Flatten, Reshape, Transpose, Identity"
)


SPATIAL_OPS = ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool")


@dataclass(frozen=True)
class FixedFormat:
    """What a brevitas/QONNX ``Quant`` node does to an activation, as a fixed-point type.

    Values are ``n * 2**-fraction_bits`` with ``n`` rounded half to even (torch.round)
    and saturated to the signed or unsigned range of ``bits`` (narrow: symmetric).
    """

    signed: bool
    bits: int
    fraction_bits: int
    narrow: bool = False

    @property
    def integer_bits(self) -> int:
        """Integer bits excluding the sign bit (da4ml's ``i`` of k, i, f)."""
        return self.bits - int(self.signed) - self.fraction_bits

    @property
    def low(self) -> float:
        if not self.signed:
            return 0.0
        n = -(2 ** (self.bits - 1)) + int(self.narrow)
        return float(n * 2.0**-self.fraction_bits)

    @property
    def high(self) -> float:
        n = 2 ** (self.bits - int(self.signed)) - 1
        return float(n * 2.0**-self.fraction_bits)

    def describe(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        return f"{kind} {self.bits}-bit, 2^-{self.fraction_bits} steps" + (", narrow" if self.narrow else "")


@dataclass(frozen=True)
class Step:
    """One operation of the graph on per-sample tensors (no batch axis)."""

    op: str  # quant, matmul, add_const, add, relu, conv, maxpool, avgpool, reshape, transpose
    node: str  # the ONNX node it came from
    inputs: tuple[str, ...]
    output: str
    fmt: FixedFormat | None = None
    const: np.ndarray | None = None  # weights (matmul, conv: O,KH,KW,I), bias, shape or permutation
    bias: np.ndarray | None = None
    kernel: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()  # begin..., end...
    channels_first: bool = False  # a plain ONNX Conv/MaxPool (channels, spatial...); computed channels last


@dataclass(frozen=True)
class FixedGraph:
    input_name: str
    output_name: str
    input_shape: tuple[int, ...]  # per sample, channels last
    output_shape: tuple[int, ...]
    input_format: FixedFormat
    steps: tuple[Step, ...]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """The model input as the hardware receives it: brevitas' input quantizer on the host."""
        quantized: np.ndarray = NumpyRounder().quantize(np.asarray(x, dtype=np.float64), self.input_format)
        return quantized

    def replay(self, x: Any, rounder: Rounder) -> Any:
        """Run the steps on one sample ``x`` that is already in ``input_format``."""
        return self.replay_all(x, rounder)[self.output_name]

    def replay_all(self, x: Any, rounder: Rounder) -> dict[str, Any]:
        """Every tensor the steps compute for one sample, by name."""
        values: dict[str, Any] = {self.input_name: x}
        for step in self.steps:
            values[step.output] = _apply(step, values, rounder)
        return values

    def traced_layers(self) -> list[tuple[str, str, str]]:
        """(node, kind, tensor) of the layers brevitas' forward hooks see, in order, for localization.

        ``input``: the quantized input; ``weighted``: a Linear/Conv output with its bias;
        ``relu``: the quantized output of a ReLU.
        """
        producer = {s.output: s for s in self.steps}
        layers = [("input", "input", self.input_name)]
        for step in self.steps:
            source = producer.get(step.inputs[0]) if step.inputs else None
            if step.op == "conv" or (step.op == "matmul" and step.bias is not None):
                layers.append((step.node, "weighted", step.output))
            elif step.op == "matmul":
                users = [s for s in self.steps if step.output in s.inputs]
                if not (len(users) == 1 and users[0].op == "add_const"):
                    layers.append((step.node, "weighted", step.output))
            elif step.op == "add_const" and source is not None and source.op == "matmul" and source.bias is None:
                layers.append((source.node, "weighted", step.output))
            elif step.op == "quant" and source is not None and source.op == "relu":
                layers.append((source.node, "relu", step.output))
        return layers

    def reference(self, x: np.ndarray) -> np.ndarray:
        """Exact outputs for a batch of float inputs (batch first, channels last), in float64."""
        q = self.quantize_input(x)
        rounder = NumpyRounder()
        return np.stack([np.asarray(self.replay(sample, rounder), dtype=np.float64).ravel() for sample in q])

    def layer_widths(self) -> dict[str, str]:
        return {s.node: s.fmt.describe() for s in self.steps if s.fmt is not None}


class Rounder(Protocol):
    def quantize(self, x: Any, fmt: FixedFormat) -> Any:
        """Round ``x`` half to even to ``fmt``'s step and saturate it to ``fmt``'s range."""


class NumpyRounder:
    def quantize(self, x: Any, fmt: FixedFormat) -> Any:
        scaled = np.round(np.asarray(x, dtype=np.float64) * 2.0**fmt.fraction_bits)  # half to even
        return np.clip(scaled * 2.0**-fmt.fraction_bits, fmt.low, fmt.high)


def _pot_exponent(scale: np.ndarray, node: str) -> int:
    values = np.unique(np.asarray(scale, dtype=np.float64).ravel())
    if values.size != 1:
        raise ConfigError(
            f"node {node}: the RTL path takes one scale per tensor, this one has {values.size}",
            hint="use per_tensor weight scaling for FPGA targets ([quant] weight_scaling)",
        )
    exponent = math.log2(float(values[0])) if values[0] > 0 else math.nan
    if not math.isfinite(exponent) or exponent != round(exponent):
        raise ConfigError(
            f"node {node}: scale {float(values[0])!r} is not a power of two; fixed-point logic cannot compute it",
            hint="keep [quant] scale_type = 'power_of_two' for FPGA targets",
        )
    return round(exponent)


def _quant_format(node: Any, consts: dict[str, np.ndarray]) -> FixedFormat:
    attrs = {a.name: _attr(a) for a in node.attribute}
    rounding = str(attrs.get("rounding_mode", "ROUND"))
    if rounding != "ROUND":
        raise ConfigError(
            f"node {node.name}: rounding mode {rounding} is not supported by the RTL path (only ROUND, half to even)"
        )
    if np.any(consts[node.input[2]] != 0):
        raise ConfigError(f"node {node.name}: a non-zero zero point is not supported by the RTL path")
    bits = float(np.asarray(consts[node.input[3]]).ravel()[0])
    if bits != round(bits) or not 1 <= bits <= 32:
        raise ConfigError(f"node {node.name}: {bits:g} bits is not an integer width the RTL path can build")
    exponent = _pot_exponent(consts[node.input[1]], node.name)
    return FixedFormat(bool(attrs.get("signed", 1)), int(bits), -exponent, bool(attrs.get("narrow", 0)))


def _attr(attribute: Any) -> Any:
    from onnx import helper

    value = helper.get_attribute_value(attribute)
    return value.decode() if isinstance(value, bytes) else value


def _quantize_const(values: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    return np.asarray(NumpyRounder().quantize(values, fmt), dtype=np.float64)


def read_fixed_graph(path: Path) -> FixedGraph:
    """Read a cleaned QONNX file into steps; ConfigError naming the node for anything the RTL path cannot take."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError and others for a corrupt file
        raise InputError(f"{path} is not a readable ONNX file: {err}", hint="re-run edgekit compile --force") from err
    graph = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).astype(np.float64)
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ConfigError("the RTL path takes a model with one input and one output")
    input_name, output_name = graph.input[0].name, graph.output[0].name
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    out_dims = [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim]
    steps: list[Step] = []
    input_format: FixedFormat | None = None
    renamed: dict[str, str] = {}  # the first Quant's output is the hardware input
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        ins = tuple(renamed.get(i, i) for i in node.input)
        name = node.name or f"{node.op_type}_{len(steps)}"
        attrs = {a.name: _attr(a) for a in node.attribute}
        if node.op_type == "Quant":
            fmt = _quant_format(node, consts)
            if ins[0] in consts:
                consts[node.output[0]] = _quantize_const(consts[ins[0]], fmt)
            elif ins[0] == input_name and input_format is None:
                input_format = fmt
                renamed[node.output[0]] = input_name
            else:
                steps.append(Step("quant", name, ins[:1], node.output[0], fmt=fmt))
            continue
        if input_format is None:
            raise ConfigError(
                f"node {name} ({node.op_type}) comes before the input quantizer",
                hint="the RTL path needs a quantized model input (edgekit's fixed family does this)",
            )
        step = _step(node.op_type, name, ins, node.output[0], attrs, consts)
        if node.op_type in SPATIAL_OPS and "channels_last" not in node.domain:
            step = _channels_first(step)
        steps.append(step)
    if input_format is None:
        raise ConfigError("the QONNX graph has no input quantizer; the RTL path needs a quantized input")
    return FixedGraph(input_name, output_name, tuple(dims[1:]), tuple(out_dims[1:]), input_format, tuple(steps))


def _step(op: str, name: str, ins: tuple[str, ...], out: str, attrs: dict[str, Any], consts: dict[str, Any]) -> Step:
    def const(i: int) -> np.ndarray:
        if ins[i] not in consts:
            raise ConfigError(f"node {name} ({op}): input {i} must be a constant for the RTL path")
        return np.asarray(consts[ins[i]])

    if op == "MatMul":
        return Step("matmul", name, ins[:1], out, const=const(1))
    if op == "Gemm":
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            raise ConfigError(f"node {name}: Gemm with alpha/beta/transA is not supported by the RTL path")
        weight = const(1).T if attrs.get("transB", 0) else const(1)
        return Step("matmul", name, ins[:1], out, const=weight, bias=const(2) if len(ins) > 2 else None)
    if op == "Add":
        if ins[1] in consts or ins[0] in consts:
            variable, constant = (ins[0], ins[1]) if ins[1] in consts else (ins[1], ins[0])
            return Step("add_const", name, (variable,), out, const=np.asarray(consts[constant]))
        return Step("add", name, tuple(ins[:2]), out)
    if op == "Relu":
        return Step("relu", name, ins[:1], out)
    if op == "Identity":
        return Step("reshape", name, ins[:1], out, const=None)
    if op == "Conv":
        if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1])):
            raise ConfigError(f"node {name}: grouped or dilated Conv is not supported by the RTL path")
        weight = const(1)  # channels last: (out, kernel..., in)
        bias = const(2) if len(ins) > 2 and ins[2] else None
        kernel = tuple(attrs.get("kernel_shape", weight.shape[1:-1]))
        pads = tuple(attrs.get("pads", [0] * 2 * len(kernel)))
        return Step("conv", name, ins[:1], out, const=weight, bias=bias, kernel=kernel,
                    strides=tuple(attrs.get("strides", [1] * len(kernel))), pads=pads)  # fmt: skip
    if op == "MaxPool":
        kernel = tuple(attrs["kernel_shape"])
        pads = tuple(attrs.get("pads", [0] * 2 * len(kernel)))
        if any(pads) or attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1])):
            raise ConfigError(
                f"node {name}: MaxPool with padding, ceil_mode or dilation is not supported by the RTL path"
            )
        return Step("maxpool", name, ins[:1], out, kernel=kernel, strides=tuple(attrs.get("strides", kernel)))
    if op == "AveragePool":
        kernel = tuple(attrs["kernel_shape"])
        pads = tuple(attrs.get("pads", [0] * 2 * len(kernel)))
        window = math.prod(kernel)
        if any(pads) or attrs.get("ceil_mode", 0) or window & (window - 1):
            raise ConfigError(
                f"node {name}: AveragePool with padding, ceil_mode or a window of {window} values (not a power of "
                "two, so the mean is not exact in fixed point) is not supported by the RTL path"
            )
        return Step("avgpool", name, ins[:1], out, kernel=kernel, strides=tuple(attrs.get("strides", kernel)))
    if op == "GlobalAveragePool":
        return Step("avgpool", name, ins[:1], out)  # the kernel is the whole input, known when it runs
    if op == "Flatten":
        if attrs.get("axis", 1) != 1:
            raise ConfigError(f"node {name}: Flatten only over every axis after the batch is supported")
        return Step("reshape", name, ins[:1], out, const=np.array([-1]))
    if op == "Reshape":
        shape = const(1).astype(np.int64)
        return Step("reshape", name, ins[:1], out, const=shape[1:] if len(shape) > 1 else np.array([-1]))
    if op == "Transpose":
        perm = list(attrs.get("perm", []))
        if not perm or perm[0] != 0:
            raise ConfigError(f"node {name}: a Transpose that moves the batch axis is not supported")
        return Step("transpose", name, ins[:1], out, const=np.array(perm[1:]) - 1)
    raise ConfigError(
        f"node {name}: ONNX operator {op} is not supported by the RTL path",
        hint=f"the da4ml RTL backend takes {SUPPORTED}; use an hls4ml FPGA target for this model",
    )


def _channels_first(step: Step) -> Step:
    """A plain ONNX Conv/MaxPool: the weights to (out, kernel..., in); inputs are moved at run time."""
    weight = step.const
    if step.op == "conv" and weight is not None:
        weight = np.moveaxis(weight, 1, -1)
        kernel = tuple(weight.shape[1:-1])
        return replace(step, const=weight, kernel=kernel, channels_first=True)
    return replace(step, channels_first=True)


def _spatial(fn: Callable[[Any, Step], Any]) -> Callable[[Any, Step], Any]:
    """Run a channels-last operation on a channels-first tensor by moving the channel axis around it."""

    def run(x: Any, step: Step) -> Any:
        if not step.channels_first:
            return fn(x, step)
        dims = x.ndim
        to_last = (*range(1, dims), 0)
        to_first = (dims - 1, *range(dims - 1))
        return fn(x.transpose(to_last), step).transpose(to_first)

    return run


@_spatial
def _conv(x: Any, step: Step) -> Any:
    """A channels-last convolution as one weight matrix applied to every in-bounds patch."""
    weight = step.const
    assert weight is not None
    dims = len(step.kernel)
    spatial = x.shape[:dims]
    begin, end = step.pads[:dims], step.pads[dims:]
    out_sizes = [(spatial[d] + begin[d] + end[d] - step.kernel[d]) // step.strides[d] + 1 for d in range(dims)]
    flat_weight = weight.reshape(weight.shape[0], -1, weight.shape[-1])  # (out, taps, in)
    results = []
    for position in np.ndindex(*out_sizes):
        taps, sources = [], []
        for t, offset in enumerate(np.ndindex(*step.kernel)):
            where = [position[d] * step.strides[d] - begin[d] + offset[d] for d in range(dims)]
            if all(0 <= where[d] < spatial[d] for d in range(dims)):
                taps.append(t)
                sources.append(tuple(where))
        patch = _concat([x[s] for s in sources])
        matrix = flat_weight[:, taps, :].transpose(1, 2, 0).reshape(-1, weight.shape[0])
        value = patch @ matrix
        results.append(value + step.bias if step.bias is not None else value)
    return _stack(results).reshape(*out_sizes, weight.shape[0])


@_spatial
def _maxpool(x: Any, step: Step) -> Any:
    dims = len(step.kernel)
    out_sizes = [(x.shape[d] - step.kernel[d]) // step.strides[d] + 1 for d in range(dims)]
    best = None
    for offset in np.ndindex(*step.kernel):
        index = tuple(
            slice(offset[d], offset[d] + step.strides[d] * (out_sizes[d] - 1) + 1, step.strides[d]) for d in range(dims)
        )
        window = x[index]
        best = window if best is None else np.maximum(best, window)
    return best


@_spatial
def _avgpool(x: Any, step: Step) -> Any:
    """Sum the window, then scale by 1/window: a power of two, so a shift in the logic and exact in numpy."""
    dims = x.ndim - 1
    kernel = step.kernel or tuple(x.shape[:dims])  # global: one window over every position
    strides = step.strides or kernel
    window = math.prod(kernel)
    if window & (window - 1):
        raise ConfigError(f"node {step.node}: a global average over {window} values (not a power of two)")
    out_sizes = [(x.shape[d] - kernel[d]) // strides[d] + 1 for d in range(dims)]
    total = None
    for offset in np.ndindex(*kernel):
        index = tuple(
            slice(offset[d], offset[d] + strides[d] * (out_sizes[d] - 1) + 1, strides[d]) for d in range(dims)
        )
        total = x[index] if total is None else total + x[index]
    assert total is not None
    return total * (1.0 / window)


def _matmul(x: Any, step: Step) -> Any:
    value = x.reshape(-1) @ step.const
    return value if step.bias is None else value + step.bias


def _concat(parts: list[Any]) -> Any:
    return np.concatenate([np.reshape(p, (-1,)) if isinstance(p, np.ndarray) else p.reshape(-1) for p in parts])


def _stack(parts: list[Any]) -> Any:
    return np.stack(parts)


_OPS: dict[str, Callable[[Step, list[Any], Rounder], Any]] = {
    "quant": lambda s, v, r: r.quantize(v[0], s.fmt),  # type: ignore[arg-type]
    "matmul": lambda s, v, r: _matmul(v[0], s),
    "add_const": lambda s, v, r: v[0] + np.broadcast_to(np.asarray(s.const), v[0].shape).copy(),
    "add": lambda s, v, r: v[0] + v[1],
    "relu": lambda s, v, r: np.maximum(v[0], 0.0) if isinstance(v[0], np.ndarray) else v[0].relu(),
    "conv": lambda s, v, r: _conv(v[0], s),
    "maxpool": lambda s, v, r: _maxpool(v[0], s),
    "avgpool": lambda s, v, r: _avgpool(v[0], s),
    "reshape": lambda s, v, r: v[0] if s.const is None else v[0].reshape(*[int(d) for d in s.const]),
    "transpose": lambda s, v, r: v[0].transpose(tuple(int(d) for d in s.const)),  # type: ignore[union-attr]
}


def _apply(step: Step, values: dict[str, Any], rounder: Rounder) -> Any:
    try:
        operands = [values[name] for name in step.inputs]
    except KeyError as err:
        raise ConfigError(f"node {step.node}: input {err.args[0]} is not computed by any earlier node") from err
    return _OPS[step.op](step, operands, rounder)
