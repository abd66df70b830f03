"""The table activation's one definition, and the checks that refuse a target whose table differs from it."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from edgekit.model.activation_table import (
    TableSpec,
    exact_slope,
    hls4ml_codes,
    hls4ml_layer_config,
    hls4ml_table_config,
    mismatch,
)


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

    from edgekit.core.precision import LayerPrecision, QuantPlan
    from edgekit.model.brevitas_model import TableActivation, _act_kwargs

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


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.125, 0.0])
def test_leaky_relu_is_rounded_once_from_the_exact_product_and_hls4mls_integer_form_agrees(slope: float) -> None:
    alpha = float(np.float32(slope))
    spec = TableSpec("LeakyRelu", in_bits=8, in_exponent=-3, out_bits=8, out_exponent=-6, out_signed=True, alpha=alpha)
    x = spec.inputs().astype(np.float64)
    assert np.array_equal(spec.reference(), np.clip(np.round(np.where(x > 0, x, alpha * x) * 64), -128, 127))
    (codes,) = hls4ml_codes(spec)
    assert mismatch(spec, codes, "hls4ml") is None
    assert hls4ml_layer_config(spec) == {"Precision": {"param": spec.alpha_type(), "result": spec.output_type()}}


def test_the_slope_type_holds_the_slope_exactly_and_a_rounded_slope_moves_codes() -> None:
    alpha = exact_slope(0.01, 8)
    spec = TableSpec("LeakyRelu", in_bits=8, in_exponent=-2, out_bits=8, out_exponent=-7, out_signed=True, alpha=alpha)
    assert alpha * 2**16 == 655 and spec.alpha_type() == "fixed<17,1,TRN,WRAP>"  # 16 fraction bits, exactly
    # hls4ml's default type for the slope (16 bits, 10 of them fractional) holds 10 / 1024 instead
    rounded = TableSpec(**{**spec.__dict__, "alpha": 10 / 1024})
    assert "differs from the float64 table of LeakyRelu" in str(mismatch(spec, hls4ml_codes(rounded)[0], "hls4ml"))


def test_a_float32_slope_rounds_products_onto_ties_and_the_quantized_slope_does_not() -> None:
    """Measured on a LeakyReLU(0.1) CNN: x = -3.90625 times float32(0.1) is -0.39062500582 exactly, in float32
    -0.390625, a tie of the 1/32 output grid that rounds half to even to -12 where the exact product gives -13."""
    x = np.float32(-3.90625)
    assert np.float32(x * np.float32(0.1)) == np.float32(-0.390625)
    assert np.round(np.float64(x) * np.float64(np.float32(0.1)) * 32) == -13 != np.round(-0.390625 * 32)
    for bits in (4, 8, 12, 16):
        slope = exact_slope(0.1, bits)
        codes = np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1), dtype=np.float64)
        exact = codes * slope
        assert np.array_equal((codes.astype(np.float32) * np.float32(slope)).astype(np.float64), exact), bits
        assert abs(slope - 0.1) <= 2.0 ** -(24 - bits)
    with pytest.raises(ValueError, match="a LeakyReLU slope in"):
        exact_slope(1.5, 8)


def test_a_leaky_relu_node_reads_its_slope_and_refuses_one_outside_zero_to_one() -> None:
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    from edgekit.model.activation_table import table_specs

    def graph(alpha: float) -> ModelWrapper:
        nodes, inits = [], []
        for name, source, target, signed in (("q_in", "x", "a", 1), ("q_out", "b", "y", 1)):
            params = [f"{name}_scale", f"{name}_zero", f"{name}_bits"]
            for param, value in zip(params, (0.125, 0.0, 8.0), strict=True):
                inits.append(onnx.numpy_helper.from_array(np.array(value, dtype=np.float32), param))
            nodes.append(onnx.helper.make_node("Quant", [source, *params], [target], name=name,
                                               domain="qonnx.custom_op.general", signed=signed, narrow=0,
                                               rounding_mode="ROUND"))  # fmt: skip
        nodes.insert(1, onnx.helper.make_node("LeakyRelu", ["a"], ["b"], name="leaky", alpha=alpha))
        tensor = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, 4]) for n in ("x", "y")]
        return ModelWrapper(onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [tensor[0]], [tensor[1]], inits)))

    spec = table_specs(graph(0.2))["leaky"]
    assert (spec.function, spec.in_exponent, spec.out_exponent, spec.alpha) == (
        "LeakyRelu",
        -3,
        -3,
        float(np.float32(0.2)),
    )
    with pytest.raises(ValueError, match=r"a LeakyReLU slope in \[0, 1\) is supported, got 1.5"):
        table_specs(graph(1.5))


@pytest.mark.parametrize(
    ("low", "high", "signed"), [(0.0, 6.0, False), (0.0, 1.0, False), (-1.0, 1.0, True), (0.3, 2.5, False)]
)
def test_a_clamp_is_clipped_then_rounded_once_and_hls4mls_fixed_point_form_agrees(
    low: float, high: float, signed: bool
) -> None:
    low, high = float(np.float32(low)), float(np.float32(high))
    spec = TableSpec("Clip", in_bits=8, in_exponent=-4, out_bits=6, out_exponent=-3, out_signed=signed,
                     low=low, high=high)  # fmt: skip
    x = spec.inputs().astype(np.float64)
    lo, hi = (-32, 31) if signed else (0, 63)
    assert np.array_equal(spec.reference(), np.clip(np.round(np.clip(x, low, high) * 8), lo, hi))
    (codes,) = hls4ml_codes(spec)
    assert mismatch(spec, codes, "hls4ml") is None
    # a planted wrong kernel (clipping at the next input step) is caught
    wrong = TableSpec(**{**spec.__dict__, "high": high + 2.0**-3})
    assert "differs from the float64 table of Clip" in str(mismatch(spec, hls4ml_codes(wrong)[0], "hls4ml"))


def test_hls4ml_takes_the_clamps_it_has_a_kernel_for_and_refuses_other_bounds() -> None:
    from edgekit.model.activation_table import HLS4ML_CLAMPS

    for low, high in HLS4ML_CLAMPS:
        spec = TableSpec("Clip", 8, -4, 8, -5, low < 0, low=low, high=high)
        assert hls4ml_layer_config(spec) == {"Precision": {"result": spec.output_type()}}
    with pytest.raises(ValueError, match=r"no kernel for a clamp to \[-2, 2\]"):
        hls4ml_layer_config(TableSpec("Clip", 8, -4, 8, -5, True, low=-2.0, high=2.0))


def test_a_clip_node_reads_its_bounds_from_constant_inputs_or_attributes() -> None:
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    from edgekit.model.activation_table import clip_bounds, table_specs

    def graph(as_inputs: bool, low: float, high: float) -> ModelWrapper:
        nodes, inits = [], []
        for name, source, target in (("q_in", "x", "a"), ("q_out", "b", "y")):
            params = [f"{name}_scale", f"{name}_zero", f"{name}_bits"]
            for param, value in zip(params, (0.125, 0.0, 8.0), strict=True):
                inits.append(onnx.numpy_helper.from_array(np.array(value, dtype=np.float32), param))
            nodes.append(onnx.helper.make_node("Quant", [source, *params], [target], name=name,
                                               domain="qonnx.custom_op.general", signed=1, narrow=0,
                                               rounding_mode="ROUND"))  # fmt: skip
        if as_inputs:
            for name, value in (("lo", low), ("hi", high)):
                inits.append(onnx.numpy_helper.from_array(np.array(value, dtype=np.float32), name))
            clip = onnx.helper.make_node("Clip", ["a", "lo", "hi"], ["b"], name="clamp")
        else:
            clip = onnx.helper.make_node("Clip", ["a"], ["b"], name="clamp", min=low, max=high)
        nodes.insert(1, clip)
        tensor = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, 4]) for n in ("x", "y")]
        return ModelWrapper(onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [tensor[0]], [tensor[1]], inits)))

    for as_inputs in (True, False):
        model = graph(as_inputs, 0.0, 6.0)
        spec = table_specs(model)["clamp"]
        assert (spec.function, spec.low, spec.high, spec.in_exponent) == ("Clip", 0.0, 6.0, -3)
        assert clip_bounds(model, model.graph.node[1]) == {"low": 0.0, "high": 6.0}
    with pytest.raises(ValueError, match="not increasing"):
        table_specs(graph(True, 1.0, -1.0))


def test_onnxruntimes_fused_quantize_clip_dequantize_equals_the_unfused_graph() -> None:
    """A clamp's QCDQ form (DequantizeLinear -> Clip -> QuantizeLinear) may be fused by ONNX Runtime's graph
    optimizer; over every input code the fused and unfused sessions agree, so Clip keeps Q/DQ fusion on."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    def session(low: float, high: float, s_in: float, s_out: float, dtype: type, fused: bool) -> ort.InferenceSession:
        inits = [numpy_helper.from_array(np.array(v, dtype=t), n) for n, v, t in (
            ("si", s_in, np.float32), ("zi", 0, dtype), ("so", s_out, np.float32), ("zo", 0, dtype),
            ("lo", low, np.float32), ("hi", high, np.float32))]  # fmt: skip
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "si", "zi"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "si", "zi"], ["d"]),
            helper.make_node("Clip", ["d", "lo", "hi"], ["c"]),
            helper.make_node("QuantizeLinear", ["c", "so", "zo"], ["q2"]),
            helper.make_node("DequantizeLinear", ["q2", "so", "zo"], ["y"]),
        ]
        value = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None]) for n in ("x", "y")]
        model = helper.make_model(helper.make_graph(nodes, "g", value[:1], value[1:], inits),
                                  opset_imports=[helper.make_opsetid("", 13)])  # fmt: skip
        model.ir_version = 8
        onnx.checker.check_model(model)
        options = ort.SessionOptions()
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL if fused else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    for low, high, s_in, s_out, dtype in ((0, 6, 2**-4, 2**-5, np.uint8), (0, 1, 2**-5, 2**-8, np.uint8),
                                          (-1, 1, 2**-5, 2**-7, np.int8), (-2, 2, 2**-4, 2**-4, np.int8)):  # fmt: skip
        x = (np.arange(-128, 128, dtype=np.float32) * np.float32(s_in)).astype(np.float32)
        y = [session(low, high, s_in, s_out, dtype, fused).run(None, {"x": x})[0] for fused in (False, True)]
        info = np.iinfo(dtype)
        codes_in = np.clip(np.round(x / s_in), info.min, info.max)
        expected = np.clip(np.round(np.clip(codes_in * s_in, low, high) / s_out), info.min, info.max) * s_out
        assert np.array_equal(y[0], expected) and np.array_equal(y[1], expected), (low, high, s_in, s_out)


