"""Pruning: unstructured, structured (channels removed) and 2:4, fine-tuned, reported, and kept through QAT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgekit.core.errors import ConfigError
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

pytest.importorskip("torch_pruning", reason="pruning tests need the quant extra: pip install 'edgekit[quant]'")

FAST = ("prune.steps=2", "prune.finetune_epochs=1")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)
    return {k: v for k, v in state.items() if k.endswith("weight")}


def test_unstructured_global_sparsity_kept_through_qat(tmp_path: Path) -> None:
    result = compile_model(
        CompileRequest(
            "jet_tagger",
            ("cpu-onnxruntime", "cpu-onnxruntime-int8"),
            out=tmp_path / "b",
            tiny=True,
            prune="0.8",
            quant="int8",
            overrides=FAST,
        )
    )
    root = result.build_dir
    weights = _weights(root / "pruned" / "model.pt")
    total = sum(w.numel() for w in weights.values())
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert zeros / total == pytest.approx(0.8, abs=0.01)
    pruning = result.manifest["pruning"]
    assert pruning["after"]["totals"]["nonzero_macs"] < 0.25 * pruning["before"]["totals"]["macs"]
    assert "## Pruning" in (root / "report.md").read_text()

    # QAT fine-tunes the pruned weights with the same zeros held in place.
    quant_state = _weights(root / "quant-int8" / "quant_model.pt")
    for name, w in weights.items():
        assert bool((quant_state[name][w == 0] == 0).all()), f"{name}: a pruned weight came back during QAT"

    # The fp32 target runs the pruned model and agrees with it; the metric drop is against the unpruned float.
    fp32, int8 = result.report.targets
    assert fp32.max_abs_diff_vs_float < 1e-4 and int8.max_abs_diff_vs_quantized == 0.0
    assert result.report.extra_references[0].target == "pruned float reference"


def test_structured_pruning_removes_channels(tmp_path: Path) -> None:
    result = compile_model(
        CompileRequest(
            "lenet_digits", ("cpu-onnxruntime",), out=tmp_path / "b", tiny=True, prune="structured:0.5", overrides=FAST
        )
    )
    root = result.build_dir
    after = {layer["layer"]: layer for layer in result.manifest["pruning"]["after"]["layers"]}
    before = {layer["layer"]: layer for layer in result.manifest["pruning"]["before"]["layers"]}
    assert after["conv1"]["shape"][0] < before["conv1"]["shape"][0]  # output channels removed
    assert after["conv2"]["shape"][1] == after["conv1"]["shape"][0]  # and the next layer's inputs with them
    assert after["output"]["shape"][0] == before["output"]["shape"][0] == 10  # the classes stay
    totals_before = result.manifest["pruning"]["before"]["totals"]
    totals_after = result.manifest["pruning"]["after"]["totals"]
    assert totals_after["macs"] <= 0.6 * totals_before["macs"]
    # The exported ONNX has the smaller layers, and onnxruntime runs it.
    graph = onnx.load(str(root / "export" / "model.onnx"))
    shapes = {i.name: list(i.dims) for i in graph.graph.initializer}
    assert [after["conv1"]["shape"][0], 1, 3, 3] in shapes.values()
    session = ort.InferenceSession(str(root / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.load(root / "pruned" / "golden_inputs.npy")[:5]
    assert session.run(None, {"input": x})[0].shape == (5, 10)
    assert result.report.targets[0].status == "ok" and result.report.targets[0].max_abs_diff_vs_float < 1e-4


def test_structured_pruning_shrinks_depthwise_convolutions_with_their_channels(tmp_path: Path) -> None:
    result = compile_model(
        CompileRequest(
            "kws_dscnn", ("cpu-onnxruntime", "cpu-onnxruntime-int8", "fpga-xczu7ev-stream"), out=tmp_path / "b",
            tiny=True,
            prune="structured:0.5", quant="w8a8", overrides=FAST,
        )
    )  # fmt: skip
    assert result.exit_code in (0, 1)  # a tiny model may miss its metric gate; it must build and be exact
    after = {layer["layer"]: layer for layer in result.manifest["pruning"]["after"]["layers"]}
    channels = after["conv1"]["shape"][0]
    assert channels < 16 and after["dw1"]["shape"][:2] == [channels, 1]  # one group per channel left
    graph = onnx.load(str(result.build_dir / "export" / "model.onnx"))
    groups = [next(a.i for a in n.attribute if a.name == "group") for n in graph.graph.node if n.op_type == "Conv"]
    assert channels in groups
    for target in result.report.targets:
        assert target.status == "ok", target.reason
    assert result.report.targets[1].max_abs_diff_vs_quantized == 0.0
    # hls4ml io_stream with the resource strategy: the pruned 1x1 layers have fewer inputs (8) than the
    # profile's reuse factor (16), which hls4ml's C++ cannot build; edgekit caps the layer's reuse factor.
    assert result.report.targets[2].max_abs_diff_vs_quantized == 0.0


def test_structured_pruning_of_a_residual_network_keeps_each_sum_aligned(tmp_path: Path) -> None:
    """ResNet-8: the channels a residual sum adds are removed on both of its sides, and hls4ml io_stream stays
    exact with the strided 1x1 shortcuts left with fewer inputs (5, 6) than the profile's reuse factor (16)."""
    result = compile_model(
        CompileRequest(
            "resnet8", ("fpga-xczu7ev-stream",), out=tmp_path / "b", tiny=True, prune="structured:0.5", quant="w8a8",
            overrides=(*FAST, "model_options.stem_stride=4"),  # 8x8 maps after the stem: a quarter of the work
        )
    )  # fmt: skip
    assert result.exit_code in (0, 1)  # a tiny model may miss its metric gate; it must build and be exact
    after = {layer["layer"]: layer for layer in result.manifest["pruning"]["after"]["layers"]}
    before = {layer["layer"]: layer for layer in result.manifest["pruning"]["before"]["layers"]}
    assert after["stem"]["shape"][0] < before["stem"]["shape"][0]
    assert after["stages.0.conv2"]["shape"][0] == after["stem"]["shape"][0]  # the identity shortcut's sum
    for stage in ("stages.1", "stages.2"):  # the sum's two sides keep the same channels
        assert after[f"{stage}.conv2"]["shape"][0] == after[f"{stage}.shortcut"]["shape"][0]
    (stream,) = result.report.targets
    assert stream.status == "ok", stream.reason
    assert stream.max_abs_diff_vs_quantized == 0.0


