"""What a float model's graph holds, as the quantizer sees it (torch.fx; no brevitas here).

Used before any training to list the layers a precision spec can name and to
reject layers that cannot be quantized, with their module paths.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.experimental.optimization import fuse

from edgekit.errors import ConfigError

__all__ = ["GraphInfo", "analyze", "fold_batchnorm", "node_kind"]

WEIGHTED_MODULES: dict[type[nn.Module], str] = {nn.Linear: "linear", nn.Conv1d: "conv1d", nn.Conv2d: "conv2d"}
PASSTHROUGH_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.Flatten,
    nn.Identity,
    nn.Dropout,
)
RELU_FUNCTIONS = (F.relu, torch.relu)
ADD_FUNCTIONS = (operator.add, torch.add)
PASSTHROUGH_FUNCTIONS = (torch.flatten, F.max_pool1d, F.max_pool2d)
PASSTHROUGH_METHODS = ("view", "reshape", "flatten", "size")
SUPPORTED = (
    "Linear, Conv1d, Conv2d, ReLU (module or F.relu), BatchNorm after a Conv/Linear (folded), "
    "MaxPool1d/2d, Flatten, Identity, Dropout, view/reshape/flatten, residual add"
)


@dataclass(frozen=True)
class GraphInfo:
    layers: tuple[tuple[str, str], ...]  # (module path or node name, kind), in forward order


def fold_batchnorm(model: nn.Module) -> fx.GraphModule:
    """A traced copy of ``model`` in eval mode with every BatchNorm folded into its Conv/Linear."""
    try:
        fused = fuse(model.eval(), inplace=False)
    except Exception as err:  # symbolic tracing fails on data-dependent control flow
        raise ConfigError(
            f"the model cannot be traced for quantization: {str(err).splitlines()[0]}",
            hint="quantization needs a model torch.fx can trace: no Python control flow on tensor values",
        ) from err
    assert isinstance(fused, fx.GraphModule)
    return fused


def node_kind(node: fx.Node, modules: dict[str, nn.Module]) -> str | None:
    """The quantizer's view of one graph node; None for a node it cannot quantize."""
    if node.op in ("placeholder", "output", "get_attr"):
        return node.op
    if node.op == "call_module":
        module = modules[str(node.target)]
        for cls, kind in WEIGHTED_MODULES.items():
            if type(module) is cls:
                return kind
        if isinstance(module, nn.ReLU):
            return "relu"
        if isinstance(module, PASSTHROUGH_MODULES):
            return "passthrough"
        return None
    if node.op == "call_function":
        if node.target in RELU_FUNCTIONS:
            return "relu"
        if node.target in ADD_FUNCTIONS:
            return "add"
        if node.target in PASSTHROUGH_FUNCTIONS:
            return "passthrough"
        return None
    if node.op == "call_method":
        return "passthrough" if node.target in PASSTHROUGH_METHODS else None
    return None


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(modules[str(node.target)]).__name__})"
    target = getattr(node.target, "__name__", str(node.target))
    return f"{node.name} ({node.op} {target})"


def analyze(model: nn.Module) -> GraphInfo:
    """List the quantizable layers; ConfigError naming every layer that is not supported."""
    gm = fold_batchnorm(model)
    modules = dict(gm.named_modules())
    layers: list[tuple[str, str]] = []
    unsupported: list[str] = []
    for node in gm.graph.nodes:
        kind = node_kind(node, modules)
        if kind is None:
            if node.op == "call_module" and isinstance(modules[str(node.target)], nn.modules.batchnorm._BatchNorm):
                unsupported.append(f"{node.target} (BatchNorm that does not follow a Conv/Linear it can fold into)")
            else:
                unsupported.append(_describe(node, modules))
        elif kind == "placeholder":
            layers.append(("input", "input"))
        elif kind in ("linear", "conv1d", "conv2d", "relu", "add"):
            layers.append((str(node.target) if node.op == "call_module" else node.name, kind))
    if unsupported:
        raise ConfigError(
            f"the model has layer(s) edgekit cannot quantize: {'; '.join(unsupported)}",
            hint=f"supported: {SUPPORTED}",
        )
    if sum(1 for n in gm.graph.nodes if n.op == "placeholder") != 1:
        raise ConfigError("quantization needs a model with exactly one input tensor")
    return GraphInfo(tuple(layers))
