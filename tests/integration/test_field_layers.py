"""Layers and idioms of the field's models, quantized and compiled exactly: average pooling, depthwise
convolutions, x.view(x.size(0), -1).

The model is a user's (tests/fixtures/user_models/kws_cnn), not the zoo's: F.avg_pool2d over 2x2, a
depthwise-separable block (depthwise 3x3, pointwise 1x1), a global x.mean((2, 3)) over 4x4,
x.view(x.shape[0], -1) and Dropout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

pytest.importorskip("brevitas", reason="quantization tests need the quant extra: pip install 'edgekit[quant]'")
pytest.importorskip("hls4ml", reason="the FPGA targets need the fpga extra: pip install 'edgekit[fpga]'")


def top_source(result, target: str) -> str:  # type: ignore[no-untyped-def]
    """The HLS project's top C++ file, named after the build's top (``export.top_name``, else the model)."""
    project = result.manifest["artifacts"]["compiled"][target]["info"]["project"]
    return (result.build_dir / "targets" / target / "hls4ml_prj" / "firmware" / f"{project}.cpp").read_text()


KWS_CNN = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "kws_cnn"


def test_average_pooling_depthwise_and_the_view_idiom_are_exact_on_int8_and_both_hls4ml_io_types(
    tmp_path: Path,
) -> None:
    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xczu7ev-stream")
    result = compile_model(CompileRequest(str(KWS_CNN), targets, out=tmp_path / "b", tiny=True, quant="w8a8"))
    assert result.exit_code == 0
    for target in result.report.targets:
        assert target.status == "ok", target.reason
        assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0, target.target
    for family in ("fixed", "int8"):
        exported = result.manifest["artifacts"]["quant_exports"][family]
        assert set(exported["max_abs_diff_vs_brevitas"].values()) == {0.0}, family
    # Every form the user wrote became one ONNX AveragePool, in channels-last form for hls4ml ...
    clean = onnx.load(str(result.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    pools = [n for n in clean.graph.node if n.op_type == "AveragePool"]
    assert len(pools) == 2 and all(n.domain == "qonnx.custom_op.channels_last" for n in pools)
    assert [list(next(a.ints for a in n.attribute if a.name == "kernel_shape")) for n in pools] == [[2, 2], [4, 4]]
    # The depthwise convolution reached hls4ml as one (a Conv with group == channels) ...
    groups = [next((a.i for a in n.attribute if a.name == "group"), 1) for n in clean.graph.node if n.op_type == "Conv"]
    assert sorted(groups) == [1, 1, 8]
    # ... and the reshape sized by x.shape[0] runs at any batch (the QCDQ graph is run by ONNX Runtime).
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(result.build_dir / "export-int8" / "model.qcdq.onnx"), providers=["CPUExecutionProvider"]
    )
    x = np.load(result.build_dir / "float" / "golden_inputs.npy")[:7]
    assert session.run(None, {"input": x})[0].shape == (7, 4)
    # The mean of a ReLU's output re-quantizes unsigned (no bit spent on a sign it cannot have).
    import json

    quantized = json.loads((result.build_dir / "quant-fixed" / "quantize.json").read_text())
    plan = {layer["name"]: layer for layer in quantized["plan"]["layers"]}
    assert plan["avg_pool2d"]["activation_signed"] is False and plan["mean"]["activation_signed"] is False


TANH_TAGGER = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "tanh_tagger"


def test_sigmoid_and_tanh_are_table_activations_exact_on_int8_and_both_hls4ml_io_types(tmp_path: Path) -> None:
    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xczu7ev-stream")
    result = compile_model(CompileRequest(str(TANH_TAGGER), targets, out=tmp_path / "b", tiny=True, quant="w8a8"))
    for target in result.report.targets:
        assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0, target.target
    assert result.exit_code == 0
    # Each of the three forms (nn.Tanh, torch.tanh, x.sigmoid()) sits between two quantizers in the graph.
    clean = onnx.load(str(result.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    ops = [n.op_type for n in clean.graph.node]
    assert sorted(op for op in ops if op in ("Sigmoid", "Tanh")) == ["Sigmoid", "Tanh", "Tanh"]
    for index, op in enumerate(ops):
        if op in ("Sigmoid", "Tanh"):
            assert ops[index - 1] == ops[index + 1] == "Quant", ops
    # hls4ml got one table entry per input code, its table type the output quantizer's (rounded once).
    import json

    stage = json.loads((result.build_dir / "targets" / "cpu-onnxruntime-int8" / "stage.json").read_text())
    assert stage["artifact"]["info"]["qdq_fusion"].startswith("off (the graph has Sigmoid, Tanh")
    defines = (result.build_dir / "targets" / "fpga-xcvu13p" / "hls4ml_prj" / "firmware" / "defines.h").read_text()
    assert "typedef ap_ufixed<8,0,AP_RND_CONV,AP_SAT,0> Sigmoid_0_table_t;" in defines  # not its default type


def _exact_with_op_between_quants(result, op_type: str, count: int) -> None:  # type: ignore[no-untyped-def]
    """Every target 0 LSB on >= 1000 samples, and ``count`` ``op_type`` nodes each between two Quant nodes."""
    for target in result.report.targets:
        assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0, target.target
    assert result.exit_code == 0
    clean = onnx.load(str(result.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    ops = [n.op_type for n in clean.graph.node]
    assert ops.count(op_type) == count
    for index, op in enumerate(ops):
        if op == op_type:
            assert ops[index - 1] == ops[index + 1] == "Quant", ops


LEAKY_TAGGER = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "leaky_tagger"


def test_leaky_relu_at_slopes_that_are_not_powers_of_two_is_exact_on_int8_and_both_hls4ml_io_types(
    tmp_path: Path,
) -> None:
    """nn.LeakyReLU() (0.01) and F.leaky_relu(x, 0.2): the slopes quantized so that float32 products are exact,
    and hls4ml's slope type holds each of them exactly."""
    import json

    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xczu7ev-stream")
    result = compile_model(CompileRequest(str(LEAKY_TAGGER), targets, out=tmp_path / "b", tiny=True, quant="w8a8"))
    _exact_with_op_between_quants(result, "LeakyRelu", 2)
    stage = json.loads((result.build_dir / "targets" / "cpu-onnxruntime-int8" / "stage.json").read_text())
    assert stage["artifact"]["info"]["qdq_fusion"].startswith("off (the graph has LeakyRelu")
    firmware = result.build_dir / "targets" / "fpga-xcvu13p" / "hls4ml_prj" / "firmware"
    defines = (firmware / "defines.h").read_text()
    # the slopes quantized to 16 fraction bits (8-bit inputs): 0.01 -> 655 / 2**16, 0.2 -> 13107 / 2**16
    assert "typedef ap_fixed<17,1> leakyrelu_0_param_t;" in defines
    assert "typedef ap_fixed<17,1> leakyrelu_1_param_t;" in defines
    cpp = top_source(result, "fpga-xcvu13p")
    assert f"{655 / 2**16!r}" in cpp and f"{13107 / 2**16!r}" in cpp, "the slopes the twin computes with"


