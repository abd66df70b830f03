"""Build the brevitas twin of a float model from a quantization plan: the only place brevitas layers are made.

The float model is traced (torch.fx), BatchNorm is folded, then every node is
swapped for its quantized form, float weights copied in: Linear/Conv ->
QuantLinear/QuantConv, ReLU -> QuantReLU, the input gets a QuantIdentity, and a
residual add re-quantizes both operands with one shared quantizer so both sides
have the same scale (exact integer addition on every backend), and sigmoid/tanh
become table activations: a signed input quantizer, the function, an output
quantizer (see :mod:`edgekit.model.activation_table`).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import fx, nn
from torch.nn import functional as F

from edgekit.core.artifacts import FloatModel, QuantizedModel
from edgekit.core.errors import ConfigError
from edgekit.core.precision import WEIGHTED, LayerPrecision, QuantPlan
from edgekit.model.activation_table import exact_slope
from edgekit.model.avg_pooling import AvgPool, avg_pool_of
from edgekit.model.node_kinds import (
    RESHAPES,
    TABLE_KINDS,
    clamp_bounds,
    is_softmax,
    layer_name,
    negative_slope,
    node_kind,
    softmax_head,
)
from edgekit.model.quant_graph import ancestors, batch_free_reshape, fold_batchnorm, shapes
from edgekit.model.torch_model import load_float_model

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import brevitas.nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8ActPerTensorFloat,
        Int8WeightPerChannelFloat,
        Int8WeightPerTensorFixedPoint,
        Int8WeightPerTensorFloat,
        Uint8ActPerTensorFixedPoint,
        Uint8ActPerTensorFloat,
    )
    from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint
    from brevitas.quant.scaled_int import Int16Bias, Int32Bias
    from brevitas.quant_tensor import QuantTensor

__all__ = ["build_quant_model", "load_quant_model", "quantizer_of", "split_quant_model"]


def _act_kwargs(plan: QuantPlan, layer: LayerPrecision, prefix: str = "") -> dict[str, Any]:
    pot = plan.scale_type == "power_of_two"
    if layer.activation_signed:
        quant = Int8ActPerTensorFixedPoint if pot else Int8ActPerTensorFloat
    else:
        quant = Uint8ActPerTensorFixedPoint if pot else Uint8ActPerTensorFloat
    return {
        f"{prefix}act_quant": quant,
        f"{prefix}bit_width": layer.activation_bits,
        "return_quant_tensor": True,
    }


def _weight_kwargs(plan: QuantPlan, layer: LayerPrecision) -> dict[str, Any]:
    pot = plan.scale_type == "power_of_two"
    per_channel = layer.weight_scaling == "per_channel"
    quant = {
        (True, False): Int8WeightPerTensorFixedPoint,
        (True, True): Int8WeightPerChannelFixedPoint,
        (False, False): Int8WeightPerTensorFloat,
        (False, True): Int8WeightPerChannelFloat,
    }[(pot, per_channel)]
    return {
        "weight_quant": quant,
        "weight_bit_width": layer.weight_bits,
        "weight_narrow_range": plan.weight_overflow == "saturate_symmetric",
        "bias_quant": Int16Bias if (layer.bias_bits or 32) <= 16 else Int32Bias,
        "bias_bit_width": layer.bias_bits,
        "return_quant_tensor": True,
    }


_Conv = nn.Conv1d | nn.Conv2d | nn.ConvTranspose1d | nn.ConvTranspose2d
_QUANT_CONV: dict[type[nn.Module], Callable[..., _Conv]] = {
    nn.Conv1d: qnn.QuantConv1d,
    nn.Conv2d: qnn.QuantConv2d,
    nn.ConvTranspose1d: qnn.QuantConvTranspose1d,
    nn.ConvTranspose2d: qnn.QuantConvTranspose2d,
}


def _weighted(module: nn.Module, plan: QuantPlan, layer: LayerPrecision) -> nn.Module:
    assert isinstance(module, (nn.Linear, *_QUANT_CONV))
    kwargs = _weight_kwargs(plan, layer)
    bias = module.bias is not None
    if not bias:
        kwargs.pop("bias_quant"), kwargs.pop("bias_bit_width")
    quant: nn.Linear | _Conv
    if isinstance(module, nn.Linear):
        quant = qnn.QuantLinear(module.in_features, module.out_features, bias=bias, **kwargs)
    else:
        assert isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d))
        if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
            kwargs["output_padding"] = module.output_padding
        quant = _QUANT_CONV[type(module)](
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
            bias=bias,
            **kwargs,
        )
    with torch.no_grad():
        quant.weight.copy_(module.weight)
        if quant.bias is not None and isinstance(module.bias, torch.Tensor):
            quant.bias.copy_(module.bias)
    return quant


class ResidualAdd(nn.Module):
    """a + b with both operands re-quantized by one quantizer, so their scales match."""

    def __init__(self, **act_kwargs: Any) -> None:
        super().__init__()
        self.quant = qnn.QuantIdentity(**act_kwargs)

    def forward(self, a: Any, b: Any) -> Any:
        return self.quant(a) + self.quant(b)


class ElementwiseMul(nn.Module):
    """a * b of two tensors: each operand re-quantized by its own quantizer (power-of-two scales), so the product
    of their codes is exact in float32 (up to 12-bit operands), and the product re-quantized once."""

    def __init__(self, **act_kwargs: Any) -> None:
        super().__init__()
        self.quant_a = qnn.QuantIdentity(**act_kwargs)
        self.quant_b = qnn.QuantIdentity(**act_kwargs)
        self.output_quant = qnn.QuantIdentity(**act_kwargs)

    def forward(self, a: Any, b: Any) -> Any:
        left, right = self.quant_a(a), self.quant_b(b)
        left = left.value if isinstance(left, QuantTensor) else left
        right = right.value if isinstance(right, QuantTensor) else right
        return self.output_quant(left * right)


class ConcatRequant(nn.Module):
    """torch.cat with every operand re-quantized by one quantizer: one scale, so the join only moves codes."""

    def __init__(self, **act_kwargs: Any) -> None:
        super().__init__()
        self.quant = qnn.QuantIdentity(**act_kwargs)

    def forward(self, tensors: Any, dim: int = 0) -> Any:
        return torch.cat([self.quant(t) for t in tensors], dim=dim)


class AvgPoolRequant(nn.Module):
    """Average pooling on the dequantized values, re-quantized: over a power-of-two window the mean is exact,
    and the quantizer rounds it half to even as every target's requantization does."""

    def __init__(self, pool: nn.Module, **act_kwargs: Any) -> None:
        super().__init__()
        self.pool = pool
        self.quant = qnn.QuantIdentity(**act_kwargs)

    def forward(self, x: Any) -> Any:
        value = x.value if isinstance(x, QuantTensor) else x
        return self.quant(self.pool(value))


