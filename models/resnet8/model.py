"""A residual image classifier in the style of MLPerf Tiny's ResNet-8 (image classification, CIFAR-10).

Banbury et al., "MLPerf Tiny Benchmark" (arXiv:2106.07597), whose image-classification reference is a
ResNet-8 for 32x32x3 images: a 3x3 convolution with 16 filters, three residual stages of two 3x3
convolutions each (16, 32 and 64 filters; the second and third stages halve the map with a stride-2
convolution and take the shortcut through a strided 1x1 convolution), BatchNorm and ReLU after every
convolution (the residual sum is added before its ReLU), a global average over the 8x8 map, and one dense
layer to 10 classes with a softmax. The softmax here is ``forward()``'s last step, so edgekit leaves it to
the host under ``--quant`` and every artifact outputs the exact logits.

``stem_stride`` (1 in the reference) lets the tests shrink the maps: 4 gives an 8x8 first map, small enough
for the open RTL path, which builds every multiplication as logic.
"""

from __future__ import annotations

import torch
from torch import nn


class Stage(nn.Module):
    """conv3x3 (stride s) -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        # the reference's shortcut: identity where the shape stays, a strided 1x1 convolution where it changes
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride=stride)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(y + self.shortcut(x))


class ResNet8(nn.Module):
    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), n_classes: int = 10, stem_stride: int = 1):
        super().__init__()
        c1, c2, c3 = channels
        self.stem = nn.Conv2d(3, c1, 3, stride=stem_stride, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(c1)
        self.stem_relu = nn.ReLU()
        self.stages = nn.Sequential(Stage(c1, c1, 1), Stage(c1, c2, 2), Stage(c2, c3, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)  # the mean over the last map: 8x8 = 64 positions, a shift
        self.output = nn.Linear(c3, n_classes)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem_relu(self.stem_bn(self.stem(x))))
        return self.softmax(self.output(torch.flatten(self.pool(x), 1)))


def build(channels: list[int] | tuple[int, int, int] = (16, 32, 64), n_classes: int = 10,
          stem_stride: int = 1) -> nn.Module:  # fmt: skip
    if len(channels) != 3:
        raise ValueError(f"channels must give the three stages' widths, not {list(channels)}")
    return ResNet8((int(channels[0]), int(channels[1]), int(channels[2])), n_classes, stem_stride)
