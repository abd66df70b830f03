"""A network written with brevitas' own quantized layers, taken as the quantized model it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("brevitas", reason="needs the quant extra: pip install 'edgekit[quant]'")

NET = """\
from torch import nn
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int32Bias, Uint8ActPerTensorFloat


def build():
    return nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True),
        qnn.QuantLinear(16, 12, bias=True, weight_quant=Int8WeightPerTensorFixedPoint, bias_quant={bias},
                        return_quant_tensor=True),
        qnn.QuantReLU(act_quant={act}, return_quant_tensor=True),
        qnn.QuantLinear(12, 5, bias=True, weight_quant=Int8WeightPerTensorFixedPoint, bias_quant={bias}),
    )
"""
TARGETS = ("fpga-xcvu13p", "fpga-xcvu13p-rtl", "cpu-onnxruntime-int8")


def _net(folder: Path, act: str = "Int8ActPerTensorFixedPoint", bias: str = "Int32Bias") -> None:
    (folder / "qnets.py").write_text(NET.format(act=act, bias=bias))


def test_a_brevitas_network_is_exact_against_its_own_forward_on_every_quantized_target(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("hls4ml", reason="needs the fpga extra: pip install 'edgekit[fpga]'")
    _net(tmp_path)
    targets = [a for t in TARGETS for a in ("-t", t)]
    run = cli("compile", "qnets:build", "--recipe", "jet_tagger", "--tiny", *targets, "--out", "b", "--json", "-q",
              cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = {t["target"]: t for t in run.json()["validation"]["targets"]}
    assert set(TARGETS) <= set(rows)
    for name in TARGETS:  # the reference is the brevitas model's forward: every target gated at 0 difference
        assert rows[name]["max_abs_diff_vs_float"] == 0, name
        assert any(g["name"] == "max_abs_diff_vs_float" and g["threshold"] == 0 for g in rows[name]["gates"]), name
    twin = [r for r in run.json()["validation"]["extra_references"] if r["target"].startswith("float twin")]
    assert len(twin) == 1 and twin[0]["max_abs_diff_vs_float"] > 0  # quantizers off: other numbers
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    graphs = {name: manifest["targets"][name]["graph"]["format"] for name in TARGETS}
    assert graphs == {"fpga-xcvu13p": "qonnx-clean", "fpga-xcvu13p-rtl": "qonnx-clean", "cpu-onnxruntime-int8": "qcdq"}
    assert manifest["settings"]["model"]["quant"]["enabled"] is False  # its own quantizers, no edgekit twin


@pytest.mark.parametrize(
    ("act", "bias", "extra", "message"),
    [
        ("Uint8ActPerTensorFloat", "Int32Bias", ("-t", "fpga-xcvu13p"), "is not a power of two"),
        ("Int8ActPerTensorFixedPoint", "None", ("-t", "fpga-xcvu13p"), "its bias is float, not quantized"),
        ("Int8ActPerTensorFixedPoint", "Int32Bias", ("--quant", "w6a8"), "--quant would quantize it again"),
        ("Int8ActPerTensorFixedPoint", "Int32Bias", ("-t", "cpu-inductor"), "compiles float PyTorch models"),
    ],
)
def test_what_cannot_be_exact_is_refused_by_layer_before_any_work(
    cli, tmp_path: Path, act, bias, extra, message
) -> None:  # type: ignore[no-untyped-def]
    _net(tmp_path, act, bias)
    run = cli("compile", "qnets:build", "--recipe", "jet_tagger", "--tiny", *extra, "--out", "b", cwd=tmp_path)
    assert run.returncode == 2 and "already quantized with brevitas (QuantIdentity '0'" in run.stderr, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "b").exists()
