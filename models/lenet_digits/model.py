"""A LeNet-style CNN sized for scikit-learn's 8x8 handwritten digits.

LeCun et al., "Gradient-based learning applied to document recognition" (1998):
two convolution + pooling stages, then fully connected layers. On 8x8 inputs the
kernels are 3x3 with padding, so the feature maps go 8x8 -> 4x4 -> 2x2.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


def build(channels: tuple[int, int] = (8, 16), hidden: int = 32, n_classes: int = 10) -> nn.Module:
    c1, c2 = channels
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, c1, kernel_size=3, padding=1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(c1, c2, kernel_size=3, padding=1)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(c2 * 2 * 2, hidden)),
                ("relu3", nn.ReLU()),
                ("output", nn.Linear(hidden, n_classes)),
            ]
        )
    )
