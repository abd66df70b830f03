"""A depthwise-separable CNN for keyword spotting in the style of MLPerf Tiny's DS-CNN.

Zhang et al., "Hello Edge: Keyword Spotting on Microcontrollers" (arXiv:1711.07128), the DS-CNN of the
MLPerf Tiny keyword-spotting benchmark (Banbury et al., arXiv:2106.07597): a strided convolution over the
49 x 10 MFCC map, four depthwise-separable blocks (depthwise 3x3, BatchNorm, ReLU, pointwise 1x1,
BatchNorm, ReLU), a global average and one dense layer to 12 classes.

One change makes it exact on integer hardware: the reference's first layer (10x4, stride 2) leaves a 25x5
map, whose global average divides by 125. A mean over a count that is not a power of two rounds on every
target its own way, so edgekit refuses it; here the first layer is 4x4 with stride (3, 2), which leaves
16x4 = 64 positions (a shift). The receptive field and the MAC count stay close to the reference's.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


def _block(channels: int, index: int) -> list[tuple[str, nn.Module]]:
    return [
        (f"dw{index}", nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)),
        (f"dw{index}_bn", nn.BatchNorm2d(channels)),
        (f"dw{index}_relu", nn.ReLU()),
        (f"pw{index}", nn.Conv2d(channels, channels, 1, bias=False)),
        (f"pw{index}_bn", nn.BatchNorm2d(channels)),
        (f"pw{index}_relu", nn.ReLU()),
    ]


def build(channels: int = 64, blocks: int = 4, n_classes: int = 12) -> nn.Module:
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(1, channels, (4, 4), stride=(3, 2), bias=False)),  # 49x10 -> 16x4
        ("conv1_bn", nn.BatchNorm2d(channels)),
        ("conv1_relu", nn.ReLU()),
    ]
    for index in range(1, blocks + 1):
        layers += _block(channels, index)
    layers += [
        ("pool", nn.AdaptiveAvgPool2d(1)),  # the mean over 64 positions
        ("flatten", nn.Flatten()),
        ("output", nn.Linear(channels, n_classes)),
    ]
    return nn.Sequential(OrderedDict(layers))
