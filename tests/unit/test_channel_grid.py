"""The learned-precision grid: values on each channel's grid, HGQ's surrogate gradient, masks, bit counts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekit.model.learned_precision import SPEED, ChannelGrid, _bits


def test_each_channel_lies_on_its_own_grid_and_masked_weights_stay_zero() -> None:
    weight = torch.tensor([[0.30, -0.70, 0.12], [0.30, -0.70, 0.12]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    grid = ChannelGrid(weight, max_fraction=4, mask=mask)
    with torch.no_grad():
        grid.raw.copy_(torch.tensor([1.0, 3.0]) / SPEED)
    out = grid(weight)
    # channel 0 on 2**-1 (0.30 -> 0.5, -0.70 -> -0.5, masked -> 0); channel 1 on 2**-3
    assert out.tolist() == [[0.5, -0.5, 0.0], [0.25, -0.75, 0.125]]


def test_the_bits_get_the_surrogate_gradient_and_the_weights_the_straight_through_one() -> None:
    weight = torch.tensor([[0.30, -0.70]], requires_grad=True)
    grid = ChannelGrid(weight.detach(), max_fraction=4)
    with torch.no_grad():
        grid.raw.copy_(torch.tensor([2.0]) / SPEED)
    grid(weight).sum().backward()
    delta = (0.25 - 0.30) + (-0.75 + 0.70)  # the rounding errors on the 2**-2 grid, planted away from ties
    assert grid.raw.grad is not None and weight.grad is not None
    assert grid.raw.grad.item() == pytest.approx(-math.log(2) * delta * SPEED, rel=1e-5)
    assert weight.grad.tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize(
    ("codes", "bits"),
    [([0, 0, 0], 0), ([1, -1], 2), ([64, -64, 0], 2), ([96, -32], 3), ([127, 5], 8), ([-128, 64], 3)],
)
def test_a_channel_needs_the_bits_of_its_codes_without_common_trailing_zeros(codes: list[int], bits: int) -> None:
    assert _bits(np.array(codes, dtype=np.int64)) == bits


def test_the_resource_weight_is_a_sweep_axis_of_learned_points() -> None:
    from edgekit.core.errors import ConfigError
    from edgekit.explore.sweep import SweepSpec, _request, grid_points, parse_grid, rebuild_command

    grid = parse_grid(["weight_bits=6", "resource_weight=0.05,0.5"])
    assert grid == {"weight_bits": (6,), "resource_weight": (0.05, 0.5)}
    low, high = grid_points(grid)
    assert (low.name, high.name) == ("w6a6-s0-learned0.05", "w6a6-s0-learned0.5")
    spec = SweepSpec("jet_tagger", ("fpga-xcvu13p-rtl",), "/tmp/sweep", tiny=True)
    request = _request(spec, high, Path("/tmp/point"))
    assert request.quant == "w6a6" and request.overrides == ("quant.method=learned", "quant.resource_weight=0.5")
    row = {"weight_bits": 6, "act_bits": None, "sparsity": 0.0, "resource_weight": 0.05}
    assert "--set quant.method=learned --set quant.resource_weight=0.05" in rebuild_command(spec, row)
    uniform = grid_points(parse_grid(["weight_bits=6"]))[0]
    assert uniform.learned_overrides == () and "learned" not in uniform.name
    with pytest.raises(ConfigError):
        parse_grid(["resource_weight=-1"])
