"""Pieces of the RTL backend on their own: rounding, graph reading, the Verilator shim, yosys' report, word sizes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.rtl.fixed_graph import FixedFormat, NumpyRounder, read_fixed_graph
from edgekit.backends.rtl.yosys import family_for_part, parse_stat
from edgekit.core.errors import ConfigError, InputError

FORMATS = [
    FixedFormat(signed=True, bits=4, fraction_bits=1),
    FixedFormat(signed=True, bits=5, fraction_bits=3, narrow=True),
    FixedFormat(signed=False, bits=3, fraction_bits=0),
    FixedFormat(signed=False, bits=6, fraction_bits=4),
]


def test_numpy_rounder_is_brevitas_rounding() -> None:
    torch = pytest.importorskip("torch")
    fmt = FixedFormat(signed=True, bits=4, fraction_bits=1)
    x = np.array([-9.0, -4.25, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 3.25, 3.75, 100.0])
    # torch.round is half to even; brevitas clamps after rounding
    expected = torch.clamp(torch.round(torch.tensor(x) * 2), -8, 7).numpy() / 2
    assert np.array_equal(NumpyRounder().quantize(x, fmt), expected)
    assert fmt.low == -4.0 and fmt.high == 3.5 and fmt.integer_bits == 2


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.describe())
def test_da4ml_logic_rounds_half_to_even_and_saturates_like_brevitas(fmt: FixedFormat) -> None:
    """Every value of a 10-bit input with 5 fraction bits, through the traced logic and da4ml's interpreter."""
    pytest.importorskip("da4ml", reason="the RTL backend needs the rtl extra: pip install 'edgekit[rtl]'")
    from da4ml.trace import FixedVariableArrayInput, HWConfig, comb_trace

    from edgekit.backends.rtl.lowering import _Da4mlRounder

    values = np.arange(-512, 512) / 32.0  # every signed 10-bit value with 5 fraction bits: ties included
    inp = FixedVariableArrayInput((len(values),), hwconf=HWConfig(1, -1, -1))
    logic = comb_trace(inp, _Da4mlRounder().quantize(inp.quantize(1, 4, 5), fmt))
    got = logic.predict(values[None, :], n_threads=1)[0]
    expected = NumpyRounder().quantize(values, fmt)
    assert np.array_equal(got, expected)
    # the set includes ties that round down to even and values beyond the range that saturate
    scaled = values * 2**fmt.fraction_bits
    assert np.any(scaled % 2 == 0.5) and np.any(values > fmt.high)
    # plain half-up rounding (da4ml's RND) would differ: the test can tell the two apart
    half_up = np.clip(np.floor(scaled + 0.5) * 2.0**-fmt.fraction_bits, fmt.low, fmt.high)
    assert not np.array_equal(half_up, expected)


def test_saturation_after_a_deep_residual_sum_is_exact() -> None:
    """A ReLU of a residual sum saturated to a finer format, after six layers: da4ml's factor is 2^-34.

    The bound constant is then an integer of 2^32 or more in da4ml's units, beyond the range of its
    ``_const_f`` search; edgekit's exact replacement keeps the mux aligned (without it, 623 of the 3,000
    values below differ: the ResNet-8 zoo model's second stage).
    """
    pytest.importorskip("da4ml", reason="the RTL backend needs the rtl extra: pip install 'edgekit[rtl]'")
    import da4ml.trace.fixed_variable as fixed_variable
    from da4ml.trace import FixedVariableArrayInput, HWConfig, comb_trace
    from da4ml.trace.fixed_variable_array import to_raw_arr

    from edgekit.backends.rtl.lowering import _const_fraction, _Da4mlRounder, _exact_constant_fractions

    rng = np.random.default_rng(0)
    hidden, wide, out = FixedFormat(False, 8, 4), FixedFormat(True, 8, 4), FixedFormat(False, 8, 5)
    weights = [rng.integers(-127, 128, (6, 6)) * 2.0**-7 for _ in range(6)]
    shortcut = rng.integers(-127, 128, (6, 6)) * 2.0**-7

    def forward(x, rounder, relu):  # type: ignore[no-untyped-def]
        for w in weights:
            x = rounder.quantize(relu(x @ w), hidden)
        return rounder.quantize(relu(x + rounder.quantize(x @ shortcut, wide)), out)  # 4 -> 5 fraction bits

    inp = FixedVariableArrayInput((6,), hwconf=HWConfig(1, -1, -1))
    _exact_constant_fractions()
    y = forward(inp.quantize(1, 3, 4), _Da4mlRounder(), lambda v: v.relu())
    assert min(abs(float(v._factor)) for v in np.ravel(to_raw_arr(y))) < 2.0**-32
    values = np.clip(np.round(rng.uniform(-8, 8, (500, 6)) * 16) / 16, -8, 7.9375)  # in the input's range
    expected = forward(values, NumpyRounder(), lambda v: np.maximum(v, 0))
    got = comb_trace(inp, y).predict(values, n_threads=1)
    assert np.array_equal(got, expected)
    assert np.sum(expected == out.high) > 100  # the bound is reached: the saturating mux is exercised
    searched = fixed_variable._const_f.__wrapped__  # type: ignore[attr-defined]
    assert (searched(255 * 2.0**32), _const_fraction(255 * 2.0**32)) == (-31, -32)  # da4ml's search is off by one
    for c in (1.0, 0.5, 7.96875, 3 * 2.0**-20, -6.0, 2.0**31, Decimal("0.375"), Decimal(2) ** 40 * 255):
        assert _const_fraction(c) == (searched(c) if abs(c) < 2**32 else -40)