CLAMP_TAGGER = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "clamp_tagger"


def test_hardtanh_in_every_form_is_exact_on_int8_and_both_hls4ml_io_types(tmp_path: Path) -> None:
    """nn.Hardtanh(), F.hardtanh(x) and x.clamp(-1, 1): hls4ml's hard_tanh on io_parallel and io_stream."""
    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xczu7ev-stream")
    request = CompileRequest(str(CLAMP_TAGGER), targets, out=tmp_path / "b", tiny=True, quant="w8a8",
                             overrides=("model_options.variant=hardtanh",))  # fmt: skip
    result = compile_model(request)
    _exact_with_op_between_quants(result, "Clip", 3)
    for target in ("fpga-xcvu13p", "fpga-xczu7ev-stream"):
        cpp = top_source(result, target)
        assert cpp.count("nnet::hard_tanh<") == 3, target


def test_relu6_and_a_clamp_to_zero_one_are_exact_on_int8_and_hls4ml_io_parallel(tmp_path: Path) -> None:
    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p")
    result = compile_model(CompileRequest(str(CLAMP_TAGGER), targets, out=tmp_path / "b", tiny=True, quant="w8a8"))
    for target in result.report.targets:
        assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0, target.target
    assert result.exit_code == 0
    cpp = top_source(result, "fpga-xcvu13p")
    assert "nnet::relu6<" in cpp and "nnet::hard_tanh<" in cpp and "nnet::relu1<" in cpp


