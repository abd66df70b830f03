"""Matching layer outputs across formats by kind and position, and naming the first that differs."""

from __future__ import annotations

import numpy as np

from edgekit.model.localize import first_divergence

A = np.arange(8, dtype=np.float32).reshape(2, 4)


def test_identical_traces_have_no_divergence() -> None:
    ref = [("input_quant", "input", A), ("fc1", "weighted", A), ("relu1", "relu", A)]
    target = [("Quant_0_act", "input", A.copy()), ("Dense_MatMul_0", "weighted", A.copy()), ("Relu_0", "relu", A)]
    assert first_divergence(ref, target) is None


def test_first_differing_layer_is_named_with_both_names() -> None:
    bad = A.copy()
    bad[1, 2] += 0.25
    ref = [("fc1", "weighted", A), ("relu1", "relu", A), ("fc2", "weighted", A), ("relu2", "relu", A)]
    target = [("Dense_MatMul_0", "weighted", A), ("Relu_0", "relu", A), ("Dense_MatMul_1", "weighted", bad),
              ("Relu_1", "relu", bad)]  # fmt: skip
    found = first_divergence(ref, target)
    assert found is not None
    assert (found.reference_layer, found.target_layer, found.kind) == ("fc2", "Dense_MatMul_1", "weighted")
    assert found.max_abs_diff == 0.25 and (found.samples, found.traced) == (1, 2)
    assert "first diverging layer: fc2 (target layer Dense_MatMul_1" in found.describe()


def test_layers_missing_on_one_side_are_skipped() -> None:
    ref = [("fc1", "weighted", A), ("relu1", "relu", A)]
    assert first_divergence(ref, [("Dense_MatMul_0", "weighted", A)]) is None


def test_a_float_target_departs_only_beyond_its_format_tolerance() -> None:
    """fp32 rounding noise is not a departure; a difference larger than the format explains is, named by layer."""
    from edgekit.model.localize import LAYER_TOLERANCE

    big = A * 100  # layer values up to 700: the tolerance scales with them
    noisy = big + 1e-3  # 1.4e-6 relative: fp32 arithmetic in another order
    ref = [("relu1", "relu", big), ("relu2", "relu", big)]
    assert first_divergence(ref, [("r1", "relu", noisy), ("r2", "relu", noisy)], LAYER_TOLERANCE["fp32"]) is None
    broken = big.copy()
    broken[0, 1] += 0.5  # 7e-4 relative: more than fp32 explains, less than fp16's tolerance
    found = first_divergence(ref, [("r1", "relu", noisy), ("r2", "relu", broken)], LAYER_TOLERANCE["fp32"])
    assert found is not None and found.reference_layer == "relu2" and found.samples == 1
    assert first_divergence(ref, [("r1", "relu", noisy), ("r2", "relu", broken)], LAYER_TOLERANCE["fp16"]) is None
    assert first_divergence(ref, [("r1", "relu", noisy), ("r2", "relu", broken)]) is not None  # exact: any bit
