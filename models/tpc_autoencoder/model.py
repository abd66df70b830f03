"""A small convolutional autoencoder that compresses a TPC readout window into a few numbers.

The encoder (two 3x3 convolution + pooling stages and a dense layer) is the part that would sit in the
front-end FPGA; the latent vector is what leaves the detector. The decoder is dense, which keeps the
whole network within what hls4ml and the open-RTL flow take (no upsampling layers), and reconstructs
the window flattened (rows x time bins).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


def build(channels: tuple[int, int] = (4, 8), latent: int = 16, hidden: int = 64, rows: int = 16,
          time_bins: int = 16) -> nn.Module:  # fmt: skip
    c1, c2 = channels
    features = c2 * (rows // 4) * (time_bins // 4)
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
                ("latent", nn.Linear(features, latent)),
                ("latent_relu", nn.ReLU()),  # the compressed representation: latent values, non-negative
                ("decode1", nn.Linear(latent, hidden)),
                ("relu4", nn.ReLU()),
                ("output", nn.Linear(hidden, rows * time_bins)),
            ]
        )
    )
