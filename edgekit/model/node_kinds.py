"""The quantizer's view of one traced node (torch.fx; no brevitas here): the operators edgekit quantizes,
grouped by kind, and what a node of each kind carries (a clamp's bounds, a LeakyReLU's slope, a softmax head).

:mod:`edgekit.model.quant_graph` walks a whole graph with these; :mod:`edgekit.model.brevitas_model` swaps each
node for its quantized form by the kind named here.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = [
    "CLAMP_FUNCTIONS",
    "CLAMP_METHODS",
    "RESHAPES",
    "TABLE_KINDS",
    "WEIGHTED_KINDS",
    "clamp_bounds",
    "is_softmax",
    "layer_name",
    "negative_slope",
    "node_kind",
    "softmax_head",
]

WEIGHTED_MODULES: dict[type[nn.Module], str] = {
    nn.Linear: "linear",
    nn.Conv1d: "conv1d",
    nn.Conv2d: "conv2d",
    nn.ConvTranspose1d: "conv_transpose1d",
    nn.ConvTranspose2d: "conv_transpose2d",
}
WEIGHTED_KINDS = tuple(WEIGHTED_MODULES.values())
PASSTHROUGH_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.Flatten,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
)
AVG_POOL_MODULES = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
RELU_FUNCTIONS = (F.relu, torch.relu)
ADD_FUNCTIONS = (operator.add, torch.add)
# a * b of two tensors: each operand re-quantized, the product of codes exact, re-quantized once
MUL_FUNCTIONS = (operator.mul, torch.mul)
CAT_FUNCTIONS = (torch.cat, torch.concat, torch.concatenate)
AVG_POOL_FUNCTIONS = (F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, torch.mean)
PASSTHROUGH_FUNCTIONS = (torch.flatten, torch.reshape, F.max_pool1d, F.max_pool2d, F.dropout)
PASSTHROUGH_METHODS = ("view", "reshape", "flatten", "contiguous")
RESHAPES = ("view", "reshape", torch.reshape)
# Sigmoid and tanh become table activations (edgekit.model.activation_table), checked against every target's table.
TABLE_MODULES: dict[type[nn.Module], str] = {
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.LeakyReLU: "leaky_relu",
    nn.Hardsigmoid: "hard_sigmoid",
}
TABLE_FUNCTIONS = {
    torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
    torch.tanh: "tanh",
    F.tanh: "tanh",
    F.leaky_relu: "leaky_relu",
    F.hardsigmoid: "hard_sigmoid",
}
TABLE_KINDS = ("sigmoid", "tanh", "leaky_relu", "hard_sigmoid", "clamp")
TABLE_METHODS = {"sigmoid": "sigmoid", "tanh": "tanh"}
# A clamp to constant bounds (nn.Hardtanh and nn.ReLU6, F.hardtanh, F.relu6, torch.clamp, x.clamp) is a table
# activation too: the input re-quantized, clipped, and quantized again.
CLAMP_FUNCTIONS = (F.hardtanh, F.relu6, torch.clamp, torch.clip)
CLAMP_METHODS = ("clamp", "clip")
SOFTMAX_FUNCTIONS = (F.softmax, torch.softmax, F.log_softmax, torch.log_softmax)


def node_kind(node: fx.Node, modules: dict[str, nn.Module]) -> str | None:
    """The quantizer's view of one graph node; None for a node it cannot quantize.

    ``shape`` nodes compute sizes, not tensors (``x.size(0)``, ``x.shape[0]``): they only feed reshapes.
    """
    if node.op in ("placeholder", "output", "get_attr"):
        return node.op
    if node.op == "call_module":
        module = modules[str(node.target)]
        for cls, kind in WEIGHTED_MODULES.items():
            if type(module) is cls:
                return kind
        if isinstance(module, nn.ReLU):
            return "relu"
        if isinstance(module, AVG_POOL_MODULES):
            return "avgpool"
        if type(module) in TABLE_MODULES:
            return TABLE_MODULES[type(module)]
        if isinstance(module, nn.Hardtanh):  # nn.ReLU6 is one
            return "clamp" if clamp_bounds(node, modules) else None
        if isinstance(module, nn.Upsample):
            return "upsample" if _exact_upsample(module) else None
        if isinstance(module, PASSTHROUGH_MODULES):
            return "passthrough"
        return None
    if node.op == "call_function":
        if node.target in RELU_FUNCTIONS:
            return "relu"
        if node.target in ADD_FUNCTIONS:
            return "add"
        if node.target in MUL_FUNCTIONS:
            operands = node.args[:2]
            return "mul" if len(operands) == 2 and all(isinstance(a, fx.Node) for a in operands) else None
        if node.target in CAT_FUNCTIONS:
            return "cat"
        if node.target in AVG_POOL_FUNCTIONS:
            return "avgpool"
        if node.target in TABLE_FUNCTIONS:
            return TABLE_FUNCTIONS[node.target]
        if node.target in CLAMP_FUNCTIONS:
            return "clamp" if clamp_bounds(node, modules) else None
        if node.target in PASSTHROUGH_FUNCTIONS:
            return "passthrough"
        if node.target is getattr and node.args[1] == "shape":
            return "shape"
        if node.target is operator.getitem and isinstance(node.args[0], fx.Node):
            return "shape" if node_kind(node.args[0], modules) == "shape" else None
        return None
    if node.op == "call_method":
        if node.target == "size":
            return "shape"
        if node.target == "mean":
            return "avgpool"
        if node.target in TABLE_METHODS:
            return TABLE_METHODS[str(node.target)]
        if node.target in CLAMP_METHODS:
            return "clamp" if clamp_bounds(node, modules) else None
        return "passthrough" if node.target in PASSTHROUGH_METHODS else None
    return None


def negative_slope(node: fx.Node, modules: dict[str, nn.Module]) -> float:
    """A LeakyReLU's slope below zero: the module's, or F.leaky_relu's argument (0.01 by default)."""
    if node.op == "call_module":
        module = modules[str(node.target)]
        assert isinstance(module, nn.LeakyReLU)
        return float(module.negative_slope)
    value = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
    return float(value)  # type: ignore[arg-type]


