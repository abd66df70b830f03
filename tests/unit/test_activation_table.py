"""The table activation's one definition, and the checks that refuse a target whose table differs from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.activation_table import TableSpec, hls4ml_codes, hls4ml_table_config, mismatch


def test_the_table_is_the_float64_function_rounded_half_to_even_and_saturated() -> None:
    spec = TableSpec("Sigmoid", in_bits=4, in_exponent=-1, out_bits=3, out_exponent=-3, out_signed=False)
    x = spec.inputs()
    assert x.tolist() == [v / 2 for v in range(-8, 8)]  # every code of a signed 4-bit input with scale 1/2
    table = spec.reference()
    # sigmoid(0) = 0.5 = 4/8 exactly; sigmoid(3.5) * 8 = 7.76 saturates at the 3-bit maximum 7.
    assert table[x.tolist().index(0.0)] == 4 and table[-1] == 7
    assert np.array_equal(table, np.clip(np.round(8 / (1 + np.exp(-x.astype(np.float64)))), 0, 7))
    assert spec.output_type() == "ufixed<3,0,RND_CONV,SAT>"
    assert mismatch(spec, table, "same") is None
    wrong = table.copy()
    wrong[3] += 1
    assert "at 1 of 16 inputs (x=-2.5" in str(mismatch(spec, wrong, "a target"))


def test_hls4ml_gets_one_entry_per_input_code_and_its_table_matches_where_the_input_stays_in_range() -> None:
    spec = TableSpec("Tanh", in_bits=8, in_exponent=-5, out_bits=8, out_exponent=-7, out_signed=True)
    assert hls4ml_table_config(spec) == {
        "TableSize": 256,  # tanh's table spans [-4, 4): 8 * 2**5 entries
        "Precision": {"table": "fixed<8,1,RND_CONV,SAT>", "result": "fixed<8,1,RND_CONV,SAT>"},
    }
    for codes in hls4ml_codes(spec):
        assert mismatch(spec, codes, "hls4ml") is None


def test_an_input_beyond_hls4mls_table_is_refused_when_the_output_does_not_saturate_there() -> None:
    # Inputs up to 8 with 15 fraction bits of output: hls4ml clamps tanh(5) to tanh(4) (0.99933 vs 0.99991).
    spec = TableSpec("Tanh", in_bits=8, in_exponent=-4, out_bits=16, out_exponent=-15, out_signed=True)
    problems = [mismatch(spec, codes, "hls4ml's table") for codes in hls4ml_codes(spec)]
    assert all(p is not None and "hls4ml's table differs from the float64 table of Tanh" in p for p in problems)


def test_the_brevitas_twin_computes_the_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("brevitas", reason="the quantized twin needs the quant extra: pip install 'edgekit[quant]'")
    from torch import nn

    from edgekit.brevitas_model import TableActivation, _act_kwargs
    from edgekit.precision import LayerPrecision, QuantPlan

    layer = LayerPrecision("act", "sigmoid", None, 4, None, None, None, activation_signed=False)
    plan = QuantPlan("fixed", "power_of_two", "saturate", (layer,))
    signed = LayerPrecision("act", "sigmoid", None, 4, None, None, None, activation_signed=True)
    table = TableActivation("sigmoid", _act_kwargs(plan, signed), _act_kwargs(plan, layer)).eval()
    model = nn.Sequential(table)
    with torch.no_grad():
        y = model(torch.linspace(-4, 4, 64)).value
    # The output is unsigned 4-bit: 16 levels of one power-of-two scale, monotone in the input.
    scale = float(table.output_quant.act_quant.scale())
    codes = (y / scale).numpy()
    assert np.allclose(codes, np.round(codes)) and codes.min() >= 0 and codes.max() <= 15
    assert np.all(np.diff(codes) >= 0)
