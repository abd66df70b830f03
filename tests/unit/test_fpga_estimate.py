"""The analytical FPGA estimate: pruning, reuse, operand widths and io type move it the right way."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edgekit.backends.hls4ml.estimate import CALIBRATION, PUBLISHED, LayerFacts, estimate
from edgekit.core.targets import load_target

DENSE = LayerFacts("fc", "dense", weights=1024, nonzero_weights=1024, weight_bits=6, input_bits=8,
                   accumulator_bits=18, outputs_per_pass=64)  # fmt: skip
CONV = LayerFacts("conv", "conv", weights=72, nonzero_weights=72, weight_bits=6, input_bits=8,
                  accumulator_bits=16, outputs_per_pass=8, passes=64)  # fmt: skip


@pytest.fixture()
def vu13p():  # type: ignore[no-untyped-def]
    fpga = load_target("fpga-xcvu13p").fpga
    assert fpga is not None
    return fpga


def test_pruned_zeros_are_free(vu13p) -> None:  # type: ignore[no-untyped-def]
    dense = estimate([DENSE], vu13p)
    pruned = estimate([replace(DENSE, nonzero_weights=256)], vu13p)
    assert dense.layers[0].multipliers == 1024 and pruned.layers[0].multipliers == 256
    assert pruned.lut < 0.3 * dense.lut


def test_reuse_factor_divides_multipliers_and_raises_the_interval(vu13p) -> None:  # type: ignore[no-untyped-def]
    reused = estimate([replace(DENSE, reuse_factor=4)], vu13p)
    assert reused.layers[0].multipliers == 256
    assert reused.initiation_interval == 4 and reused.latency_cycles > estimate([DENSE], vu13p).latency_cycles


def test_wide_operands_go_to_dsps(vu13p) -> None:  # type: ignore[no-untyped-def]
    narrow = estimate([DENSE], vu13p)
    wide = estimate([replace(DENSE, weight_bits=16, input_bits=16)], vu13p)
    assert narrow.dsp == 0 and wide.uncalibrated["dsp"] == 1024 and wide.layers[0].multipliers == 1024
    assert wide.dsp == round(1024 * CALIBRATION["dsp"].coefficient)
    assert wide.utilization["dsp"] == pytest.approx(wide.dsp / 12288)


def test_latency_in_ns_and_stream_overlap(vu13p) -> None:  # type: ignore[no-untyped-def]
    parallel = estimate([CONV, DENSE], vu13p)
    assert parallel.latency_ns == parallel.latency_cycles * 5.0
    formula = sum(layer.latency_cycles for layer in parallel.layers)
    assert parallel.uncalibrated["latency_ns"] == formula * 5.0
    assert parallel.latency_cycles == round(formula * CALIBRATION["latency_ns"].coefficient)
    assert parallel.initiation_interval == 64  # one output pixel per cycle for 8x8 pixels
    stream = estimate([CONV, DENSE], replace(vu13p, io_type="io_stream"))
    assert stream.latency_cycles < formula  # overlapped layers (and not calibrated: the fit was io_parallel)
    assert not stream.band and "uncalibrated" in stream.method and stream.lut == stream.uncalibrated["lut"]


def test_resource_strategy_puts_weights_in_bram(vu13p) -> None:  # type: ignore[no-untyped-def]
    latency = estimate([DENSE], vu13p)
    resource = estimate([replace(DENSE, reuse_factor=16)], replace(vu13p, strategy="resource"))
    assert latency.bram_18k == 0 and resource.bram_18k > 0


def test_power_of_two_weights_are_shifts_not_multipliers(vu13p) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from edgekit.backends.hls4ml.layer_facts import _shift_weights

    # 6-bit weights on a 2^-3 grid: +-2^k (0.125, -0.5, 1, -2) and others (0.375, -0.75, 3.875)
    weights = np.array([[0.125, -0.5, 1.0, -2.0], [0.375, -0.75, 3.875, 0.0]])
    assert _shift_weights(weights) == 4
    wide = replace(DENSE, weight_bits=16, input_bits=16)
    plain, shifts = estimate([wide], vu13p), estimate([replace(wide, shift_weights=256)], vu13p)
    assert (
        shifts.layers[0].multipliers == 768 and shifts.uncalibrated["dsp"] == 768 and plain.uncalibrated["dsp"] == 1024
    )
    narrow = estimate([replace(DENSE, shift_weights=1024)], vu13p)
    assert narrow.layers[0].multipliers == 0 and narrow.lut < estimate([DENSE], vu13p).lut  # adders remain
    assert narrow.lut > 0


def test_calibration_is_the_fit_of_the_published_rows_and_its_band_is_reported(vu13p) -> None:  # type: ignore[no-untyped-def]
    """The factors are what bench/bench_calibration.py fits (geometric mean), the band is the rows' spread."""
    import math

    # the per-row ratios published / formula that bench_calibration.py printed (see CALIBRATION's comment)
    ratios = {"lut": [1.352, 1.56, 0.65], "ff": [0.076, 0.071, 0.117], "dsp": [0.435, 0.266],
              "latency_ns": [0.286, 0.286, 0.25]}  # fmt: skip
    assert [row.name for row in PUBLISHED] == ["16-bit PTQ", "14-bit PTQ", "6-bit QAT"]
    for key, values in ratios.items():
        fitted = math.exp(sum(map(math.log, values)) / len(values))
        assert CALIBRATION[key].coefficient == pytest.approx(fitted, rel=0.01), key
        low, high = CALIBRATION[key].band
        assert low == pytest.approx(min(values) / fitted, rel=0.01) and high == pytest.approx(
            max(values) / fitted, rel=0.01
        )
    est = estimate([DENSE], vu13p)
    assert est.band["lut"] == CALIBRATION["lut"].band and "calibrated to arXiv:2103.05579" in est.method
    assert est.lut == round(est.uncalibrated["lut"] * CALIBRATION["lut"].coefficient)


def test_distributed_arithmetic_takes_da4ml_cost_and_depth(vu13p) -> None:  # type: ignore[no-untyped-def]
    da = replace(vu13p, strategy="distributed_arithmetic")
    shallow = estimate([replace(DENSE, da_lut=1234.4, da_depth=4)], da)
    deep = estimate([replace(DENSE, da_lut=1234.4, da_depth=11)], da)
    assert shallow.lut == 1234 and shallow.dsp == 0 and shallow.layers[0].multipliers == 0
    assert shallow.latency_cycles == 2 and deep.latency_cycles == 4  # ceil(depth / 5 levels at 5 ns) + 1
    assert deep.ff == 2 * shallow.ff  # one accumulator-wide row per stage: 4 stages against 2
    slower = estimate([replace(DENSE, da_depth=11)], replace(da, clock_period_ns=10.0))
    assert slower.latency_cycles == 3 and slower.latency_ns == 30.0  # 10 levels a cycle at 10 ns: 2 + 1
    assert "da4ml" in shallow.method and not shallow.band  # not calibrated: no published DA design


def test_adder_depth_is_read_from_da4mls_code() -> None:
    from edgekit.backends.hls4ml.layer_facts import _adder_depth

    code = "ap_fixed<8,4> v0 = model_inp[0]; // 0.0\n  ap_fixed<9,5> v1 = v0 + v2; // 3.0\n  v9 = v1 - v3; // 7.5\n"
    assert _adder_depth(code) == 8
    assert _adder_depth("") == 0
