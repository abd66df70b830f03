"""Per-feature standardization that becomes part of the deployed model (``train.standardize = true``).

The float model is trained on ``(x - mean) / std`` (per feature of flat inputs, per channel of maps, from the
training split), then the standardization is folded into the first layer: ``W' = W / std`` and
``b' = b - W (mean / std)``. What is saved, exported, quantized and compiled is one ordinary model that takes
the raw features: the device gets them as they come (a pT in GeV beside features of order one), and no
preprocessing has to be repeated, or kept in step, outside it.

The fold is exact in real numbers only where the first layer reads every input value once, unpadded: a
``Linear``, or a ``Conv`` with ``padding=0`` (a padded border would pad ``x`` with zeros where the trained
model saw ``(0 - mean) / std``). Other first layers are refused before any work. On a quantized target the
raw features meet the input quantizer: features of very different ranges need more input bits
(``--quant w6a8i16``), which the build's range warning says.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from edgekit.core.errors import ConfigError
from edgekit.model.data import MIN_INPUT_STEPS

__all__ = ["Standardized", "feature_stats", "first_layer", "fold_into"]


def first_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """The one Linear or unpadded Conv that reads the model's input (refused: anything else first)."""
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as err:  # torch.fx raises many types for Python control flow it cannot trace
        raise ConfigError(
            f"train.standardize folds into the first layer, which needs a model torch.fx can trace: {err}",
            hint="standardize in the data loader instead ((x - mean) / std), or make the forward traceable",
        ) from err
    placeholder = next(n for n in graph.nodes if n.op == "placeholder")
    users = list(placeholder.users)
    modules = dict(model.named_modules())
    target = users[0].target if len(users) == 1 and users[0].op == "call_module" else None
    layer = modules.get(str(target)) if target is not None else None
    if isinstance(layer, nn.Linear):
        return str(target), layer
    if isinstance(layer, nn.modules.conv._ConvNd) and not isinstance(layer, nn.modules.conv._ConvTransposeNd):
        padding = layer.padding if isinstance(layer.padding, tuple) else (layer.padding,)
        if layer.groups == 1 and all(p == 0 for p in padding) and not isinstance(layer.padding, str):
            return str(target), layer
        why = f"{target} is a Conv with padding {layer.padding} or groups {layer.groups}"
    else:
        readers = ", ".join(f"{u.op} {u.target}" for u in users)
        why = f"the input is read by {readers or 'nothing'}"
    raise ConfigError(
        f"train.standardize folds (x - mean) / std into the first layer, which must be one Linear or an unpadded, "
        f"ungrouped Conv reading the input: {why}",
        hint="standardize in the data loader instead, or start the model with such a layer",
    )


def feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per feature (flat) or per channel (maps); a constant feature keeps std 1."""
    values = x.reshape(len(x), x.shape[1], -1).astype(np.float64)
    mean = values.mean(axis=(0, 2))
    std = values.std(axis=(0, 2))
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _broadcast(v: np.ndarray, ndim: int) -> torch.Tensor:
    return torch.from_numpy(v).reshape(-1, *([1] * (ndim - 2)))


class Standardized(nn.Module):
    """``model((x - mean) / std)``: what the float model is trained as, before the fold."""

    def __init__(self, model: nn.Module, mean: np.ndarray, std: np.ndarray, ndim: int) -> None:
        super().__init__()
        self.model = model
        self.mean = _broadcast(mean, ndim)  # constants of the training split, not trained
        self.std = _broadcast(std, ndim)

    def forward(self, x: torch.Tensor) -> Any:
        return self.model((x - self.mean) / self.std)


def fold_into(layer: nn.Module, mean: np.ndarray, std: np.ndarray) -> None:
    """Fold ``(x - mean) / std`` into ``layer`` (a Linear or unpadded Conv) in place; adds a bias if it had none."""
    assert isinstance(layer, nn.Linear | nn.modules.conv._ConvNd)
    with torch.no_grad():
        w = layer.weight.double()
        scale = torch.from_numpy(1.0 / std.astype(np.float64)).reshape(1, -1, *([1] * (w.ndim - 2)))
        shift = torch.from_numpy(mean.astype(np.float64) / std.astype(np.float64)).reshape_as(scale)
        bias = layer.bias.double() if layer.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        new_bias = bias - (w * shift).sum(dim=tuple(range(1, w.ndim)))
        layer.weight.copy_((w * scale).float())
        if layer.bias is None:
            layer.bias = nn.Parameter(new_bias.float())
        else:
            layer.bias.copy_(new_bias.float())


MAX_BITS = 16  # the widest a quantizer takes (QuantSettings' limit)


def raw_feature_precision(x: np.ndarray, input_bits: int, weight_bits: int, first: str) -> tuple[dict[str, int], str]:
    """The precision raw features need once standardization is folded in: ``{"input_bits": .., "first": ..}``.

    The input quantizer now sees the raw features, so its one scale is set by the widest and it needs enough
    bits to leave the narrowest ``MIN_INPUT_STEPS`` codes; the first layer's weights are the trained ones
    divided by each feature's std, so their one per-tensor scale needs ``log2(max std / min std)`` more bits.
    Returns what to raise (never lowered) and a sentence saying so.
    """
    values = x.reshape(len(x), x.shape[1], -1)
    spread = np.abs(values).max(axis=(0, 2)).astype(np.float64)
    spread = spread[spread > 0]
    _, std = feature_stats(x)
    raised: dict[str, int] = {}
    if len(spread) >= 2:
        needed = math.ceil(
            1 + math.log2(MIN_INPUT_STEPS) + math.ceil(math.log2(spread.max())) - math.log2(spread.min())
        )
        if needed > input_bits:
            raised["input_bits"] = min(MAX_BITS, needed)
    extra = math.ceil(math.log2(float(std.max() / std.min()))) if std.min() > 0 else 0
    if extra > 0:
        raised[first] = min(MAX_BITS, weight_bits + extra)
    parts = []
    if "input_bits" in raised:
        parts.append(f"input {input_bits} -> {raised['input_bits']} bits (raw features {spread.min():.3g} to "
                     f"{spread.max():.3g} wide)")  # fmt: skip
    if first in raised:
        parts.append(f"{first} weights {weight_bits} -> {raised[first]} bits (feature std {std.min():.3g} to "
                     f"{std.max():.3g})")  # fmt: skip
    return raised, "; ".join(parts)