def clamp_bounds(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[float, float] | None:
    """A clamp's (lower, upper) bounds, when both are constant numbers with lower < upper; else None.

    nn.Hardtanh(min_val, max_val) and nn.ReLU6, F.hardtanh(x, -1, 1) and F.relu6, torch.clamp(x, lo, hi),
    torch.clip and x.clamp(lo, hi) (positional or keyword).
    """
    low: object
    high: object
    if node.op == "call_module":
        module = modules[str(node.target)]
        assert isinstance(module, nn.Hardtanh)
        low, high = module.min_val, module.max_val
    elif node.op == "call_function" and node.target is F.relu6:
        low, high = 0.0, 6.0
    elif node.op == "call_function" and node.target is F.hardtanh:
        values = [*node.args[1:3]]
        defaults = {"min_val": -1.0, "max_val": 1.0}
        names = ("min_val", "max_val")
        low, high = (values[i] if i < len(values) else node.kwargs.get(n, defaults[n]) for i, n in enumerate(names))
    else:  # torch.clamp, torch.clip, x.clamp, x.clip: (input, min, max)
        values = [*node.args[1:3]]
        low, high = (values[i] if i < len(values) else node.kwargs.get(n) for i, n in enumerate(("min", "max")))
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        return None
    assert isinstance(low, (int, float)) and isinstance(high, (int, float))
    if not float(low) < float(high):
        return None
    return float(low), float(high)


def _exact_upsample(module: nn.Upsample) -> bool:
    """Nearest-neighbour upsampling by whole factors only copies values: the quantized tensor passes through it."""
    factor = module.scale_factor
    factors = factor if isinstance(factor, tuple) else (factor,)
    whole = all(f is not None and float(f).is_integer() for f in factors)
    return module.mode == "nearest" and module.size is None and whole


def softmax_head(node: fx.Node, modules: dict[str, nn.Module], sizes: dict[str, tuple[int, ...]]) -> str:
    """ "softmax" or "log_softmax" when ``node`` is forward()'s last step over the class axis of (batch, classes)
    outputs, else "" (a softmax inside the model, or over another axis, has to be computed by the targets)."""
    users = list(node.users)
    if len(users) != 1 or users[0].op != "output" or users[0].args[0] is not node:
        return ""
    if node.op == "call_module":
        module = modules[str(node.target)]
        dim: object = getattr(module, "dim", None)
        name = "log_softmax" if isinstance(module, nn.LogSoftmax) else "softmax"
    else:
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        target = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
        name = "log_softmax" if "log_softmax" in str(target) else "softmax"
    rank = len(sizes[node.name]) if node.name in sizes else 2
    return name if rank == 2 and dim in (1, -1) else ""


def is_softmax(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], (nn.Softmax, nn.LogSoftmax))
    if node.op == "call_method":
        return node.target in ("softmax", "log_softmax")
    return node.op == "call_function" and node.target in SOFTMAX_FUNCTIONS


def layer_name(node: fx.Node) -> str:
    """The name a precision spec uses for a node: its module path, or the traced node's name."""
    return str(node.target) if node.op == "call_module" else node.name