def test_two_four_sparsity(tmp_path: Path) -> None:
    result = compile_model(
        CompileRequest("jet_tagger", ("cpu-onnxruntime",), out=tmp_path / "b", tiny=True, prune="2:4", overrides=FAST)
    )
    for name, w in _weights(result.build_dir / "pruned" / "model.pt").items():
        groups = w.reshape(w.shape[0], -1, 4)
        assert bool(((groups != 0).sum(-1) <= 2).all()), f"{name}: a group of four keeps more than two weights"
    report = json.loads((result.build_dir / "pruned" / "prune.json").read_text())
    assert report["after"]["totals"]["nonzero_macs"] <= 0.5 * report["before"]["totals"]["macs"] + 1


@pytest.mark.parametrize(
    ("prune", "overrides", "message"),
    [
        ("1.5", (), "prune.sparsity: 1.5 is out of range"),
        ("half", (), "is not a pruning shorthand"),
        ("0.5", ("prune.exclude=['fc7']",), "prune.exclude names layer(s) the model does not have: fc7"),
        ("structured:0", (), "prunes nothing"),
    ],
)
def test_bad_pruning_requests(tmp_path: Path, prune: str, overrides: tuple[str, ...], message: str) -> None:
    out = tmp_path / "untouched"
    with pytest.raises(ConfigError) as err:
        compile_model(CompileRequest("jet_tagger", out=out, tiny=True, prune=prune, overrides=overrides))
    assert message in str(err.value) and err.value.exit_code == 2
    assert not out.exists()


def test_cli_prune_flag(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = cli("compile", "jet_tagger", "--tiny", "--prune", "0.5", "--set", "prune.steps=1",
              "--set", "gates.max_metric_drop_vs_float=0.05", "--out", str(tmp_path), "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.json()["validation"]["extra_references"][0]["target"] == "pruned float reference"
    bad = cli("compile", "jet_tagger", "--tiny", "--prune", "1.5", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "1.5 is out of range" in bad.stderr and "Traceback" not in bad.stderr
