"""Learned precision: each output channel of each weighted layer finds its own number of fractional bits
during QAT, traded against a resource term in the loss (``quant.method = "learned"``).

The weights of channel ``c`` are held on the grid ``2**-f_c`` by a parametrization of the brevitas layer's
weight: its value is ``round(w * 2**f_c) / 2**f_c`` with ``f_c`` the rounded learned bits, the weights get
the straight-through gradient, and ``f_c`` the surrogate gradient of high-granularity quantization (HGQ, Sun
et al.): the rounding error ``delta`` changes as ``-ln 2 * delta`` per bit. The resource term is a bit-operation
count in the spirit of HGQ's EBOPs: per channel, its non-zero weights x the bits its weights need x the layer's
input bits, relative to the count when training starts, times ``quant.resource_weight``.

After QAT the grids are baked into the weights and the parametrization removed: the brevitas model is a plain
brevitas model again (its per-tensor power-of-two quantizer at the layer's ``weight_bits``), whose weights
lie on coarser grids per channel. Its forward is the reference every target is held to, so every target stays
exact; the RTL path (da4ml) builds each constant multiplication from the bits that are there, so a bit
removed is logic removed, while hls4ml and the INT8 targets use the layer's whole width.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.nn.utils import parametrize

from edgekit.model.brevitas_model import quantizer_of

__all__ = [
    "ActivationGrid",
    "ChannelGrid",
    "activation_modules",
    "attach_activation_grids",
    "attach_grids",
    "bake_activation_grids",
    "bake_grids",
    "channel_bits",
    "input_widths",
    "resource_proxy",
]

# f is stored as raw / SPEED: Adam's steps are about the learning rate in size, and QAT's rate (1e-3) would
# move a channel's bits by a fraction of a bit per epoch; this makes a bit a few dozen steps.
SPEED = 32.0


class ChannelGrid(nn.Module):
    """The parametrization of one layer's weight: channel ``c`` on the grid ``2**-f_c`` (``mask`` zeros stay);
    with ``per_weight``, every weight on its own grid ``2**-f_w``."""

    def __init__(
        self, weight: torch.Tensor, max_fraction: int, mask: torch.Tensor | None = None, per_weight: bool = False
    ) -> None:
        super().__init__()
        shape = tuple(weight.shape) if per_weight else (weight.shape[0],)
        self.raw = nn.Parameter(torch.full(shape, float(max_fraction) / SPEED))
        self.max_fraction = max_fraction
        self.per_weight = per_weight
        self.mask: torch.Tensor
        self.register_buffer("mask", mask.to(weight.dtype) if mask is not None else torch.ones_like(weight))

    def fraction(self) -> torch.Tensor:
        """The learned fractional bits per channel (or weight), continuous (what the resource term sees)."""
        return torch.clamp(self.raw * SPEED, -8.0, float(self.max_fraction))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        f = self.fraction()
        shape = tuple(weight.shape) if self.per_weight else (-1,) + (1,) * (weight.dim() - 1)
        step = torch.pow(2.0, -torch.round(f).detach()).view(shape)
        w = weight * self.mask
        delta = (torch.round(w / step) * step - w).detach()
        # value: the rounded weight; d/dw: 1 (straight through); d/df: -ln2 * delta (HGQ's surrogate)
        return w + delta * torch.pow(2.0, -(f - f.detach())).view(shape)


class ActivationGrid(nn.Module):
    """One activation quantizer's learned precision: its output put on the coarser grid ``2**-f`` (``f`` at
    most the quantizer's own fractional bits, at least two bits left), the same straight-through value and
    HGQ surrogate gradient as :class:`ChannelGrid`; the integer bits (the quantizer's range) stay."""

    def __init__(self, bits: int, fraction: int) -> None:
        super().__init__()
        self.bits, self.top = bits, fraction
        self.raw = nn.Parameter(torch.tensor(float(fraction) / SPEED))

    def fraction(self) -> torch.Tensor:
        return torch.clamp(self.raw * SPEED, float(self.top - self.bits + 2), float(self.top))

    def width(self) -> torch.Tensor:
        """The quantizer's bit width at the learned fraction, continuous."""
        return self.fraction() + float(self.bits - self.top)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        f = self.fraction()
        step = torch.pow(2.0, -torch.round(f).detach())
        delta = (torch.round(y / step) * step - y).detach()
        return y + delta * torch.pow(2.0, -(f - f.detach()))


def _is_act_quantizer(module: nn.Module | None) -> bool:
    return module is not None and hasattr(module, "act_quant") and hasattr(module.act_quant, "bit_width")


def _act_quantizer(module: nn.Module) -> Any:
    """The module's last activation quantizer (a QuantReLU, a QuantIdentity, or one inside a requantizing
    block), or None."""
    found = [m for m in module.modules() if _is_act_quantizer(m)]
    return found[-1] if found else None


def attach_activation_grids(model: fx.GraphModule, names: Iterable[str]) -> dict[str, ActivationGrid]:
    """An :class:`ActivationGrid` after each named activation quantizer (its forward hook), starting at the
    quantizer's calibrated fractional bits."""
    grids: dict[str, ActivationGrid] = {}
    for name in names:
        module: Any = model.get_submodule(name)
        quant = module.act_quant
        with torch.no_grad():
            bits, scale = int(quant.bit_width()), float(quant.scale())
        grid = ActivationGrid(bits, round(-math.log2(scale)))
        module.learned_grid = grid  # a submodule: its parameter trains with the model's
        module._learned_hook = module.register_forward_hook(partial(_coarsen, grid))
        grids[name] = grid
    return grids


def _coarsen(grid: ActivationGrid, _module: nn.Module, _inputs: Any, out: Any) -> Any:
    """The forward hook: a quantizer's output (a QuantTensor keeps its fine scale: the coarse values lie on
    it) put on the learned grid."""
    return out.set(value=grid(out.value)) if hasattr(out, "set") else grid(out)


def bake_activation_grids(model: fx.GraphModule) -> dict[str, int]:
    """Each learned activation's bit width set on its quantizer (same range, coarser scale), the grids and
    hooks removed; returns the widths, which the plan must carry (brevitas keeps a bit width out of the
    state dict)."""
    widths: dict[str, int] = {}
    for name, module in model.named_modules():
        grid = getattr(module, "learned_grid", None)
        if not isinstance(grid, ActivationGrid):
            continue
        width = int(torch.round(grid.fraction()).item()) + grid.bits - grid.top
        tensor_quant = module.act_quant.fused_activation_quant_proxy.tensor_quant
        tensor_quant.msb_clamp_bit_width_impl.bit_width.value.fill_(float(width))
        module._learned_hook.remove()
        del module.learned_grid, module._learned_hook
        widths[name] = width
    return widths


def activation_modules(model: fx.GraphModule, layers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Plan layer name -> module name of each ReLU's and the input's quantizer (the activations whose width
    learned precision learns); ``layers`` are the plan's (name, kind) pairs."""
    found: dict[str, str] = {}
    for name, kind in layers:
        module = quantizer_of(model, name) if kind in ("relu", "input") else None
        if module is not None and _is_act_quantizer(model.get_submodule(module)):
            found[name] = module
    return found


def input_widths(model: fx.GraphModule, grids: Mapping[str, ActivationGrid]) -> dict[str, int | ActivationGrid]:
    """Per weighted layer, the width of what feeds it: the learned grid of its activation quantizer, or that
    quantizer's fixed bit width (8 when none is found)."""
    widths: dict[str, int | ActivationGrid] = {}
    for layer, source in layer_inputs(model).items():
        if source in grids:
            widths[layer] = grids[source]
            continue
        quant = _act_quantizer(model.get_submodule(source))
        with torch.no_grad():
            widths[layer] = int(quant.act_quant.bit_width()) if quant is not None else 8
    return widths


def layer_inputs(model: fx.GraphModule) -> dict[str, str]:
    """Per weighted layer, the module whose activation quantizer feeds it (through reshapes and pooling)."""
    modules = dict(model.named_modules())
    fed: dict[str, str] = {}
    for node in model.graph.nodes:
        if node.op != "call_module" or not hasattr(modules[node.target], "quant_weight"):
            continue
        source = node.args[0] if node.args else None
        while isinstance(source, fx.Node) and source.args:
            if source.op == "call_module" and _act_quantizer(modules[source.target]) is not None:
                fed[str(node.target)] = str(source.target)
                break
            source = source.args[0]
    return fed


def _weighted(model: nn.Module) -> list[tuple[str, Any]]:
    return [(name, m) for name, m in model.named_modules() if hasattr(m, "quant_weight") and hasattr(m, "weight")]


def attach_grids(model: nn.Module, masks: Mapping[str, torch.Tensor], per_weight: bool = False) -> None:
    """A :class:`ChannelGrid` on every weighted brevitas layer (one fraction per output channel, or per weight),
    starting at the finest grid its per-tensor quantizer has (its power-of-two scale), so training starts from
    the uniform-precision model."""
    layers = _weighted(model)
    if not layers:
        raise ValueError("learned precision found no weighted brevitas layer")
    for name, module in layers:
        with torch.no_grad():
            scale = float(module.quant_weight().scale.max())
        grid = ChannelGrid(module.weight.detach(), round(-math.log2(scale)), masks.get(name), per_weight)
        parametrize.register_parametrization(module, "weight", grid)


def _grids(model: nn.Module) -> list[tuple[str, Any, ChannelGrid]]:
    found = []
    for name, module in _weighted(model):
        if parametrize.is_parametrized(module, "weight"):
            grid = module.parametrizations["weight"][0]
            assert isinstance(grid, ChannelGrid)
            found.append((name, module, grid))
    return found


def resource_proxy(model: nn.Module, input_bits: Mapping[str, int | ActivationGrid]) -> torch.Tensor:
    """Bit operations: per channel, its non-zero weights x the bits they need (learned fraction + integer bits
    + sign) x the layer's input bits (fixed, or an activation's learned width); differentiable in the learned
    fractions."""
    total = torch.zeros(())
    for name, module, grid in _grids(model):
        feed = input_bits.get(name, 8)
        width = feed.width() if isinstance(feed, ActivationGrid) else float(feed)
        original = module.parametrizations["weight"].original.detach() * grid.mask
        if grid.per_weight:  # each non-zero weight: its own integer bits (and sign) + its learned fraction
            magnitude = original.abs()
            integer = torch.floor(torch.log2(magnitude.clamp_min(2.0**-16))) + 2.0
            bits = torch.relu(grid.fraction() + integer) * (magnitude != 0)
            total = total + bits.sum() * width
            continue
        flat = original.reshape(original.shape[0], -1)
        nonzero = (flat != 0).sum(dim=1).to(torch.float32)
        peak = flat.abs().amax(dim=1).clamp_min(2.0**-16)
        integer = torch.floor(torch.log2(peak)) + 2.0  # the integer bits of the channel's largest weight, sign
        bits = torch.relu(grid.fraction() + integer)
        total = total + (nonzero * bits).sum() * width
    return total


def bake_grids(model: nn.Module) -> None:
    """The grids baked into the weights, the parametrizations removed: a plain brevitas model again."""
    for _, module, _ in _grids(model):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def channel_bits(model: nn.Module) -> dict[str, list[int]]:
    """Per weighted layer, the bits each output channel's integer weights need (sign included; 0: all zero):
    the width da4ml's constant multiplications see, trailing zero bits dropped."""
    found: dict[str, list[int]] = {}
    with torch.no_grad():
        for name, module in _weighted(model):
            quant = module.quant_weight()
            codes = torch.round(quant.value / quant.scale).to(torch.int64).reshape(quant.value.shape[0], -1)
            found[name] = [_bits(row) for row in codes.numpy()]
    return found


def _bits(codes: np.ndarray) -> int:
    nonzero = np.abs(codes[codes != 0])
    if nonzero.size == 0:
        return 0
    shift = min(int(v & -v).bit_length() - 1 for v in nonzero)  # the common trailing zero bits
    return int(int(nonzero.max()) >> shift).bit_length() + 1
