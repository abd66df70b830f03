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


def test_per_weight_grids_round_each_weight_on_its_own_grid_and_count_each_weights_bits() -> None:
    """quant.learned_granularity = "weight": one fraction per weight; the resource term counts each non-zero
    weight's own bits (its integer bits + sign + its fraction), zeros count nothing."""
    from torch import nn
    from torch.nn.utils import parametrize

    from edgekit.model.learned_precision import resource_proxy

    weight = torch.tensor([[0.30, -0.70], [0.0, 1.40]])
    grid = ChannelGrid(weight, max_fraction=4, per_weight=True)
    assert tuple(grid.raw.shape) == (2, 2)
    with torch.no_grad():
        grid.raw.copy_(torch.tensor([[1.0, 3.0], [2.0, 0.0]]) / SPEED)
    assert grid(weight).tolist() == [[0.5, -0.75], [0.0, 1.0]]
    layer = nn.Linear(2, 2, bias=False)
    layer.quant_weight = None  # what _weighted looks for on a brevitas layer
    with torch.no_grad():
        layer.weight.copy_(weight)
    parametrize.register_parametrization(layer, "weight", grid)
    # bits: 0.30 -> floor(log2 .3) + 2 + 1 = 1, -0.70 -> 1 + 3 = 4, 0 -> 0, 1.40 -> 2 + 0 = 2; x 8 input bits
    assert float(resource_proxy(layer, {"": 8}).detach()) == (1 + 4 + 0 + 2) * 8


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


def test_learned_points_get_their_own_front_in_sweep_md_and_sweep_html(tmp_path: Path) -> None:
    """A learned point that a uniform point beats is still on the learned front, drawn apart (squares)."""
    from edgekit.explore.sweep_results import write_results

    rows = [
        {"point": "w6a6-s0", "status": "ok", "accuracy": 0.75, "lut": 9000, "resource_weight": None},
        {"point": "w3a6-s0.85", "status": "ok", "accuracy": 0.74, "lut": 5000, "resource_weight": None},
        {"point": "w6a6-s0-learned0.5", "status": "ok", "accuracy": 0.73, "lut": 6000, "resource_weight": 0.5},
        {"point": "w6a6-s0-learned0.05", "status": "ok", "accuracy": 0.745, "lut": 4000, "resource_weight": 0.05},
    ]
    write_results(tmp_path, rows)
    markdown = (tmp_path / "sweep.md").read_text()
    learned = markdown.split("## Pareto front: accuracy against lut (learned precision)")[1].split("##")[0]
    assert "w6a6-s0-learned0.05" in learned and "w6a6-s0-learned0.5" not in learned  # 0.05 beats 0.5 on both
    uniform = markdown.split("(uniform precision)")[1].split("##")[0]
    assert "w6a6-s0:" in uniform and "w3a6-s0.85" in uniform
    html = (tmp_path / "sweep.html").read_text()
    assert "squares: learned precision" in html and "circles: uniform precision" in html
    assert html.count("<rect x=") == 2 and html.count("<polyline") == 1  # one learned point on its front: no line
    write_results(tmp_path, [dict(r, resource_weight=None) for r in rows[:2]])
    assert "(uniform precision)" not in (tmp_path / "sweep.md").read_text()
    assert "red: the Pareto front" in (tmp_path / "sweep.html").read_text()


def test_an_activation_grid_coarsens_the_quantized_output_and_its_bits_get_the_surrogate_gradient() -> None:
    from edgekit.model.learned_precision import ActivationGrid

    grid = ActivationGrid(bits=6, fraction=3)  # a 6-bit quantizer on 2**-3: 3 integer bits
    with torch.no_grad():
        grid.raw.copy_(torch.tensor(1.0 / SPEED))  # learned down to 2**-1: a 4-bit quantizer
    y = torch.tensor([0.375, 1.125, 2.625], requires_grad=True)  # on 2**-3, away from the 2**-1 ties
    out = grid(y)
    assert out.tolist() == [0.5, 1.0, 2.5]
    assert float(grid.width().detach()) == 4.0
    out.sum().backward()
    delta = (0.5 - 0.375) + (1.0 - 1.125) + (2.5 - 2.625)
    assert grid.raw.grad is not None and y.grad is not None
    assert grid.raw.grad.item() == pytest.approx(-math.log(2) * delta * SPEED, rel=1e-5)
    assert y.grad.tolist() == [1.0, 1.0, 1.0]
    with torch.no_grad():
        grid.raw.copy_(torch.tensor(-20.0 / SPEED))
    assert float(grid.width().detach()) == 2.0  # never below two bits


class _Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.fc2(torch.nn.functional.relu(self.fc1(x)).view(x.shape[0], -1))


def test_learned_activation_widths_are_baked_into_the_quantizers_with_their_range() -> None:
    """Each layer's input width is the activation quantizer feeding it (through a reshape); a width learned
    two bits down bakes into a quantizer of that width whose scale is four times coarser."""
    from edgekit.core.config import QuantSettings
    from edgekit.core.precision import plan_quantization
    from edgekit.model.brevitas_model import build_quant_model
    from edgekit.model.learned_precision import (
        activation_modules,
        attach_activation_grids,
        bake_activation_grids,
        input_widths,
    )
    from edgekit.model.quant_graph import analyze

    torch.manual_seed(0)
    info = analyze(_Mlp(), (4,))
    plan = plan_quantization(QuantSettings(), "fixed", info.layers)
    model = build_quant_model(_Mlp(), plan, (4,))
    model(torch.randn(64, 4))  # brevitas' runtime statistics set the scales in training mode
    model.eval()
    acts = activation_modules(model, [(layer.name, layer.kind) for layer in plan.layers])
    assert set(acts) == {"input", "relu"}
    relu = model.get_submodule(acts["relu"])
    # exactly 4x at 2 bits fewer, for any calibrated range: the power-of-two threshold stays, over 2**bits
    scale = float(relu.act_quant.scale())
    grids = attach_activation_grids(model, acts.values())
    widths = input_widths(model, grids)
    assert widths == {"fc1": grids[acts["input"]], "fc2": grids[acts["relu"]]}
    with torch.no_grad():
        grids[acts["relu"]].raw.sub_(2.0 / SPEED)
    x = torch.randn(16, 4)
    hooked = model(x)
    assert bake_activation_grids(model) == {acts["input"]: 8, acts["relu"]: 6}
    assert float(relu.act_quant.scale()) == 4 * scale and int(relu.act_quant.bit_width()) == 6
    assert input_widths(model, {}) == {"fc1": 8, "fc2": 6}
    assert not hasattr(relu, "learned_grid") and torch.equal(model(x), model(x))
    assert hooked.shape == model(x).shape