def test_a_clamp_hls4ml_has_no_kernel_for_is_exact_on_int8(tmp_path: Path) -> None:
    request = CompileRequest(str(CLAMP_TAGGER), ("cpu-onnxruntime-int8",), out=tmp_path / "b", tiny=True,
                             quant="w8a8", overrides=("model_options.variant=wide",))  # fmt: skip
    result = compile_model(request)
    assert result.exit_code == 0
    (target,) = result.report.targets
    assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0
    clean = onnx.load(str(result.build_dir / "export-int8" / "model.qonnx.clean.onnx"))
    values = {i.name: onnx.numpy_helper.to_array(i) for i in clean.graph.initializer}
    bounds = [(float(values[n.input[1]]), float(values[n.input[2]])) for n in clean.graph.node if n.op_type == "Clip"]
    assert sorted(bounds) == [(-2.0, 2.0), (0.0, 1.0), (0.0, 6.0)], bounds


HARDSIGMOID_TAGGER = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "hardsigmoid_tagger"


def test_hard_sigmoid_is_exact_on_int8_and_both_hls4ml_io_types(tmp_path: Path) -> None:
    """nn.Hardsigmoid and F.hardsigmoid: ONNX HardSigmoid, and hls4ml's hard_sigmoid with the slope 1/6 in
    32 fraction bits (every input code checked against the table when the model is built)."""
    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xczu7ev-stream")
    result = compile_model(CompileRequest(str(HARDSIGMOID_TAGGER), targets, out=tmp_path / "b", tiny=True,
                                          quant="w8a8"))  # fmt: skip
    _exact_with_op_between_quants(result, "HardSigmoid", 2)
    for target in ("fpga-xcvu13p", "fpga-xczu7ev-stream"):
        firmware = result.build_dir / "targets" / target / "hls4ml_prj" / "firmware"
        assert top_source(result, target).count("nnet::hard_sigmoid<") == 2, target
        assert (firmware / "defines.h").read_text().count("ap_ufixed<32,0> slope") == 2, target


def test_hard_swish_is_a_product_with_a_hard_sigmoid_exact_on_int8_and_both_hls4ml_io_types(tmp_path: Path) -> None:
    """nn.Hardswish and F.hardswish, quantized as x * hardsigmoid(x): a table activation and a product."""
    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xczu7ev-stream")
    request = CompileRequest(str(HARDSIGMOID_TAGGER), targets, out=tmp_path / "b", tiny=True, quant="w8a8",
                             overrides=("model_options.variant=hardswish",))  # fmt: skip
    result = compile_model(request)
    _exact_with_op_between_quants(result, "HardSigmoid", 2)
    for target in ("fpga-xcvu13p", "fpga-xczu7ev-stream"):
        cpp = top_source(result, target)
        assert cpp.count("nnet::hard_sigmoid<") == 2 and cpp.count("nnet::multiply<") == 2, target


HARDSWISH_CNN = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "hardswish_cnn"


def test_hard_swish_on_feature_maps_is_exact_on_int8_and_refused_for_hls4ml_before_any_work(tmp_path: Path) -> None:
    from edgekit.core.errors import ConfigError
    from edgekit.pipeline.plan import plan_build

    result = compile_model(CompileRequest(str(HARDSWISH_CNN), ("cpu-onnxruntime-int8",), out=tmp_path / "b",
                                          tiny=True, quant="w8a8"))  # fmt: skip
    (target,) = result.report.targets
    assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0 and result.exit_code == 0
    with pytest.raises(ConfigError, match=r"fpga-xcvu13p: act_product: a product of feature maps"):
        plan_build(CompileRequest(str(HARDSWISH_CNN), ("fpga-xcvu13p",), out=tmp_path / "c", tiny=True, quant="w8a8"))


GATED_TAGGER = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "gated_tagger"