@pytest.mark.parametrize(
    ("in_bits", "in_exponent", "out_bits", "signed"),
    [(8, -4, 8, False), (8, -3, 8, True), (6, -2, 6, False), (10, -5, 8, False), (4, 0, 4, False)],
)
def test_hard_sigmoid_is_torchs_and_hls4mls_fixed_point_slope_agrees_off_rounding_ties(
    in_bits: int, in_exponent: int, out_bits: int, signed: bool
) -> None:
    from edgekit.model.activation_table import HARD_SIGMOID_SLOPE, TORCH_HARD_SIGMOID

    out_exponent = -out_bits + (1 if signed else 0)  # the output spans [0, 1)
    spec = TableSpec("HardSigmoid", in_bits, in_exponent, out_bits, out_exponent, signed, alpha=TORCH_HARD_SIGMOID[0])
    x = spec.inputs()
    torch_codes = spec.quantize(torch.nn.functional.hardsigmoid(torch.from_numpy(x)).numpy())
    assert mismatch(spec, torch_codes, "torch") is None
    assert abs(HARD_SIGMOID_SLOPE - Fraction(1, 6)) < Fraction(1, 2**32)
    (codes,) = hls4ml_codes(spec)
    assert mismatch(spec, codes, "hls4ml") is None
    assert hls4ml_layer_config(spec) == {"Precision": {"result": spec.output_type()}}


