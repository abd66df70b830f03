"""Matching layer outputs across formats by kind and position, and naming the first that differs."""

from __future__ import annotations

import numpy as np

from edgekit.localize import first_divergence

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
