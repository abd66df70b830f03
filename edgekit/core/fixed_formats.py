"""Each quantized layer's number format as the hardware sees it: ``fixed<W,I>`` (W bits, I of them integer).

A power-of-two scale ``2^-F`` on a W-bit code is the fixed-point type ``ap_fixed<W, W-F>`` (``ap_ufixed``
when unsigned): its step is ``2^-F`` and its range ``[-2^(I-1), 2^(I-1))``. An 8-bit input whose scale came
out as 2^0 is ``fixed<8,8>``: integer steps, which is what a feature in GeV next to features of order one
gets; the report shows this, so a user sees the resolution and not only the width. Read off brevitas'
quantized tensors on one forward pass (activations) and from the weight quantizers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["describe_format", "fixed_point_formats", "inexact_quant_nodes"]


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


def inexact_quant_nodes(graph: Any) -> tuple[str, ...]:
    """QONNX Quant nodes whose arithmetic the FPGA targets do not reproduce bit for bit.

    hls4ml and the RTL path compute fixed point: a scale must be a power of two (a float scale gives silently
    different numbers through hls4ml), the zero point zero, and the rounding brevitas' half-to-even
    (``ROUND``), which every target here computes.
    """
    from onnx import numpy_helper

    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # brevitas also writes scales as Constant nodes
        if node.op_type == "Constant" and node.attribute:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    found = []
    for node in graph.node:
        if node.op_type != "Quant":
            continue
        scale, zero = constants.get(node.input[1]), constants.get(node.input[2])
        rounding = next((a.s.decode() for a in node.attribute if a.name == "rounding_mode"), "ROUND")
        if scale is None:
            found.append(f"{node.name}: its scale is computed, not a constant")
        elif not np.all(scale > 0) or not np.allclose(np.log2(scale), np.round(np.log2(scale)), rtol=0, atol=0):
            found.append(f"{node.name}: scale {float(np.ravel(scale)[0]):.6g} is not a power of two")
        elif zero is not None and np.any(zero != 0):
            found.append(f"{node.name}: zero point {float(np.ravel(zero)[0]):g} (the FPGA flow is symmetric)")
        elif rounding != "ROUND":
            found.append(f"{node.name}: rounding {rounding} (the FPGA targets round half to even, ROUND)")
    initializers = {i.name for i in graph.initializer}
    for node in graph.node:  # a float bias is rounded to some fixed-point type on the FPGA, and differs
        if node.op_type in ("Gemm", "Conv") and len(node.input) > 2 and node.input[2] in initializers:
            found.append(f"{node.name or node.op_type}: its bias is float, not quantized (give the layer bias_quant="
                         "Int32Bias, or bias=False)")  # fmt: skip
    return tuple(found)
