"""Sparsity bookkeeping shared by pruning and QAT: weight masks held through training, per-layer counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

__all__ = ["WEIGHTED", "apply_masks", "layer_report", "remove_masks", "zero_masks"]

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def layer_report(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Per weighted layer: parameters, zeros, MACs dense and MACs left (non-zero weights x output positions)."""
    positions: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, WEIGHTED):

            def record(mod: nn.Module, args: Any, out: torch.Tensor, name: str = name) -> None:
                positions[name] = int(np.prod(out.shape[2:])) if out.ndim > 2 else 1

            hooks.append(module.register_forward_hook(record))
    with torch.no_grad():
        model.eval()(torch.zeros((1, *input_shape)))
    for hook in hooks:
        hook.remove()
    layers = []
    for name, module in model.named_modules():
        if not isinstance(module, WEIGHTED):
            continue
        weight = module.weight.detach()
        nonzero = int(torch.count_nonzero(weight))
        bias = 0 if module.bias is None else module.bias.numel()
        layers.append(
            {
                "layer": name,
                "shape": list(weight.shape),
                "parameters": weight.numel() + bias,
                "nonzero_parameters": nonzero + bias,
                "sparsity": 1.0 - nonzero / weight.numel(),
                "macs": weight.numel() * positions[name],
                "nonzero_macs": nonzero * positions[name],
            }
        )
    totals = {
        k: sum(layer[k] for layer in layers) for k in ("parameters", "nonzero_parameters", "macs", "nonzero_macs")
    }
    return {"layers": layers, "totals": totals}


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Hold the masked weights at zero through training (torch's pruning re-parametrization)."""
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        torch_prune.custom_from_mask(modules[name], "weight", mask)  # type: ignore[no-untyped-call]


def remove_masks(model: nn.Module) -> None:
    for module in model.modules():
        if torch_prune.is_pruned(module) and hasattr(module, "weight_mask"):
            torch_prune.remove(module, "weight")  # type: ignore[no-untyped-call]


def zero_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Masks that keep today's zero weights at zero (a pruned model going through QAT)."""
    masks = {}
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, WEIGHTED) and isinstance(weight, torch.Tensor) and bool((weight == 0).any()):
            masks[name] = (weight.detach() != 0).float()
    return masks
