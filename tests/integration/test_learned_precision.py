"""quant.method = "learned": per-channel weight precision trained under a resource term, exact on the FPGA
targets (the RTL path's logic and hls4ml's emulation equal brevitas' forward), refused for INT8."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.core.errors import ConfigError
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.plan import plan_build
from edgekit.pipeline.request import BuildResult, CompileRequest

pytest.importorskip("da4ml", reason="the RTL path needs the rtl extra: pip install 'edgekit[rtl]'")
pytest.importorskip("hls4ml", reason="the hls4ml target needs the fpga extra: pip install 'edgekit[fpga]'")

LEARNED = ("quant.method=learned", "quant.resource_weight=0.5")


@pytest.fixture(scope="module")
def interpreter_rtl(tmp_path_factory: pytest.TempPathFactory, profile_variant) -> Path:  # type: ignore[no-untyped-def]
    """The RTL target with da4ml's interpreter as its emulation and no synthesis: the logic, in seconds."""
    folder = tmp_path_factory.mktemp("profiles")
    replace = {'emulation = "verilator"': 'emulation = "interpreter"', "synthesis = true": "synthesis = false"}
    return profile_variant("fpga-xcvu13p-rtl", "rtl-interpreter", folder, replace)  # type: ignore[no-any-return]


def _build(out: Path, rtl: Path, overrides: tuple[str, ...] = ()) -> BuildResult:
    return compile_model(
        CompileRequest("jet_tagger", (str(rtl), "fpga-xcvu13p"), out=out, tiny=True, quant="w6a8", overrides=overrides)
    )


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory, interpreter_rtl: Path) -> BuildResult:
    return _build(tmp_path_factory.mktemp("learned") / "b", interpreter_rtl, LEARNED)


def test_learned_precision_is_exact_on_the_rtl_path_and_hls4ml(learned: BuildResult) -> None:
    assert learned.exit_code == 0
    for target in learned.report.targets:
        assert target.status == "ok", target.reason
        assert target.max_abs_diff_vs_quantized == 0.0, target.target
    quantized = learned.manifest["artifacts"]["quantized"]["fixed"]
    assert quantized["method"] == "learned"


def test_the_resource_term_falls_and_channels_end_below_the_uniform_width(learned: BuildResult) -> None:
    quantized = learned.manifest["artifacts"]["quantized"]["fixed"]
    ratio = quantized["resource_ratio"]
    assert len(ratio) >= 2 and ratio[-1] < ratio[0] < 1.0
    bits = [b for layer in quantized["learned_bits"].values() for b in layer]
    assert set(quantized["learned_bits"]) == {"fc1", "fc2", "output"}
    assert max(bits) <= 6  # w6: the layer's quantizer bounds every channel
    assert sum(bits) / len(bits) < 5.5
    report = (learned.build_dir / "report.md").read_text()
    assert "Learned precision" in report and "| fc1 | 16 |" in report
    assert 'id="plot-learned-bits-fixed"' in (learned.build_dir / "report.html").read_text()


def test_learned_activation_widths_reach_the_plan_and_every_target_stays_exact(
    interpreter_rtl: Path, tmp_path: Path
) -> None:
    """A strong resource term narrows the ReLUs' and the input's widths in the first half of QAT; the widths
    are the quantizers' own afterwards (the plan carries them), so the exported graph and both FPGA targets
    compute them exactly; with quant.learn_activations = false they stay at 8 bits."""
    # Adam moves a width by about the learning rate x SPEED per step: the few steps of tiny need a larger rate
    strong = ("quant.method=learned", "quant.resource_weight=1", "quant.qat_epochs=4", "quant.qat_learning_rate=0.01")
    result = _build(tmp_path / "strong", interpreter_rtl, strong)
    assert result.exit_code == 0
    for target in result.report.targets:
        assert target.status == "ok" and target.max_abs_diff_vs_quantized == 0.0, target.target
    plan = result.manifest["artifacts"]["quantized"]["fixed"]["plan"]
    widths = {layer["name"]: layer["activation_bits"] for layer in plan["layers"] if layer["kind"] in ("relu", "input")}
    assert set(widths) == {"input", "relu1", "relu2"} and min(widths.values()) < 8, widths
    assert all(2 <= w <= 8 for w in widths.values())
    kept = _build(tmp_path / "kept", interpreter_rtl, (*strong, "quant.learn_activations=false"))
    plan = kept.manifest["artifacts"]["quantized"]["fixed"]["plan"]
    assert {layer["activation_bits"] for layer in plan["layers"] if layer["kind"] in ("relu", "input")} == {8}


def test_per_weight_precision_is_exact_on_both_fpga_paths(interpreter_rtl: Path, tmp_path: Path) -> None:
    """quant.learned_granularity = "weight": every weight on its own grid; still a plain brevitas model after
    QAT, so da4ml's logic and hls4ml's emulation equal its forward."""
    result = _build(tmp_path / "b", interpreter_rtl, (*LEARNED, "quant.learned_granularity=weight"))
    assert result.exit_code == 0
    for target in result.report.targets:
        assert target.status == "ok" and target.max_abs_diff_vs_quantized == 0.0, target.target
    bits = [b for layer in result.manifest["artifacts"]["quantized"]["fixed"]["learned_bits"].values() for b in layer]
    assert max(bits) <= 6 and min(bits) < 6


def test_a_resource_weight_that_empties_a_layer_is_refused_with_the_way_out(
    interpreter_rtl: Path, tmp_path: Path
) -> None:
    """Far too strong a term removes every weight of a layer (a network computing a constant, on which
    hls4ml's emulation crashed): refused after QAT, naming the layers and the setting, nothing compiled."""
    with pytest.raises(ConfigError) as err:
        _build(tmp_path / "b", interpreter_rtl, ("quant.method=learned", "quant.resource_weight=20",
                                                 "quant.qat_epochs=4", "quant.qat_learning_rate=0.01"))  # fmt: skip
    assert "removed every weight of fc1" in err.value.message and "resource_weight" in (err.value.hint or "")
    assert not (tmp_path / "b" / "targets" / "rtl-interpreter").exists()


def test_fewer_bits_are_fewer_luts_than_the_uniform_model(
    learned: BuildResult, interpreter_rtl: Path, tmp_path: Path
) -> None:
    """da4ml's cost of the same design at uniform w6a8, from the same float model (a cached stage)."""
    uniform = _build(tmp_path / "uniform", interpreter_rtl)
    assert uniform.exit_code == 0

    def luts(result: BuildResult) -> float:
        return float(result.manifest["artifacts"]["compiled"]["rtl-interpreter"]["info"]["da4ml_estimate"]["lut"])

    assert luts(learned) < 0.95 * luts(uniform), (luts(learned), luts(uniform))


def test_int8_targets_refuse_learned_precision_before_any_work(tmp_path: Path) -> None:
    request = CompileRequest(
        "jet_tagger", ("cpu-onnxruntime-int8",), out=tmp_path / "b", tiny=True, quant="int8", overrides=LEARNED
    )
    with pytest.raises(ConfigError) as err:
        plan_build(request)
    assert "cpu-onnxruntime-int8" in err.value.message and "learned" in err.value.message
    assert not (tmp_path / "b").exists()
