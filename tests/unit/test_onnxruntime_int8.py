"""ONNX Runtime's fused INT8 kernels are used only where they compute exactly what the QCDQ graph says.

Without VNNI, x86 ONNX Runtime adds two u8*s8 products in a saturating int16; the graph below plants
weights whose pairs overflow it (100 + 100 > 128) beside activations at the int8 extreme.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.onnxruntime import OnnxRuntimeBackend, has_vnni, saturating_layers
from edgekit.core.artifacts import ExportedGraph
from edgekit.core.targets import load_target

ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (a core dependency)")


def qcdq_gemm(weights: np.ndarray) -> onnx.ModelProto:
    """x -> Q/DQ (scale 1) -> Gemm with int8 weight codes (Clip, DQ, as brevitas writes them) -> Q/DQ (scale 256)."""
    k, n = weights.shape
    consts = {
        "w": weights.astype(np.int8), "w_lo": np.int8(-127), "w_hi": np.int8(127), "one": np.float32(1.0),
        "zero": np.int8(0), "out_scale": np.float32(256.0),
    }  # fmt: skip
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "one", "zero"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "one", "zero"], ["xd"]),
        helper.make_node("Clip", ["w", "w_lo", "w_hi"], ["wc"]),
        helper.make_node("DequantizeLinear", ["wc", "one", "zero"], ["wd"]),
        helper.make_node("Gemm", ["xd", "wd"], ["y"], name="fc"),
        helper.make_node("QuantizeLinear", ["y", "out_scale", "zero"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "out_scale", "zero"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "planted",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", n])],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in consts.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def planted_weights(magnitude: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    weights = rng.integers(-magnitude, magnitude + 1, (64, 8))
    weights[:2] = magnitude  # the first pair of every output: two products of the largest weight
    return weights


def test_weights_whose_largest_pair_exceeds_128_are_found_per_output() -> None:
    assert saturating_layers(qcdq_gemm(planted_weights(100))) == ["fc"]
    assert saturating_layers(qcdq_gemm(planted_weights(64))) == []  # 255 * 128 fits an int16
    weights = np.zeros((64, 8), dtype=np.int64)
    weights[0, :] = 127  # one large weight per output, and 127 + 1 = 128 with the next: still safe
    weights[1, :] = 1
    assert saturating_layers(qcdq_gemm(weights)) == []
    weights[2, 3] = 2  # output 3 now pairs 127 with 2
    assert saturating_layers(qcdq_gemm(weights)) == ["fc"]


def test_the_int8_target_is_exact_on_weights_that_saturate_fused_kernels(tmp_path: Path) -> None:
    graph_path = tmp_path / "model.qcdq.onnx"
    onnx.save(qcdq_gemm(planted_weights(100)), str(graph_path))
    target = load_target("cpu-onnxruntime-int8")
    backend = OnnxRuntimeBackend()
    out_dir = tmp_path / "target"
    out_dir.mkdir()
    artifact = backend.compile(
        ExportedGraph(graph_path.name, "qcdq", "x", "out", 17, "test"), graph_path, target, out_dir
    )
    x = np.full((3, 64), -128.0, dtype=np.float32)
    x[1] = 127.0
    x[2] = np.random.default_rng(1).integers(-128, 128, 64)
    # The reference: the QCDQ arithmetic in float64 (integers: exact), quantized to the output's scale 256.
    expected = np.clip(np.round(x.astype(np.float64) @ planted_weights(100) / 256.0), -128, 127) * 256.0
    runner = backend.load(artifact, out_dir / artifact.path, target)
    try:
        assert np.array_equal(runner.run(x), expected.astype(np.float32))
    finally:
        runner.close()
    fusion = artifact.info["qdq_fusion"]
    if has_vnni():  # 32-bit sums: the fused kernels are exact and stay on
        assert fusion == "on"
    else:
        assert fusion.startswith("off (int8 weights whose products can saturate") and fusion.endswith(": fc)")


def test_onnxruntimes_fused_qlinear_mul_equals_the_exact_product_over_every_pair_of_codes(tmp_path: Path) -> None:
    """An element-wise product's QCDQ form (two DequantizeLinear -> Mul -> QuantizeLinear) is fused into
    QLinearMul by ONNX Runtime; over all 65,536 pairs of int8 codes it equals the exact product rounded half to
    even, so Mul keeps Q/DQ fusion on."""

    def session(scales: tuple[float, float, float], fused: bool) -> ort.InferenceSession:
        inits = [numpy_helper.from_array(np.array(v, dtype=t), n) for n, v, t in (
            ("sa", scales[0], np.float32), ("sb", scales[1], np.float32), ("sy", scales[2], np.float32),
            ("z", 0, np.int8))]  # fmt: skip
        nodes = [
            helper.make_node("QuantizeLinear", ["a", "sa", "z"], ["qa"]),
            helper.make_node("DequantizeLinear", ["qa", "sa", "z"], ["da"]),
            helper.make_node("QuantizeLinear", ["b", "sb", "z"], ["qb"]),
            helper.make_node("DequantizeLinear", ["qb", "sb", "z"], ["db"]),
            helper.make_node("Mul", ["da", "db"], ["p"]),
            helper.make_node("QuantizeLinear", ["p", "sy", "z"], ["qy"]),
            helper.make_node("DequantizeLinear", ["qy", "sy", "z"], ["y"]),
        ]
        value = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None]) for n in ("a", "b", "y")]
        model = helper.make_model(helper.make_graph(nodes, "g", value[:2], value[2:], inits),
                                  opset_imports=[helper.make_opsetid("", 13)])  # fmt: skip
        model.ir_version = 8
        options = ort.SessionOptions()
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL if fused else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        options.optimized_model_filepath = str(tmp_path / f"optimized-{fused}.onnx")
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    codes_a, codes_b = (c.ravel() for c in np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)))
    for scales in ((2**-4, 2**-4, 2**-5), (2**-5, 2**-7, 2**-8), (2**-3, 2**-6, 2**-2)):
        feeds = {"a": (codes_a * scales[0]).astype(np.float32), "b": (codes_b * scales[1]).astype(np.float32)}
        product = codes_a * codes_b * (scales[0] * scales[1] / scales[2])  # exact in float64
        expected = np.clip(np.round(product), -128, 127) * scales[2]
        for fused in (False, True):
            y = session(scales, fused).run(None, feeds)[0]
            assert np.array_equal(y, expected), (scales, fused, int(np.sum(y != expected)))
        fused_ops = [n.op_type for n in onnx.load(str(tmp_path / "optimized-True.onnx")).graph.node]
        assert "QLinearMul" in fused_ops, fused_ops