class TableActivation(nn.Module):
    """sigmoid, tanh, LeakyReLU, hard sigmoid or a clamp between two quantizers: with power-of-two scales, a table of
    2**bits output codes.

    The input quantizer is the function's own and signed, so the table is indexed by b-bit codes whatever
    produced the input (an accumulator's codes would need a table of their own for each layer).
    """

    def __init__(
        self,
        function: str,
        input_kwargs: dict[str, Any],
        output_kwargs: dict[str, Any],
        slope: float = 0.0,
        bounds: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        super().__init__()
        self.function = function
        self.slope = slope  # LeakyReLU's, as every target computes it
        self.bounds = bounds  # a clamp's (lower, upper)
        self.requested_slope = slope  # the float model's
        self.input_quant = qnn.QuantIdentity(**input_kwargs)
        self.output_quant = qnn.QuantIdentity(**output_kwargs)

    def forward(self, x: Any) -> Any:
        value = self.input_quant(x)
        value = value.value if isinstance(value, QuantTensor) else value
        if self.function == "leaky_relu":
            return self.output_quant(F.leaky_relu(value, self.slope))
        if self.function == "clamp":
            return self.output_quant(torch.clamp(value, *self.bounds))
        if self.function == "hard_sigmoid":
            return self.output_quant(F.hardsigmoid(value))
        return self.output_quant(torch.sigmoid(value) if self.function == "sigmoid" else torch.tanh(value))


def _table_activation(
    plan: QuantPlan, layer: LayerPrecision, slope: float, bounds: tuple[float, float] = (0.0, 0.0)
) -> TableActivation:
    signed = dataclasses.replace(layer, activation_signed=True)
    requested = slope
    if layer.kind == "leaky_relu":
        try:
            slope = exact_slope(slope, layer.activation_bits)
        except ValueError as err:
            raise ConfigError(f"{layer.name}: {err}", hint="use a slope in [0, 1), or keep the model float") from err
    # sigmoid's output lies in (0, 1): unsigned where the family quantizes unsigned (fixed), signed for int8.
    module = TableActivation(layer.kind, _act_kwargs(plan, signed), _act_kwargs(plan, layer), slope, bounds)
    module.requested_slope = requested
    return module


def rounded_slopes(model: nn.Module) -> list[tuple[str, float, float]]:
    """(layer, the float model's slope, the quantized model's) for each LeakyReLU whose slope was rounded."""
    return [
        (name.removesuffix("_quant"), module.requested_slope, module.slope)
        for name, module in model.named_modules()
        if isinstance(module, TableActivation) and module.slope != module.requested_slope
    ]


class ToFloat(nn.Module):
    """The graph's output as a plain tensor."""

    def forward(self, x: Any) -> torch.Tensor:
        value: torch.Tensor = x.value if isinstance(x, QuantTensor) else x
        return value


def _sized_from_a_tensor(node: fx.Node) -> bool:
    """Whether a reshape's sizes are computed (``x.size(0)``), in any form: ``view(n, -1)``, ``view((n, -1))``,
    ``torch.reshape(x, (n, -1))``, ``reshape(shape=...)``."""
    found: list[fx.Node] = []
    fx.node.map_arg((node.args[1:], node.kwargs), found.append)
    return bool(found)


def _replace_by_module(
    gm: fx.GraphModule,
    node: fx.Node,
    target: str,
    module: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None = None,
) -> None:
    """``node`` replaced by a call of ``module`` (added to ``gm`` as ``target``) on ``args``."""
    gm.add_submodule(target, module)
    with gm.graph.inserting_after(node):
        new = gm.graph.call_module(target, args, kwargs)
    node.replace_all_uses_with(new)
    gm.graph.erase_node(node)


def _quantize_input(gm: fx.GraphModule, node: fx.Node, plan: QuantPlan) -> None:
    """A QuantIdentity after the input, read by every layer that read the input."""
    layer = plan.layer("input")
    gm.add_submodule("input_quant", qnn.QuantIdentity(**_act_kwargs(plan, layer)))
    with gm.graph.inserting_after(node):
        quant_node = gm.graph.call_module("input_quant", (node,))
    node.replace_all_uses_with(quant_node, delete_user_cb=lambda user: user is not quant_node)


def _quantize_activation(
    gm: fx.GraphModule, node: fx.Node, kind: str, modules: dict[str, nn.Module], plan: QuantPlan
) -> None:
    """A ReLU as a QuantReLU, sigmoid, tanh, LeakyReLU, hard sigmoid or a clamp as a table activation."""
    name = layer_name(node)
    layer = plan.layer(name)
    slope = negative_slope(node, modules) if kind == "leaky_relu" else 0.0
    bounds = clamp_bounds(node, modules) if kind == "clamp" else None
    relu = (
        qnn.QuantReLU(**_act_kwargs(plan, layer))
        if kind == "relu"
        else _table_activation(plan, layer, slope, bounds or (0.0, 0.0))
    )
    if node.op == "call_module":
        gm.add_submodule(name, relu)
    else:
        _replace_by_module(gm, node, f"{name}_quant", relu, (node.args[0],))


def _quantize_concat(gm: fx.GraphModule, node: fx.Node, plan: QuantPlan) -> None:
    tensors = node.args[0] if node.args else node.kwargs["tensors"]
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", node.kwargs.get("axis", 0))
    module = ConcatRequant(**_act_kwargs(plan, plan.layer(node.name)))
    _replace_by_module(
        gm, node, f"{node.name}_quant", module, (tuple(cast("Sequence[fx.Node]", tensors)),), {"dim": dim}
    )


def _quantize_avg_pool(gm: fx.GraphModule, node: fx.Node, pool: AvgPool | str, plan: QuantPlan) -> None:
    source = node.args[0]
    assert isinstance(source, fx.Node)
    assert not isinstance(pool, str), pool  # analyze() refused it before any work
    name = layer_name(node)
    target = name if node.op == "call_module" else f"{name}_quant"
    _replace_by_module(
        gm, node, target, AvgPoolRequant(pool.module(), **_act_kwargs(plan, plan.layer(name))), (source,)
    )


def _output_to_float(gm: fx.GraphModule, node: fx.Node) -> None:
    gm.add_submodule("output_to_float", ToFloat())
    with gm.graph.inserting_before(node):
        new = gm.graph.call_module("output_to_float", (node.args[0],))
    node.args = (new,)


def _quantize_node(
    gm: fx.GraphModule,
    node: fx.Node,
    kind: str | None,
    modules: dict[str, nn.Module],
    plan: QuantPlan,
    pools: dict[str, AvgPool | str],
) -> None:
    """``node`` swapped for its quantized form by its kind (shapes and passthrough layers stay as they are)."""
    if kind == "placeholder":
        _quantize_input(gm, node, plan)
    elif kind in WEIGHTED:
        name = str(node.target)
        gm.add_submodule(name, _weighted(modules[name], plan, plan.layer(name)))
    elif kind == "relu" or kind in TABLE_KINDS:
        assert kind is not None
        _quantize_activation(gm, node, kind, modules, plan)
    elif kind == "add":
        residual_add = ResidualAdd(**_act_kwargs(plan, plan.layer(node.name)))
        _replace_by_module(gm, node, f"{node.name}_quant", residual_add, tuple(node.args[:2]))
    elif kind == "mul":
        product = ElementwiseMul(**_act_kwargs(plan, plan.layer(node.name)))
        _replace_by_module(gm, node, f"{node.name}_quant", product, tuple(node.args[:2]))
    elif kind == "cat":
        _quantize_concat(gm, node, plan)
    elif kind == "avgpool":
        _quantize_avg_pool(gm, node, pools[node.name], plan)
    elif kind == "output":
        _output_to_float(gm, node)


def build_quant_model(model: nn.Module, plan: QuantPlan, input_shape: tuple[int, ...]) -> fx.GraphModule:
    """The brevitas version of ``model`` (float weights copied in, quantizers not yet calibrated)."""
    gm = fold_batchnorm(model)
    modules = dict(gm.named_modules())
    graph = gm.graph
    one, two = shapes(gm, input_shape, 1), shapes(gm, input_shape, 2)
    pools = {  # read before the loop: it replaces the nodes the pooling inputs come from
        node.name: avg_pool_of(node, modules, one[node.args[0].name][1:])
        for node in graph.nodes
        if node_kind(node, modules) == "avgpool"
    }
    for node in list(graph.nodes):
        kind = node_kind(node, modules)
        if kind == "passthrough" and node.target in RESHAPES and _sized_from_a_tensor(node):
            node.args = (node.args[0], batch_free_reshape(node, one, two))  # one tuple: view, reshape, torch.reshape
            node.kwargs = {}
        if plan.host_head and is_softmax(node, modules) and softmax_head(node, modules, one) == plan.host_head:
            node.replace_all_uses_with(node.args[0])  # the twin outputs logits: the host applies the softmax
            graph.erase_node(node)
            continue
        _quantize_node(gm, node, kind, modules, plan, pools)
    graph.eliminate_dead_code()  # the size arithmetic a batch-free reshape no longer reads
    graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm


def quantizer_of(gm: fx.GraphModule, layer: str) -> str | None:
    """The twin's module that quantizes the plan layer ``layer``: the input's QuantIdentity (``input_quant``),
    a module activation replaced under its own name, or a functional one added as ``NAME_quant``."""
    names = ("input_quant",) if layer == "input" else (layer, f"{layer}_quant")
    modules = dict(gm.named_modules())
    return next((name for name in names if name in modules), None)


def split_quant_model(twin: fx.GraphModule, layer: str, part: str) -> fx.GraphModule:
    """The ``"head"`` of a twin (input to ``layer``'s output) or its ``"tail"`` (``layer`` to the output).

    The tail starts by applying ``layer`` again to its input: ``layer`` is an activation quantizer (a ReLU),
    which gives back every value of its own output grid unchanged, so tail(head(x)) is twin(x) exactly and
    the tail re-creates the scale the next layer's bias quantizer reads. Raises ConfigError when layers after
    ``layer`` read a value computed before it (a skip connection over the cut): there is no cut there.
    """
    gm = copy.deepcopy(twin)
    graph = gm.graph
    target = quantizer_of(gm, layer)
    found = [n for n in graph.nodes if n.op == "call_module" and n.target == target]
    if len(found) != 1 or not isinstance(gm.get_submodule(str(found[0].target)), qnn.QuantReLU):
        raise ConfigError(
            f"quant.deploy_until = {layer!r} is not a ReLU of the model",
            hint="name the ReLU whose output the quantized artifacts should deliver (its module path)",
        )
    cut = found[0]
    before = ancestors(cut)
    if part == "head":
        output = next(n for n in graph.nodes if n.op == "output")
        with graph.inserting_before(output):
            result = graph.call_module("output_to_float", (cut,))
        output.args = (result,)
    else:
        placeholder = next(n for n in graph.nodes if n.op == "placeholder")
        cut.args = (placeholder, *cut.args[1:])
    graph.eliminate_dead_code()
    if part == "tail":
        crossing = sorted(n.name for n in graph.nodes if n in before and n.op != "placeholder")
        if crossing:
            raise ConfigError(
                f"quant.deploy_until = {layer!r}: the layers after it also read {', '.join(crossing)}, computed "
                "before it, so the model cannot be cut there",
                hint="name a ReLU that every path from the input to the output goes through",
            )
    graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm


def load_quant_model(
    quantized: QuantizedModel, quant_root: Path, float_model: FloatModel, float_root: Path, part: str = "deployed"
) -> nn.Module:
    """The brevitas model again, from the float model, the plan and the saved state.

    ``part``: ``"deployed"``, what the quantized artifacts compute (the head when the plan cuts the model at
    ``host_tail``, else all of it), ``"tail"`` (what the host runs after them) or ``"whole"``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_quant_model(
            load_float_model(float_model, float_root), quantized.plan, tuple(float_model.input_shape)
        )
        state = torch.load(quant_root / quantized.weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        cut = quantized.plan.host_tail
        if cut and part != "whole":
            model = split_quant_model(model, cut, "head" if part == "deployed" else "tail")
    return model.eval()
