"""What a float model's graph holds, as the quantizer sees it (torch.fx; no brevitas here).

Used before any training to list the layers a precision spec can name and to
reject layers that cannot be quantized, with their module paths.
"""

from __future__ import annotations

import contextlib
import io
import math
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.experimental.optimization import fuse

from edgekit.core.errors import ConfigError

__all__ = [
    "AvgPool",
    "GraphInfo",
    "analyze",
    "ancestors",
    "avg_pool_of",
    "batch_free_reshape",
    "fold_batchnorm",
    "is_softmax",
    "layer_name",
    "layers_up_to",
    "negative_slope",
    "node_kind",
    "shapes",
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
class AvgPool:
    """An average pooling in one canonical form: a window (kernel, stride) or global (every position)."""

    dims: int  # spatial axes: 1 or 2
    kernel: tuple[int, ...]  # a global average: the whole input
    stride: tuple[int, ...]
    window: int  # how many values each output averages
    keep_dims: bool = True  # False: a mean that drops the spatial axes, (N, C, H, W) -> (N, C)

    def module(self) -> nn.Module:
        """The plain torch layer that computes it: a global average is one window over the whole input,
        so every target sees one operator (ONNX AveragePool) whatever form the user wrote."""
        pool: nn.Module
        if self.dims == 1:
            pool = nn.AvgPool1d(self.kernel[0], self.stride[0])
        else:
            pool = nn.AvgPool2d((self.kernel[0], self.kernel[1]), (self.stride[0], self.stride[1]))
        return pool if self.keep_dims else nn.Sequential(pool, nn.Flatten(1))


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


def _pair(value: object, dims: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * dims  # type: ignore[call-overload]


def _arguments(node: fx.Node, names: tuple[str, ...], defaults: dict[str, object]) -> dict[str, object]:
    """A call's arguments by name (torch's functional forms are builtins without a signature to bind)."""
    bound = dict(defaults)
    bound.update(zip(names, node.args[1:], strict=False))
    bound.update(node.kwargs)
    return bound


def avg_pool_of(node: fx.Node, modules: dict[str, nn.Module], input_shape: tuple[int, ...]) -> AvgPool | str:
    """The canonical form of an average-pooling node, or why it has no exact quantized form.

    ``input_shape`` is the node's input without the batch axis: (channels, spatial...). The mean of
    integers over a power-of-two window is exact in fixed point (a shift); over any other count it is
    not, and hls4ml, ONNX Runtime and the RTL path would each round it their own way.
    """
    dims = len(input_shape) - 1
    if dims not in (1, 2):
        return f"average pooling of a {len(input_shape) + 1}-D tensor (1-D and 2-D pooling only)"
    spatial = input_shape[1:]
    keep_dims = True
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: object = 0
    ceil_mode: object = False
    divisor: object = None
    output_size: object = None
    if node.op == "call_module":
        module = modules[str(node.target)]
        if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            output_size = module.output_size
        else:
            assert isinstance(module, (nn.AvgPool1d, nn.AvgPool2d))
            kernel, stride = _pair(module.kernel_size, dims), _pair(module.stride or module.kernel_size, dims)
            padding, ceil_mode = module.padding, module.ceil_mode
            divisor = getattr(module, "divisor_override", None)
    elif node.target in (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d):
        output_size = _arguments(node, ("output_size",), {})["output_size"]
    elif node.target in (F.avg_pool1d, F.avg_pool2d):
        names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
        args = _arguments(node, names, {"stride": None, "padding": 0, "ceil_mode": False, "divisor_override": None})
        kernel = _pair(args["kernel_size"], dims)
        stride = _pair(args["stride"], dims) if args["stride"] else kernel
        padding, ceil_mode, divisor = args["padding"], args["ceil_mode"], args["divisor_override"]
    else:  # torch.mean / x.mean
        args = _arguments(node, ("dim", "keepdim"), {"dim": None, "keepdim": False})
        axes = args["dim"]
        axes = tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)
        rank = len(input_shape) + 1
        if None in axes or sorted(int(a) % rank for a in axes) != list(range(2, rank)):
            return (
                f"a mean over axes {args['dim']}: only the mean over every spatial axis (a global average) is pooling"
            )
        keep_dims = bool(args["keepdim"])
        output_size = 1
    if output_size is not None and any(s not in (1, None) for s in _pair(output_size, dims)):
        return f"adaptive average pooling to {output_size}: only output size 1 (a global average) has a fixed window"
    if any(_pair(padding, dims)):
        return "average pooling with padding (padded zeros count differently on each target): use padding 0"
    if ceil_mode:
        return "average pooling with ceil_mode (partial windows at the edge): use ceil_mode=False"
    if divisor is not None:
        return "average pooling with divisor_override"
    if not kernel:  # global
        kernel = stride = tuple(spatial)
    window = math.prod(kernel)
    if window & (window - 1):
        shown = "x".join(str(k) for k in kernel)
        return (
            f"average pooling over {shown} = {window} values: {window} is not a power of two, so the mean has no "
            "exact fixed-point value (each target would round it its own way); use a power-of-two window "
            "(2x2, 4x4, a global average over 4x4 or 8x8)"
        )
    return AvgPool(dims, kernel, stride, window, keep_dims)


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


def analyze(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> GraphInfo:
    """List the quantizable layers; ConfigError naming every layer that is not supported.

    With ``input_shape`` (per sample), average poolings are checked against the sizes they see.
    """
    gm = fold_batchnorm(model)
    modules = dict(gm.named_modules())
    sizes = shapes(gm, input_shape) if input_shape is not None else {}
    layers: list[tuple[str, str]] = []
    nonnegative: set[str] = set()
    grouped: set[str] = set()
    depthwise: set[str] = set()
    tables: set[str] = set()
    upsamples: set[str] = set()
    pools_1d: set[str] = set()
    concats: set[str] = set()
    concat_maps: set[str] = set()
    products: set[str] = set()
    broadcast_products: set[str] = set()
    product_maps: set[str] = set()
    input_users: tuple[str, ...] = ()
    clamps: list[tuple[str, float, float]] = []
    host_head = ""
    unsupported: list[str] = []
    for node in gm.graph.nodes:
        kind = node_kind(node, modules)
        if kind is None:
            if node.op == "call_module" and isinstance(modules[str(node.target)], nn.modules.batchnorm._BatchNorm):
                unsupported.append(f"{node.target} (BatchNorm that does not follow a Conv/Linear it can fold into)")
            elif node.op == "call_module" and isinstance(modules[str(node.target)], nn.Upsample):
                unsupported.append(
                    f"{_describe(node, modules)}: only mode='nearest' by whole scale factors (it copies values; "
                    "other resizes interpolate, and each target rounds that its own way)"
                )
            elif _reads_recurrent_output(node, modules):
                continue  # out, (h, c) = self.lstm(x) and out[:, -1]: the LSTM itself is reported
            elif node.op == "call_module" and isinstance(modules[str(node.target)], nn.RNNBase):
                unsupported.append(
                    f"{_describe(node, modules)}: recurrent layers have no quantized form in edgekit yet "
                    "(the float CPU and GPU targets take them)"
                )
            elif _is_clamp(node, modules):
                unsupported.append(
                    f"{_describe(node, modules)}: a clamp needs two constant bounds, lower < upper (one bound: "
                    "use F.relu for a lower bound of 0)"
                )
            elif is_softmax(node, modules):
                head = softmax_head(node, modules, sizes)
                if head and not host_head:
                    host_head = head
                else:
                    unsupported.append(f"{_describe(node, modules)}: {SOFTMAX_REASON}")
            else:
                unsupported.append(_describe(node, modules))
        elif kind == "placeholder":
            layers.append(("input", "input"))
            users = [user for user in node.users if node_kind(user, modules) != "shape"]  # x.size(0) is no layer
            if len(users) > 1:
                input_users = tuple(layer_name(user) for user in users)
        elif kind == "avgpool":
            source = node.args[0]
            assert isinstance(source, fx.Node)
            if source.name in sizes:
                pool = avg_pool_of(node, modules, sizes[source.name][1:])
                if isinstance(pool, str):
                    unsupported.append(f"{_describe(node, modules)}: {pool}")
                elif pool.dims == 1:
                    pools_1d.add(layer_name(node))
            layers.append((layer_name(node), kind))
            if _after_relu(source, modules):
                nonnegative.add(layer_name(node))
        elif kind == "upsample":
            upsamples.add(layer_name(node))
        elif kind == "passthrough" and (
            node.target is F.max_pool1d or isinstance(modules.get(str(node.target)), nn.MaxPool1d)
        ):
            pools_1d.add(layer_name(node))
        elif kind in TABLE_KINDS:
            layers.append((layer_name(node), kind))
            tables.add(layer_name(node))
            if kind == "clamp":
                bounds = clamp_bounds(node, modules)
                assert bounds is not None
                clamps.append((layer_name(node), *bounds))
                if bounds[0] >= 0:
                    nonnegative.add(layer_name(node))
        elif kind == "cat":
            layers.append((layer_name(node), kind))
            concats.add(layer_name(node))
            if len(sizes.get(node.name, ())) > 2:
                concat_maps.add(layer_name(node))
        elif kind == "mul":
            layers.append((layer_name(node), kind))
            products.add(layer_name(node))
            operands = [sizes.get(a.name) for a in node.args[:2] if isinstance(a, fx.Node)]
            if operands[0] is not None and operands[0] != operands[1]:
                broadcast_products.add(layer_name(node))
            if len(sizes.get(node.name, ())) > 2:
                product_maps.add(layer_name(node))
        elif kind in (*WEIGHTED_KINDS, "relu", "add"):
            layers.append((layer_name(node), kind))
            conv = modules.get(str(node.target))
            if kind != "linear" and getattr(conv, "groups", 1) > 1:
                grouped.add(layer_name(node))
                if conv.groups == conv.in_channels == conv.out_channels:  # type: ignore[union-attr]
                    depthwise.add(layer_name(node))
    if unsupported:
        raise ConfigError(
            f"the model has layer(s) edgekit cannot quantize: {'; '.join(unsupported)}",
            hint=f"supported: {SUPPORTED}",
        )
    if sum(1 for n in gm.graph.nodes if n.op == "placeholder") != 1:
        raise ConfigError("quantization needs a model with exactly one input tensor")
    return GraphInfo(
        tuple(layers),
        frozenset(nonnegative),
        frozenset(grouped),
        frozenset(depthwise),
        frozenset(tables),
        frozenset(upsamples),
        host_head,
        frozenset(pools_1d),
        frozenset(concats),
        frozenset(concat_maps),
        tuple(clamps),
        frozenset(products),
        frozenset(broadcast_products),
        frozenset(product_maps),
        input_users,
    )
