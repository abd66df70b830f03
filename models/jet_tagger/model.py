"""The hls4ml jet-substructure tagger: a fully connected network on 16 jet features.

Duarte et al., "Fast inference of deep neural networks in FPGAs for particle
physics", JINST 13 (2018) P07027: 16 inputs -> 64 -> 32 -> 32 -> 5, ReLU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn


def build(hidden: Sequence[int] = (64, 32, 32), n_inputs: int = 16, n_classes: int = 5) -> nn.Module:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    width = n_inputs
    for i, h in enumerate(hidden, start=1):
        layers[f"fc{i}"] = nn.Linear(width, h)
        layers[f"relu{i}"] = nn.ReLU()
        width = h
    layers["output"] = nn.Linear(width, n_classes)
    return nn.Sequential(layers)