def _graph(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], n_in: int = 4, n_out: int = 2) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()],
    )
    return helper.make_model(graph)


def _quant(inp: str, out: str, prefix: str, **attrs: int) -> onnx.NodeProto:
    return helper.make_node(
        "Quant", [inp, f"{prefix}_s", f"{prefix}_z", f"{prefix}_b"], [out], domain="qonnx.custom_op.general",
        name=out, rounding_mode="ROUND", signed=attrs.get("signed", 1), narrow=attrs.get("narrow", 0),
    )  # fmt: skip


def _params(prefix: str, scale: float, bits: int) -> dict[str, np.ndarray]:
    return {f"{prefix}_s": np.array(scale), f"{prefix}_z": np.array(0.0), f"{prefix}_b": np.array(float(bits))}


def _mlp(op: str = "Relu", scale: float = 0.25) -> onnx.ModelProto:
    weight = np.arange(8, dtype=np.float32).reshape(4, 2) / 8 - 0.5
    nodes = [
        _quant("x", "xq", "in"),
        helper.make_node("MatMul", ["xq", "w"], ["acc"], name="fc"),
        helper.make_node(op, ["acc"], ["y"], name="act"),
    ]
    return _graph(nodes, {"w": weight, **_params("in", scale, 8)})


def test_graph_reading_and_exact_replay(tmp_path: Path) -> None:
    path = tmp_path / "g.onnx"
    onnx.save(_mlp(), str(path))
    graph = read_fixed_graph(path)
    assert graph.input_format == FixedFormat(True, 8, 2) and [s.op for s in graph.steps] == ["matmul", "relu"]
    x = np.array([[1.1, -2.0, 0.4, 100.0]])
    xq = np.clip(np.round(x * 4), -128, 127) / 4
    w = np.arange(8).reshape(4, 2) / 8 - 0.5
    assert np.array_equal(graph.reference(x), np.maximum(xq @ w, 0))


def test_an_operator_the_rtl_path_cannot_take_is_named(tmp_path: Path) -> None:
    path = tmp_path / "g.onnx"
    onnx.save(_mlp(op="Sigmoid"), str(path))
    with pytest.raises(ConfigError, match="node act: ONNX operator Sigmoid is not supported by the RTL path") as err:
        read_fixed_graph(path)
    assert "hls4ml FPGA target" in err.value.hint and err.value.exit_code == 2


def test_a_scale_that_is_not_a_power_of_two_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.onnx"
    onnx.save(_mlp(scale=0.3), str(path))
    with pytest.raises(ConfigError, match=r"scale 0\.3.* is not a power of two"):
        read_fixed_graph(path)


def test_a_corrupt_graph_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "g.onnx"
    path.write_bytes(b"\x00not onnx at all")
    with pytest.raises(InputError, match="is not a readable ONNX file"):
        read_fixed_graph(path)


def test_a_design_wider_than_the_emulator_word_is_refused() -> None:
    pytest.importorskip("da4ml", reason="the RTL backend needs the rtl extra: pip install 'edgekit[rtl]'")
    from edgekit.backends.rtl.io_layout import IoLayout, check_word_size
    from edgekit.backends.rtl.options import RtlOptions

    layout = IoLayout(inputs=((1, 3, 4),) * 2, outputs=((1, 20, 8), (1, 2, 16)))  # padded: 1 + 20 + 16 = 37 bits
    with pytest.raises(ConfigError, match=r"widest output needs 37 bits .* 32-bit word the verilator emulation"):
        check_word_size(layout, RtlOptions(emulation="verilator"))
    check_word_size(layout, RtlOptions(emulation="interpreter"))  # float64 holds 52 bits


