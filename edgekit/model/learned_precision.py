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
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["ChannelGrid", "attach_grids", "bake_grids", "channel_bits", "resource_proxy"]

# f is stored as raw / SPEED: Adam's steps are about the learning rate in size, and QAT's rate (1e-3) would
# move a channel's bits by a fraction of a bit per epoch; this makes a bit a few dozen steps.
SPEED = 32.0


class ChannelGrid(nn.Module):
    """The parametrization of one layer's weight: channel ``c`` on the grid ``2**-f_c`` (``mask`` zeros stay)."""

    def __init__(self, weight: torch.Tensor, max_fraction: int, mask: torch.Tensor | None = None) -> None:
        super().__init__()
        channels = weight.shape[0]
        self.raw = nn.Parameter(torch.full((channels,), float(max_fraction) / SPEED))
        self.max_fraction = max_fraction
        self.mask: torch.Tensor
        self.register_buffer("mask", mask.to(weight.dtype) if mask is not None else torch.ones_like(weight))

    def fraction(self) -> torch.Tensor:
        """The learned fractional bits per channel, continuous (what the resource term sees)."""
        return torch.clamp(self.raw * SPEED, -8.0, float(self.max_fraction))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        f = self.fraction()
        shape = (-1,) + (1,) * (weight.dim() - 1)
        step = torch.pow(2.0, -torch.round(f).detach()).view(shape)
        w = weight * self.mask
        delta = (torch.round(w / step) * step - w).detach()
        # value: the rounded weight; d/dw: 1 (straight through); d/df: -ln2 * delta (HGQ's surrogate)
        return w + delta * torch.pow(2.0, -(f - f.detach())).view(shape)


def _weighted(model: nn.Module) -> list[tuple[str, Any]]:
    return [(name, m) for name, m in model.named_modules() if hasattr(m, "quant_weight") and hasattr(m, "weight")]


def attach_grids(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """A :class:`ChannelGrid` on every weighted brevitas layer, starting at the finest grid its per-tensor
    quantizer has (its power-of-two scale), so training starts from the uniform-precision model."""
    layers = _weighted(model)
    if not layers:
        raise ValueError("learned precision found no weighted brevitas layer")
    for name, module in layers:
        with torch.no_grad():
            scale = float(module.quant_weight().scale.max())
        grid = ChannelGrid(module.weight.detach(), round(-math.log2(scale)), masks.get(name))
        parametrize.register_parametrization(module, "weight", grid)


def _grids(model: nn.Module) -> list[tuple[str, Any, ChannelGrid]]:
    found = []
    for name, module in _weighted(model):
        if parametrize.is_parametrized(module, "weight"):
            grid = module.parametrizations["weight"][0]
            assert isinstance(grid, ChannelGrid)
            found.append((name, module, grid))
    return found


def resource_proxy(model: nn.Module, input_bits: Mapping[str, int]) -> torch.Tensor:
    """Bit operations: per channel, its non-zero weights x the bits they need (learned fraction + integer bits
    + sign) x the layer's input bits; differentiable in the learned fractions."""
    total = torch.zeros(())
    for name, module, grid in _grids(model):
        original = module.parametrizations["weight"].original.detach() * grid.mask
        flat = original.reshape(original.shape[0], -1)
        nonzero = (flat != 0).sum(dim=1).to(torch.float32)
        peak = flat.abs().amax(dim=1).clamp_min(2.0**-16)
        integer = torch.floor(torch.log2(peak)) + 2.0  # the integer bits of the channel's largest weight, sign
        bits = torch.relu(grid.fraction() + integer)
        total = total + (nonzero * bits).sum() * float(input_bits.get(name, 8))
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
