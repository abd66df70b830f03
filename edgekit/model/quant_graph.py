"""What a float model's graph holds, as the quantizer sees it (torch.fx; no brevitas here).

Used before any training to list the layers a precision spec can name and to
reject layers that cannot be quantized, with their module paths. Each node's
kind comes from :mod:`edgekit.model.node_kinds`, an average pooling's
canonical form from :mod:`edgekit.model.avg_pooling`.
"""

from __future__ import annotations

import contextlib
import io
import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.experimental.optimization import fuse

from edgekit.core.errors import ConfigError
from edgekit.model.avg_pooling import avg_pool_of
from edgekit.model.node_kinds import (
    CLAMP_FUNCTIONS,
    CLAMP_METHODS,
    TABLE_KINDS,
    WEIGHTED_KINDS,
    clamp_bounds,
    is_softmax,
    layer_name,
    node_kind,
    softmax_head,
)

__all__ = [
    "GraphInfo",
    "analyze",
    "ancestors",
    "batch_free_reshape",
    "fold_batchnorm",
    "layers_up_to",
    "shapes",
]

SUPPORTED = (
    "Linear, Conv1d, Conv2d, ConvTranspose1d/2d, ReLU (module or F.relu), BatchNorm after a Conv/Linear (folded), "
    "Upsample (nearest, whole scale factors), "
    "MaxPool1d/2d, average pooling over a power-of-two window (AvgPool1d/2d, F.avg_pool1d/2d, AdaptiveAvgPool(1), "
    "x.mean over the spatial axes), sigmoid and tanh (modules, functions or methods), LeakyReLU (module or "
    "F.leaky_relu), hard sigmoid (nn.Hardsigmoid, F.hardsigmoid) and hard swish (x times it), "
    "a clamp to constant bounds (nn.Hardtanh, "
    "nn.ReLU6, torch.clamp, x.clamp), Flatten, Identity, "
    "Dropout, "
    "view/reshape/flatten (x.view(x.size(0), -1) too), residual add, torch.cat, a * b of two tensors"
)
SOFTMAX_REASON = (
    "no exact quantized softmax yet (its exponentials and division round differently on every target): only a "
    "softmax over the classes as forward()'s last step is taken, and left to the host (the artifacts output logits)"
)


@dataclass(frozen=True)
class GraphInfo:
    layers: tuple[tuple[str, str], ...]  # (module path or node name, kind), in forward order
    nonnegative: frozenset[str] = frozenset()  # average poolings of a ReLU's output, clamps with lower bound >= 0
    grouped: frozenset[str] = frozenset()  # convolutions with groups > 1 (depthwise among them)
    depthwise: frozenset[str] = frozenset()  # the grouped ones with groups == in_channels == out_channels
    tables: frozenset[str] = frozenset()  # sigmoid, tanh, LeakyReLU, hard sigmoid, clamps (table activations)
    upsamples: frozenset[str] = frozenset()  # nearest upsampling by whole factors
    softmax_head: str = ""  # "softmax" or "log_softmax": forward()'s last step, left to the host
    pools_1d: frozenset[str] = frozenset()  # 1-D max and average poolings
    concats: frozenset[str] = frozenset()  # torch.cat: the operands re-quantized by one quantizer
    concat_maps: frozenset[str] = frozenset()  # the torch.cat layers that join feature maps (rank > 2)
    clamps: tuple[tuple[str, float, float], ...] = ()  # (layer, lower bound, upper bound) of each clamp
    products: frozenset[str] = frozenset()  # element-wise a * b of two tensors
    broadcast_products: frozenset[str] = frozenset()  # the products whose operands differ in shape
    product_maps: frozenset[str] = frozenset()  # the products of feature maps (rank > 2)
    input_users: tuple[str, ...] = ()  # the layers the model's input feeds, when there is more than one


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
    _expand_hardswish(fused)
    return fused


