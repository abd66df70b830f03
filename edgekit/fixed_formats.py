"""Each quantized layer's number format as the hardware sees it: ``fixed<W,I>`` (W bits, I of them integer).

A power-of-two scale ``2^-F`` on a W-bit code is the fixed-point type ``ap_fixed<W, W-F>`` (``ap_ufixed``
when unsigned): its step is ``2^-F`` and its range ``[-2^(I-1), 2^(I-1))``. An 8-bit input whose scale came
out as 2^0 is ``fixed<8,8>``: integer steps, which is what a feature in GeV next to features of order one
gets; the report shows this, so a user sees the resolution and not only the width. Read off brevitas'
quantized tensors on one forward pass (activations) and from the weight quantizers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["describe_format", "fixed_point_formats"]


def describe_format(scale: Any, bit_width: Any, signed: bool) -> str:
    """``fixed<8,3>``, ``ufixed<6,1>``, ``fixed<6,-1..1>`` (per channel), or ``int8 x 0.0123`` (not power of two)."""
    scales = np.atleast_1d(np.asarray(torch.as_tensor(scale).detach().cpu(), dtype=np.float64)).ravel()
    bits = round(float(torch.as_tensor(bit_width).max()))
    kind = "fixed" if signed else "ufixed"
    fractions = -np.log2(scales)
    if not np.all(np.isfinite(fractions)) or not np.allclose(fractions, np.round(fractions)):
        shown = f"{scales[0]:.3g}" if np.ptp(scales) == 0 else f"{scales.min():.3g}..{scales.max():.3g}"
        return f"{'int' if signed else 'uint'}{bits} x {shown}"
    integers = sorted({bits - round(float(f)) for f in fractions})
    span = str(integers[0]) if len(integers) == 1 else f"{integers[0]}..{integers[-1]}"
    return f"{kind}<{bits},{span}>"


def _is_quant_tensor(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("scale", "bit_width", "signed"))


def fixed_point_formats(model: nn.Module, sample: np.ndarray) -> dict[str, dict[str, str]]:
    """Per brevitas module: ``{"output": fmt}`` for activation quantizers, ``{"weight": fmt}`` for weights.

    ``sample`` is a small batch of real inputs (the formats come from the trained scales, not from the data,
    but a forward pass is how brevitas hands out the activations' quantized tensors).
    """
    formats: dict[str, dict[str, str]] = {}
    hooks = []

    def keep(name: str, module: nn.Module, args: Any, output: Any) -> None:
        proxy = getattr(module, "output_quant", None)
        rounded = not hasattr(module, "quant_weight") or bool(getattr(proxy, "is_quant_enabled", False))
        if _is_quant_tensor(output) and rounded:  # an activation quantizer's output, or a layer's quantized output
            formats.setdefault(name, {})["output"] = describe_format(
                output.scale, output.bit_width, bool(output.signed)
            )

    for name, module in model.named_modules():
        if type(module).__module__.startswith("brevitas.proxy"):  # a layer's own quantizer proxies: its parts
            continue
        if name:
            hooks.append(module.register_forward_hook(lambda m, a, o, n=name: keep(n, m, a, o)))
        weight_quant = getattr(module, "quant_weight", None)
        if name and callable(weight_quant):
            try:
                w = weight_quant()
            except (RuntimeError, AttributeError, TypeError):  # a quantizer disabled or not a tensor quantizer
                continue
            if _is_quant_tensor(w):
                formats.setdefault(name, {})["weight"] = describe_format(w.scale, w.bit_width, bool(w.signed))
    try:
        with torch.no_grad():
            model(torch.from_numpy(np.ascontiguousarray(sample[:2], dtype=np.float32)))
    finally:
        for hook in hooks:
            hook.remove()
    return formats


def step_of(fmt: str) -> float | None:
    """The resolution (one LSB) of a ``fixed<W,I>`` format with one integer width, else None."""
    if not fmt.startswith(("fixed<", "ufixed<")) or ".." in fmt:
        return None
    width, integer = (int(v) for v in fmt[fmt.index("<") + 1 : -1].split(","))
    return math.ldexp(1.0, integer - width)
