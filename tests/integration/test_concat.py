"""torch.cat under --quant: the operands re-quantized by one quantizer, exact on INT8 and (flat features)
hls4ml; feature maps refused for hls4ml and every join refused for the RTL path, before any work.

The models are a user's: a two-branch tagger (tests/fixtures/user_models/branch_tagger) and an
inception-style CNN (tests/fixtures/catnets.py) that joins a 3x3 and a 1x1 branch on the channels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.onnxruntime import QCDQ_DISABLED_OPTIMIZERS
from edgekit.core.errors import ConfigError
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

pytest.importorskip("brevitas", reason="quantization tests need the quant extra: pip install 'edgekit[quant]'")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BRANCH_TAGGER = FIXTURES / "user_models" / "branch_tagger"


def test_onnxruntime_merges_a_requantization_unless_its_pair_remover_is_off() -> None:
    """Q(1/16) -> DQ -> Q(1/4) -> DQ, the requantization a join adds: ONNX Runtime's DoubleQDQPairsRemover
    (from the "basic" level) merges the pair and rounds once, which is not what the graph says."""
    inits = [numpy_helper.from_array(np.array(v, dtype=t), n)
             for n, v, t in (("s1", 0.0625, np.float32), ("s2", 0.25, np.float32), ("z", 0, np.int8))]  # fmt: skip
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s1", "z"], ["q1"]),
        helper.make_node("DequantizeLinear", ["q1", "s1", "z"], ["d1"]),
        helper.make_node("QuantizeLinear", ["d1", "s2", "z"], ["q2"]),
        helper.make_node("DequantizeLinear", ["q2", "s2", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "requant", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    x = (np.arange(-64, 64, dtype=np.float32) / 8 + 1 / 32).reshape(32, 4)  # between the 1/16 steps
    codes = np.clip(np.round(x / 0.0625), -128, 127)
    expected = np.clip(np.round(codes * 0.0625 / 0.25), -128, 127) * 0.25
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    outputs = {}
    for disabled in ([], list(QCDQ_DISABLED_OPTIMIZERS)):
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
        )
        outputs[bool(disabled)] = session.run(None, {"x": x})[0]
    assert np.array_equal(outputs[True], expected)
    assert not np.array_equal(outputs[False], expected)  # what edgekit's INT8 target would compute without it


def test_a_two_branch_tagger_is_exact_on_int8_and_both_hls4ml_io_types(tmp_path: Path) -> None:
    pytest.importorskip("hls4ml", reason="the FPGA targets need the fpga extra: pip install 'edgekit[fpga]'")
    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xczu7ev-stream")
    result = compile_model(CompileRequest(str(BRANCH_TAGGER), targets, out=tmp_path / "b", tiny=True, quant="w8a8"))
    for target in result.report.targets:
        assert target.status == "ok", target.reason
        assert target.max_abs_diff_vs_quantized == 0.0, target.target
    qcdq = onnx.load(str(result.build_dir / "export-int8" / "model.qcdq.onnx"))
    assert "Concat" in {n.op_type for n in qcdq.graph.node}
    info = result.manifest["artifacts"]["compiled"]["cpu-onnxruntime-int8"]["info"]
    assert info["disabled_optimizers"] == ["DoubleQDQPairsRemover"]


def test_joined_feature_maps_are_exact_on_int8_and_refused_for_the_fpga_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))  # catnets.py
    result = compile_model(
        CompileRequest(
            "catnets:build", ("cpu-onnxruntime-int8",), out=tmp_path / "b", recipe="lenet_digits", tiny=True,
            quant="w6a8",
        )
    )  # fmt: skip
    (target,) = result.report.targets
    assert target.status == "ok" and target.max_abs_diff_vs_quantized == 0.0
    for name, reason in (
        ("fpga-xczu7ev-stream", "a torch.cat of feature maps: qonnx's channels-last conversion"),
        ("fpga-xcvu13p-rtl", "the RTL path has no concatenation"),
    ):
        out = tmp_path / name
        with pytest.raises(ConfigError) as err:
            compile_model(
                CompileRequest("catnets:build", (name,), out=out, recipe="lenet_digits", tiny=True, quant="w6a8")
            )
        assert reason in str(err.value) and err.value.exit_code == 2
        assert not out.exists()
