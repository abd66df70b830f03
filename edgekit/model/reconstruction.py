"""What an autoencoder saves: the readout's bits against the latent representation's, per number format.

The compression ratio counts bits: the input window as read out (``readout_bits`` per value, from the
recipe) over the latent vector as the encoder emits it (32 bits per value in float, the latent
activation's bit width once quantized, which is also what the FPGA encoder puts on its output bus).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.core.artifacts import QuantizedModel
from edgekit.core.errors import ConfigError
from edgekit.model.zoo import Recipe

if TYPE_CHECKING:
    from torch import nn

__all__ = ["compression_summary", "describe", "latent_size"]


def latent_size(model: nn.Module, layer: str, input_shape: tuple[int, ...]) -> int:
    """How many values ``layer`` of ``model`` outputs per sample."""
    import torch

    modules = dict(model.named_modules())
    if layer not in modules:
        raise ConfigError(
            f"the recipe's latent_layer {layer!r} is not a layer of the model",
            hint=f"name a module of the model in latent_layer (a recipe of your own, or --recipe a model folder's "
            f"recipe.toml): {', '.join(name for name in modules if name)}",
        )
    seen: list[int] = []
    hook = modules[layer].register_forward_hook(lambda m, a, out: seen.append(int(out[0].numel())))
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        hook.remove()
    return seen[0]


def compression_summary(recipe: Recipe, model: nn.Module, quantized: dict[str, QuantizedModel]) -> dict[str, Any]:
    """Input bits, latent size, and per format the latent bits and the ratio (empty for a classifier)."""
    if recipe.task != "reconstruction" or not recipe.latent_layer:
        return {}
    n_in = int(np.prod(recipe.input_shape))
    in_bits = n_in * (recipe.readout_bits or 32)
    latent = latent_size(model, recipe.latent_layer, tuple(recipe.input_shape))
    formats = [("float", 32)]
    for family, q in quantized.items():
        layer = next((lp for lp in q.plan.layers if lp.name == recipe.latent_layer), None)
        if layer is not None:
            formats.append((f"quantized ({family})", layer.activation_bits))
    rows = [
        {"format": name, "bits_per_value": bits, "latent_bits": latent * bits,
         "ratio": in_bits / (latent * bits) if latent else math.nan}
        for name, bits in formats
    ]  # fmt: skip
    return {
        "input_values": n_in, "readout_bits": recipe.readout_bits or 32, "input_bits": in_bits,
        "latent_layer": recipe.latent_layer, "latent_values": latent, "formats": rows,
    }  # fmt: skip


def describe(summary: dict[str, Any]) -> list[str]:
    """One line per format, for the terminal and report.md."""
    if not summary:
        return []
    head = (
        f"compression: {summary['input_values']} values x {summary['readout_bits']} bits = {summary['input_bits']} "
        f"bits in, {summary['latent_values']} latent values ({summary['latent_layer']}) out"
    )
    return [head] + [
        f"  {r['format']}: {r['bits_per_value']} bits each = {r['latent_bits']} bits, ratio {r['ratio']:.1f}x"
        for r in summary["formats"]
    ]