def test_element_wise_products_are_exact_on_int8_and_both_hls4ml_io_types(tmp_path: Path) -> None:
    """a * sigmoid(b) and torch.mul(a, tanh(b)): each operand re-quantized, the product of codes exact, one
    rounding after it; hls4ml's Merge multiply on io_parallel and io_stream."""
    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xczu7ev-stream")
    result = compile_model(CompileRequest(str(GATED_TAGGER), targets, out=tmp_path / "b", tiny=True, quant="w8a8"))
    for target in result.report.targets:
        assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0, target.target
    assert result.exit_code == 0
    clean = onnx.load(str(result.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    producers = {out: n for n in clean.graph.node for out in n.output}
    products = [n for n in clean.graph.node if n.op_type == "Mul" and all(i in producers for i in n.input)]
    assert len(products) == 2 and all(producers[i].op_type == "Quant" for n in products for i in n.input)
    for target in ("fpga-xcvu13p", "fpga-xczu7ev-stream"):
        cpp = top_source(result, target)
        assert cpp.count("nnet::multiply<") == 2, target


HIT_AUTOENCODER = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "hit_autoencoder"


def test_an_autoencoder_decoder_that_upsamples_is_exact_on_int8_and_both_hls4ml_io_types(tmp_path: Path) -> None:
    targets = ("cpu-onnxruntime-int8", "fpga-xcvu13p", "fpga-xczu7ev-stream")
    result = compile_model(CompileRequest(str(HIT_AUTOENCODER), targets, out=tmp_path / "b", tiny=True, quant="w8a8"))
    for target in result.report.targets:
        assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0, target.target
    assert result.exit_code == 0
    # hls4ml reads the Resize channels last, with a constant RoI: edgekit moved it behind the Transpose.
    clean = onnx.load(str(result.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    resize = next(n for n in clean.graph.node if n.op_type == "Resize")
    scales = next(i for i in clean.graph.initializer if i.name == resize.input[2])
    assert list(onnx.numpy_helper.to_array(scales)) == [1.0, 2.0, 2.0, 1.0]  # N, H, W, C
    assert resize.input[1] != ""


def test_a_transposed_convolution_decoder_is_exact_on_int8(tmp_path: Path) -> None:
    request = CompileRequest(
        str(HIT_AUTOENCODER), ("cpu-onnxruntime-int8",), out=tmp_path / "b", tiny=True, quant="w8a8",
        overrides=("model_options.decoder=transpose",),
    )  # fmt: skip
    result = compile_model(request)
    assert result.exit_code == 0
    (target,) = result.report.targets
    assert target.status == "ok" and target.max_abs_diff_vs_quantized == 0.0
    qcdq = onnx.load(str(result.build_dir / "export-int8" / "model.qcdq.onnx"))
    assert "ConvTranspose" in {n.op_type for n in qcdq.graph.node}


def test_a_softmax_head_is_left_to_the_host_and_the_logits_are_exact(tmp_path: Path) -> None:
    request = CompileRequest(
        str(TANH_TAGGER), ("cpu-onnxruntime-int8", "fpga-xcvu13p"), out=tmp_path / "b", tiny=True, quant="w8a8",
        overrides=("model_options.head=softmax",),
    )  # fmt: skip
    result = compile_model(request)
    assert result.exit_code == 0
    references = {r.target: r for r in result.report.extra_references}
    for row in (*result.report.targets, references["quantized reference (int8)"]):
        assert row.host_head == "softmax", row.target
        # Compared with the float model's probabilities after the host's softmax: both lie in [0, 1].
        assert row.max_abs_diff_vs_float < 1.0 and row.top1_agreement > 0.5
    for target in result.report.targets:
        assert target.max_abs_diff_vs_quantized == 0.0, target.target  # the logits, bit for bit
    qcdq = onnx.load(str(result.build_dir / "export-int8" / "model.qcdq.onnx"))
    assert "Softmax" not in {n.op_type for n in qcdq.graph.node}
    logits = np.load(result.build_dir / "quant-int8" / "golden_quant_outputs.npy")
    assert logits.min() < 0.0 or logits.max() > 1.0  # logits, not probabilities
    from edgekit.report.markdown import results_table

    assert "the model's last step (softmax) is applied on the host" in results_table(result.report)
