"""What the RTL path cannot build from a quantized model yet, named per layer before any work."""

from __future__ import annotations

from edgekit.backends.base import ModelFacts
from edgekit.core.precision import QuantPlan, transposed_conv_problems

__all__ = ["quant_problems"]


# What the RTL path has no logic for yet, by the graph fact that finds it, and who takes it instead.
MISSING = (
    ("concats", "a torch.cat: the RTL path has no concatenation yet (the INT8 target takes it, and hls4ml a join of "
     "flat features)"),
    ("products", "an element-wise product (a * b): the RTL path has no multiplier of two activations yet (the "
     "hls4ml and INT8 targets take it)"),
    ("grouped", "a grouped (depthwise) convolution: the RTL path has no grouped convolution yet (the hls4ml "
     "targets take depthwise ones)"),
    ("tables", "a sigmoid, tanh, LeakyReLU, hard sigmoid or clamp (a table activation): the RTL path has no table "
     "activation yet (the hls4ml and INT8 targets take it)"),
    ("upsamples", "an Upsample: the RTL path has no Resize yet (the hls4ml and INT8 targets take a nearest Upsample "
     "by whole factors)"),
)  # fmt: skip


def quant_problems(plan: QuantPlan, model: ModelFacts) -> list[str]:
    """The deployed layers da4ml's lowering has no logic for, each with the target that takes it instead."""
    problems = transposed_conv_problems(plan, "edgekit's RTL path")
    for fact, why in MISSING:
        problems += [f"{name}: {why}" for name in model.ours(getattr(model.graph, fact))]
    return problems