def _expand_hardswish(gm: fx.GraphModule) -> None:
    """nn.Hardswish and F.hardswish as what they compute, x * hardsigmoid(x): a product and a table activation,
    each quantized like any other (NAME_gate is the hard sigmoid, NAME_product the product)."""
    modules = dict(gm.named_modules())
    changed = False
    for node in list(gm.graph.nodes):
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        if not (isinstance(module, nn.Hardswish) or (node.op == "call_function" and node.target is F.hardswish)):
            continue
        source = node.args[0] if node.args else node.kwargs["input"]
        with gm.graph.inserting_after(node):
            gate = gm.graph.create_node("call_function", F.hardsigmoid, (source,), name=f"{node.name}_gate")
        with gm.graph.inserting_after(gate):
            product = gm.graph.create_node("call_function", operator.mul, (source, gate), name=f"{node.name}_product")
        node.replace_all_uses_with(product)
        gm.graph.erase_node(node)
        changed = True
    if changed:
        gm.recompile()


def shapes(gm: fx.GraphModule, input_shape: tuple[int, ...], batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Every tensor node's shape (batch included) for an input of ``batch`` samples of ``input_shape``."""
    from torch.fx.passes.shape_prop import ShapeProp

    try:  # ShapeProp prints the traceback of a failing node itself: the error below says it once
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(torch.zeros((batch, *input_shape)))
    except Exception as err:  # the user's forward() fails: any exception its code raises
        cause = err.__cause__ or err
        failing = str(err).split("node=%", 1)[1].split(" ", 1)[0] if "node=%" in str(err) else ""
        at = "".join(f" at {layer_name(node)}" for node in gm.graph.nodes if node.name == failing)
        raise ConfigError(
            f"the model does not run on an input of shape {(batch, *input_shape)}{at}: "
            f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}",
            hint="check input_shape in the recipe against the model's first layer and the sizes in its forward()",
        ) from err
    found = {}
    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if meta is not None and hasattr(meta, "shape"):
            found[node.name] = tuple(int(d) for d in meta.shape)
    return found


def batch_free_reshape(
    node: fx.Node, one: dict[str, tuple[int, ...]], two: dict[str, tuple[int, ...]]
) -> tuple[int, ...]:
    """``x.view(x.size(0), ...)`` as ``x.view(-1, ...)`` with the per-sample sizes it computes.

    A reshape sized from the tensor's own shape (``x.size(0)``, ``x.shape[0]``) exports as shape
    arithmetic that ONNX tools fold into a batch of 1; the same reshape with the batch axis left free
    (-1) and every other size fixed computes the same per-sample values for any batch. ``one`` and
    ``two`` are the graph's shapes at batches 1 and 2: the batch must stay the leading axis.
    """
    at_one, at_two = one[node.name], two[node.name]
    if at_one[0] != 1 or at_two[0] != 2 or at_one[1:] != at_two[1:]:
        raise ConfigError(
            f"{node.name} ({node.target}) reshapes across the batch axis ({at_one} for one sample)",
            hint="keep the batch as the leading axis: x.view(x.size(0), -1) or torch.flatten(x, 1)",
        )
    return (-1, *at_one[1:])


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(modules[str(node.target)]).__name__})"
    target = getattr(node.target, "__name__", str(node.target))
    return f"{node.name} ({node.op} {target})"


def _is_clamp(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], nn.Hardtanh)
    return (node.op == "call_function" and node.target in CLAMP_FUNCTIONS) or (
        node.op == "call_method" and node.target in CLAMP_METHODS
    )


