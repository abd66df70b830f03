"""The ECON-T autoencoder of the CMS HGCAL trigger path, in the form its paper describes.

Di Guglielmo et al., "A reconfigurable neural network ASIC for detector front-end data compression at the
HL-LHC" (IEEE Trans. Nucl. Sci. 68 (2021) 2179, arXiv:2105.01683): the ECON-T ASIC encodes the 48 trigger
cells of one HGCAL module, arranged on an 8x8 map, with a Conv2d of 8 filters 3x3 and stride 2 and a dense
layer to 16 latent values; the decoder, off-detector, brings the latent back to the 8x8 map. Here the
decoder is a dense layer and transposed convolutions (``decoder="transpose"``, as in the paper's training
setup), or nearest upsampling and a convolution (``decoder="upsample"``), which the FPGA targets take.
"""

from __future__ import annotations

from torch import nn


class EconT(nn.Module):
    def __init__(self, filters: int = 8, latent: int = 16, decoder: str = "transpose") -> None:
        super().__init__()
        self.filters = filters
        self.conv = nn.Conv2d(1, filters, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.conv_relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.latent = nn.Linear(filters * 16, latent)
        self.latent_relu = nn.ReLU()  # what leaves the detector
        self.expand = nn.Linear(latent, filters * 16)
        self.expand_relu = nn.ReLU()
        if decoder == "transpose":
            grow: nn.Module = nn.ConvTranspose2d(filters, filters, 2, stride=2)  # 4x4 -> 8x8
        elif decoder == "upsample":
            grow = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(filters, filters, 3, padding=1))
        else:
            raise ValueError(f"decoder must be 'transpose' or 'upsample', not {decoder!r}")
        self.grow = grow
        self.grow_relu = nn.ReLU()
        self.output = nn.Conv2d(filters, 1, 3, padding=1)

    def forward(self, x):
        z = self.latent_relu(self.latent(self.flatten(self.conv_relu(self.conv(x)))))
        h = self.expand_relu(self.expand(z)).view(x.size(0), self.filters, 4, 4)
        return self.output(self.grow_relu(self.grow(h))).flatten(1)


def build(filters: int = 8, latent: int = 16, decoder: str = "transpose") -> nn.Module:
    return EconT(filters, latent, decoder)