def test_hard_sigmoid_on_a_rounding_tie_is_refused_for_hls4ml() -> None:
    # Input step 2**-8 = the output step: x = 3 * 2**-8 gives x / 6 + 1/2 = 128.5 output steps, a tie that
    # brevitas rounds to 128 (even) and the slope just above 1/6 rounds to 129.
    from edgekit.model.activation_table import TORCH_HARD_SIGMOID

    spec = TableSpec("HardSigmoid", 8, -8, 8, -8, False, alpha=TORCH_HARD_SIGMOID[0])
    assert spec.reference()[spec.input_codes().tolist().index(3)] == 128
    (codes,) = hls4ml_codes(spec)
    assert codes[spec.input_codes().tolist().index(3)] == 129
    assert "differs from the float64 table of HardSigmoid at 22 of 256 inputs" in str(mismatch(spec, codes, "hls4ml"))


def test_a_hard_sigmoid_node_other_than_torchs_is_refused() -> None:
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    from edgekit.model.activation_table import table_specs

    def graph(**attributes: float) -> ModelWrapper:
        nodes, inits = [], []
        for name, source, target in (("q_in", "x", "a"), ("q_out", "b", "y")):
            params = [f"{name}_scale", f"{name}_zero", f"{name}_bits"]
            for param, value in zip(params, (0.125, 0.0, 8.0), strict=True):
                inits.append(onnx.numpy_helper.from_array(np.array(value, dtype=np.float32), param))
            nodes.append(onnx.helper.make_node("Quant", [source, *params], [target], name=name,
                                               domain="qonnx.custom_op.general", signed=1, narrow=0,
                                               rounding_mode="ROUND"))  # fmt: skip
        nodes.insert(1, onnx.helper.make_node("HardSigmoid", ["a"], ["b"], name="gate", **attributes))
        tensor = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, 4]) for n in ("x", "y")]
        return ModelWrapper(onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [tensor[0]], [tensor[1]], inits)))

    spec = table_specs(graph(alpha=1 / 6))["gate"]
    assert (spec.function, spec.alpha) == ("HardSigmoid", float(np.float32(1 / 6)))
    with pytest.raises(ValueError, match=r"a HardSigmoid of slope 0.2 and shift 0.5: torch's"):
        table_specs(graph())  # ONNX's default slope, 0.2 (Keras' hard sigmoid)


def test_every_hls4ml_hard_sigmoid_mismatch_is_a_rounding_tie() -> None:
    """600 (input bits, input step, output bits, signedness): hls4ml's fixed-point form differs from the table
    only where the input step is no coarser than the output step, where x / 6 + 1/2 can land on a tie."""
    from edgekit.model.activation_table import TORCH_HARD_SIGMOID

    exact = ties = 0
    for in_bits in (4, 6, 8, 10, 12):
        for in_exponent in range(-10, 2):
            for out_bits in (4, 6, 8, 10, 12):
                for signed in (False, True):
                    out_exponent = -out_bits + (1 if signed else 0)
                    spec = TableSpec("HardSigmoid", in_bits, in_exponent, out_bits, out_exponent, signed,
                                     alpha=TORCH_HARD_SIGMOID[0])  # fmt: skip
                    if mismatch(spec, hls4ml_codes(spec)[0], "hls4ml") is None:
                        exact += 1
                    else:
                        assert in_exponent <= out_exponent, spec
                        ties += 1
    assert exact + ties == 600 and exact > ties > 0
