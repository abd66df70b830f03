"""Which layer first departs from its reference: layer outputs of two models matched in forward order.

Layer names differ across formats (``fc2`` in torch, ``Dense_MatMul_1`` in an hls4ml
model converted from QONNX), but the order of the weighted layers and of the
activations is the same, so layers are matched by kind and position: the n-th
weighted layer with the n-th weighted layer, the n-th ReLU with the n-th ReLU.

A target that should be bit-exact (fixed point, INT8 against brevitas) departs at the
first difference; a float target departs where its difference exceeds what its number
format explains (:data:`LAYER_TOLERANCE`, relative to the layer's largest value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["LAYER_TOLERANCE", "Divergence", "LayerTrace", "first_divergence", "layer_errors", "torch_trace"]

LayerTrace = list[tuple[str, str, np.ndarray]]  # (layer name, kind, outputs of shape (N, values))

# How far a float target's layer may be from the float reference before it counts as departing, relative to
# the layer's largest |value| (at least 1): a few hundred fp32 roundings, a few fp16/bf16 ones (unit roundoff
# 2**-24, 2**-11, 2**-8).
LAYER_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 1e-1}


@dataclass(frozen=True)
class Divergence:
    reference_layer: str
    target_layer: str
    kind: str
    max_abs_diff: float
    samples: int  # how many traced samples differ at this layer
    traced: int
    after: str = ""  # for an activation: the weighted layer that feeds it (where a weight fault would sit)

    def describe(self) -> str:
        where = f"after {self.after}; " if self.after else ""
        return (
            f"first diverging layer: {self.reference_layer} ({where}target layer {self.target_layer}, {self.kind}), "
            f"max |diff| {self.max_abs_diff:.6g} in {self.samples} of {self.traced} traced samples"
        )


def _kind(module: nn.Module, name: str) -> str | None:
    if name == "input_quant":
        return "input"
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        return "weighted"
    if "ReLU" in type(module).__name__:
        return "relu"
    return None


def torch_trace(model: nn.Module, x: np.ndarray) -> LayerTrace:
    """Outputs of the input quantizer, weighted layers and ReLUs of a (brevitas) model, channels-last, flattened."""
    found: LayerTrace = []
    hooks = []
    for name, module in model.named_modules():
        kind = _kind(module, name) if name and "." not in name else None
        if kind is None:
            continue

        def record(mod: nn.Module, args: object, out: object, name: str = name, kind: str = kind) -> None:
            value = getattr(out, "value", out)
            assert isinstance(value, torch.Tensor)
            array = value.detach().numpy()
            if array.ndim > 2:  # NCHW -> NHWC, the layout hls4ml computes in
                array = np.moveaxis(array, 1, -1)
            found.append((name, kind, array.reshape(len(array), -1)))

        hooks.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(torch.from_numpy(x))
    finally:
        for hook in hooks:
            hook.remove()
    return found


def first_divergence(reference: LayerTrace, target: LayerTrace, tolerance: float = 0.0) -> Divergence | None:
    """The first layer, in forward order, where the target's outputs differ from the reference's.

    With a ``tolerance``, a layer differs when its max |diff| exceeds ``tolerance * max(1, max |reference|)``.
    """
    by_kind: dict[str, list[tuple[str, np.ndarray]]] = {}
    for name, kind, values in target:
        by_kind.setdefault(kind, []).append((name, values))
    seen: dict[str, int] = {}
    last_weighted = ""
    for name, kind, values in reference:
        if kind == "weighted":
            last_weighted = name
        index = seen.get(kind, 0)
        seen[kind] = index + 1
        candidates = by_kind.get(kind, [])
        if index >= len(candidates):
            continue
        target_name, target_values = candidates[index]
        if target_values.shape != values.shape:
            continue
        diff = np.abs(target_values.astype(np.float64) - values.astype(np.float64))
        allowed = tolerance * max(1.0, float(np.abs(values).max(initial=0.0)))
        if diff.max(initial=0.0) > allowed:
            return Divergence(
                name, target_name, kind, float(diff.max()), int((diff.max(axis=1) > allowed).sum()), len(values),
                after=last_weighted if kind == "relu" else "",
            )  # fmt: skip
    return None


def layer_errors(reference: LayerTrace, target: LayerTrace) -> list[tuple[str, str, float]]:
    """(reference layer, kind, max |diff|) for every reference layer the target traced, in forward order."""
    by_kind: dict[str, list[np.ndarray]] = {}
    for _, kind, values in target:
        by_kind.setdefault(kind, []).append(values)
    seen: dict[str, int] = {}
    errors = []
    for name, kind, values in reference:
        index = seen.get(kind, 0)
        seen[kind] = index + 1
        candidates = by_kind.get(kind, [])
        if index < len(candidates) and candidates[index].shape == values.shape:
            diff = np.abs(candidates[index].astype(np.float64) - values.astype(np.float64))
            errors.append((name, kind, float(diff.max())))
    return errors