def test_bus_packing_puts_element_zero_in_the_low_bits() -> None:
    pytest.importorskip("da4ml", reason="the RTL backend needs the rtl extra: pip install 'edgekit[rtl]'")
    from edgekit.backends.rtl.io_layout import IoLayout

    layout = IoLayout(inputs=((1, 2, 1), (0, 3, 0)), outputs=((1, 1, 2),))
    # -1.5 as signed 4-bit with 1 fraction bit = 0b1101; 5 as unsigned 3-bit = 0b101 -> 0b101_1101
    assert layout.bus_hex(np.array([[-1.5, 5.0]]), layout.inputs) == ["5d"]
    assert np.array_equal(layout.decode_outputs(np.array([[-3], [5]], dtype=np.int32)), [[-0.75], [1.25]])


def test_yosys_stat_parsing_and_part_families() -> None:
    log = """
=== edgekit_model ===

   Number of wires:               6011
   Number of cells:               9682
     CARRY4                       1636
     FDRE                         1566
     INV                           231
     LUT2                         4276
     LUT6                          202
     MUXF7                          42
     DSP48E2                         3

"""
    cells = parse_stat(log)
    assert cells == {"CARRY4": 1636, "FDRE": 1566, "INV": 231, "LUT2": 4276, "LUT6": 202, "MUXF7": 42, "DSP48E2": 3}
    assert family_for_part("xcvu13p-flga2577-2-e") == "xcup"
    assert family_for_part("xczu7ev-ffvc1156-2-e") == "xcup"
    assert family_for_part("xc7z020clg400-1") == "xc7"
    assert family_for_part("xcvu095-ffva2104-2-e") == "xcu"
    assert family_for_part("LFE5U-85F-6BG756C") == "ecp5"
    with pytest.raises(ConfigError, match="no synthesis family for part 'ep4ce6'"):
        family_for_part("ep4ce6")
    # yosys 0.70 prints the count first, and lists scope markers that are not cells of the part
    new = """
=== edgekit_model ===

        +----------Local Count, excluding submodules.
        |
     4743 wires
        3 ports
     4035 cells
      280   $scopeinfo
     1047   CCU2C
       26   L6MUX21
     1920   LUT4
      688   TRELLIS_FF

"""
    assert parse_stat(new) == {"$scopeinfo": 280, "CCU2C": 1047, "L6MUX21": 26, "LUT4": 1920, "TRELLIS_FF": 688}


def test_ecp5_part_numbers_and_the_nextpnr_report() -> None:
    from edgekit.backends.rtl.nextpnr import ecp5_device, parse_report

    assert ecp5_device("LFE5U-85F-6BG756C") == ecp5_device("lfe5u-85f-6bg756c")
    device = ecp5_device("LFE5UM5G-45F-8BG381I")
    assert (device.size, device.package, device.speed) == ("--um5g-45k", "CABGA381", 8)
    with pytest.raises(ConfigError, match="not an ECP5 part number"):
        ecp5_device("LFE5U-85F-6XX999C")
    step = {"cell": "a", "port": "Q", "loc": [1, 1]}
    report = {
        "fmax": {"clk": {"achieved": 41.5, "constraint": 50}},
        "utilization": {"TRELLIS_COMB": {"used": 100, "available": 83640}},
        "critical_paths": [
            {"from": "<async>", "to": "posedge clk", "path": [{"type": "routing", "delay": 9.0, "from": step,
                                                                "to": step}]},
            {"from": "posedge clk", "to": "posedge clk", "path": [
                {"type": "clk-to-q", "delay": 0.5, "from": step, "to": step},
                {"type": "routing", "delay": 1.5, "from": step, "to": step, "sources": ["src/edgekit_model.v:3"]},
                {"type": "logic", "delay": 0.25, "from": step, "to": {**step, "cell": "b", "port": "DI"},
                 "sources": ["/share/lattice/cells_sim.v:1", "src/edgekit_model.v:3"]},
            ]},
        ],
    }  # fmt: skip
    achieved, constraint, used, available, path = parse_report(report)
    assert (achieved, constraint, used, available["TRELLIS_COMB"]) == (41.5, 50.0, {"TRELLIS_COMB": 100}, 83640)
    assert path is not None and (path.start, path.end) == ("a.Q", "b.DI")  # the clock's own path, not the input's
    assert (path.logic_ns, path.routing_ns, path.delay_ns, path.cells) == (0.75, 1.5, 2.25, 1)
    assert path.sources == ("src/edgekit_model.v:3",)  # the design's lines, not the cell library's