def _reads_recurrent_output(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op != "call_function" or node.target is not operator.getitem:
        return False
    while node.op == "call_function" and node.target is operator.getitem and isinstance(node.args[0], fx.Node):
        node = node.args[0]
    return node.op == "call_module" and isinstance(modules[str(node.target)], nn.RNNBase)


def _after_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node``'s value is a ReLU output, through layers that keep the sign (reshapes, max pooling)."""
    while True:
        kind = node_kind(node, modules)
        if kind == "relu":
            return True
        if kind not in ("passthrough", "upsample") or not node.args or not isinstance(node.args[0], fx.Node):
            return False
        node = node.args[0]


def ancestors(node: fx.Node) -> set[fx.Node]:
    """Every node whose value ``node``'s is computed from (not ``node`` itself)."""
    found: set[fx.Node] = set()
    pending = list(node.all_input_nodes)
    while pending:
        current = pending.pop()
        if current not in found:
            found.add(current)
            pending += current.all_input_nodes
    return found


def layers_up_to(model: nn.Module, layer: str) -> frozenset[str]:
    """The names of ``layer`` and of every node its value is computed from (what a cut there deploys)."""
    gm = fold_batchnorm(model)
    found = [node for node in gm.graph.nodes if layer_name(node) == layer]
    if not found:
        return frozenset()
    return frozenset({layer_name(node) for node in ancestors(found[0])} | {layer})


@dataclass
class _Survey:
    """What :func:`analyze` gathers node by node: GraphInfo's fields as they grow, and the layers it refuses."""

    layers: list[tuple[str, str]] = field(default_factory=list)
    nonnegative: set[str] = field(default_factory=set)
    grouped: set[str] = field(default_factory=set)
    depthwise: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)
    upsamples: set[str] = field(default_factory=set)
    pools_1d: set[str] = field(default_factory=set)
    concats: set[str] = field(default_factory=set)
    concat_maps: set[str] = field(default_factory=set)
    products: set[str] = field(default_factory=set)
    broadcast_products: set[str] = field(default_factory=set)
    product_maps: set[str] = field(default_factory=set)
    input_users: tuple[str, ...] = ()
    clamps: list[tuple[str, float, float]] = field(default_factory=list)
    host_head: str = ""
    unsupported: list[str] = field(default_factory=list)

    def info(self) -> GraphInfo:
        return GraphInfo(
            tuple(self.layers),
            frozenset(self.nonnegative),
            frozenset(self.grouped),
            frozenset(self.depthwise),
            frozenset(self.tables),
            frozenset(self.upsamples),
            self.host_head,
            frozenset(self.pools_1d),
            frozenset(self.concats),
            frozenset(self.concat_maps),
            tuple(self.clamps),
            frozenset(self.products),
            frozenset(self.broadcast_products),
            frozenset(self.product_maps),
            self.input_users,
        )


def _note_unsupported(
    node: fx.Node, modules: dict[str, nn.Module], sizes: dict[str, tuple[int, ...]], survey: _Survey
) -> None:
    """A node with no quantized form: why, in the survey's list; a softmax head is kept for the host instead."""
    if node.op == "call_module" and isinstance(modules[str(node.target)], nn.modules.batchnorm._BatchNorm):
        survey.unsupported.append(f"{node.target} (BatchNorm that does not follow a Conv/Linear it can fold into)")
    elif node.op == "call_module" and isinstance(modules[str(node.target)], nn.Upsample):
        survey.unsupported.append(
            f"{_describe(node, modules)}: only mode='nearest' by whole scale factors (it copies values; "
            "other resizes interpolate, and each target rounds that its own way)"
        )
    elif _reads_recurrent_output(node, modules):
        return  # out, (h, c) = self.lstm(x) and out[:, -1]: the LSTM itself is reported
    elif node.op == "call_module" and isinstance(modules[str(node.target)], nn.RNNBase):
        survey.unsupported.append(
            f"{_describe(node, modules)}: recurrent layers have no quantized form in edgekit yet "
            "(the float CPU and GPU targets take them)"
        )
    elif _is_clamp(node, modules):
        survey.unsupported.append(
            f"{_describe(node, modules)}: a clamp needs two constant bounds, lower < upper (one bound: "
            "use F.relu for a lower bound of 0)"
        )
    elif is_softmax(node, modules):
        head = softmax_head(node, modules, sizes)
        if head and not survey.host_head:
            survey.host_head = head
        else:
            survey.unsupported.append(f"{_describe(node, modules)}: {SOFTMAX_REASON}")
    else:
        survey.unsupported.append(_describe(node, modules))


def _note_input(node: fx.Node, modules: dict[str, nn.Module], survey: _Survey) -> None:
    survey.layers.append(("input", "input"))
    users = [user for user in node.users if node_kind(user, modules) != "shape"]  # x.size(0) is no layer
    if len(users) > 1:
        survey.input_users = tuple(layer_name(user) for user in users)


def _note_avg_pool(
    node: fx.Node, modules: dict[str, nn.Module], sizes: dict[str, tuple[int, ...]], survey: _Survey
) -> None:
    """An average pooling: checked against the size it sees (when known), nonnegative after a ReLU."""
    source = node.args[0]
    assert isinstance(source, fx.Node)
    if source.name in sizes:
        pool = avg_pool_of(node, modules, sizes[source.name][1:])
        if isinstance(pool, str):
            survey.unsupported.append(f"{_describe(node, modules)}: {pool}")
        elif pool.dims == 1:
            survey.pools_1d.add(layer_name(node))
    survey.layers.append((layer_name(node), "avgpool"))
    if _after_relu(source, modules):
        survey.nonnegative.add(layer_name(node))


def _note_table(node: fx.Node, kind: str, modules: dict[str, nn.Module], survey: _Survey) -> None:
    """A table activation; a clamp's bounds too (nonnegative from a lower bound of 0 up)."""
    survey.layers.append((layer_name(node), kind))
    survey.tables.add(layer_name(node))
    if kind == "clamp":
        bounds = clamp_bounds(node, modules)
        assert bounds is not None
        survey.clamps.append((layer_name(node), *bounds))
        if bounds[0] >= 0:
            survey.nonnegative.add(layer_name(node))


def _note_concat(node: fx.Node, sizes: dict[str, tuple[int, ...]], survey: _Survey) -> None:
    survey.layers.append((layer_name(node), "cat"))
    survey.concats.add(layer_name(node))
    if len(sizes.get(node.name, ())) > 2:
        survey.concat_maps.add(layer_name(node))


def _note_product(node: fx.Node, sizes: dict[str, tuple[int, ...]], survey: _Survey) -> None:
    """a * b: broadcast when the operands' shapes differ (where known), a map product at rank > 2."""
    survey.layers.append((layer_name(node), "mul"))
    survey.products.add(layer_name(node))
    operands = [sizes.get(a.name) for a in node.args[:2] if isinstance(a, fx.Node)]
    if operands[0] is not None and operands[0] != operands[1]:
        survey.broadcast_products.add(layer_name(node))
    if len(sizes.get(node.name, ())) > 2:
        survey.product_maps.add(layer_name(node))


def _note_weighted(node: fx.Node, kind: str, modules: dict[str, nn.Module], survey: _Survey) -> None:
    """A Conv/Linear, ReLU or residual add; a convolution's groups (depthwise among them)."""
    survey.layers.append((layer_name(node), kind))
    conv = modules.get(str(node.target))
    if kind != "linear" and getattr(conv, "groups", 1) > 1:
        survey.grouped.add(layer_name(node))
        if conv.groups == conv.in_channels == conv.out_channels:  # type: ignore[union-attr]
            survey.depthwise.add(layer_name(node))


def _note_node(
    node: fx.Node, modules: dict[str, nn.Module], sizes: dict[str, tuple[int, ...]], survey: _Survey
) -> None:
    """One node of the graph, in forward order, into ``survey`` by its kind."""
    kind = node_kind(node, modules)
    if kind is None:
        _note_unsupported(node, modules, sizes, survey)
    elif kind == "placeholder":
        _note_input(node, modules, survey)
    elif kind == "avgpool":
        _note_avg_pool(node, modules, sizes, survey)
    elif kind == "upsample":
        survey.upsamples.add(layer_name(node))
    elif kind == "passthrough" and (
        node.target is F.max_pool1d or isinstance(modules.get(str(node.target)), nn.MaxPool1d)
    ):
        survey.pools_1d.add(layer_name(node))
    elif kind in TABLE_KINDS:
        _note_table(node, kind, modules, survey)
    elif kind == "cat":
        _note_concat(node, sizes, survey)
    elif kind == "mul":
        _note_product(node, sizes, survey)
    elif kind in (*WEIGHTED_KINDS, "relu", "add"):
        _note_weighted(node, kind, modules, survey)


def analyze(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> GraphInfo:
    """List the quantizable layers; ConfigError naming every layer that is not supported.

    With ``input_shape`` (per sample), average poolings are checked against the sizes they see.
    """
    gm = fold_batchnorm(model)
    modules = dict(gm.named_modules())
    sizes = shapes(gm, input_shape) if input_shape is not None else {}
    survey = _Survey()
    for node in gm.graph.nodes:
        _note_node(node, modules, sizes, survey)
    if survey.unsupported:
        raise ConfigError(
            f"the model has layer(s) edgekit cannot quantize: {'; '.join(survey.unsupported)}",
            hint=f"supported: {SUPPORTED}",
        )
    if sum(1 for n in gm.graph.nodes if n.op == "placeholder") != 1:
        raise ConfigError("quantization needs a model with exactly one input tensor")
    return survey.info()
