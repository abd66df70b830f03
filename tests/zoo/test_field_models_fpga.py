"""The field's zoo models (MLPerf Tiny style ResNet-8 and DS-CNN, ECON-T) on both hls4ml io types at W6A8.

A file of its own: the test runner hands each file to one worker, and the zoo's file is long already.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.plan import plan_build
from edgekit.pipeline.planning import window_copies
from edgekit.pipeline.request import CompileRequest

# The field's models on both hls4ml io types at the FPGA's usual width (6-bit weights): each variant is the
# one a user deploys there. io_parallel unrolls every convolution, so ResNet-8 gets an 8x8 first map.
FPGA_VARIANTS: dict[str, tuple[str, ...]] = {
    "kws_dscnn": (),
    "resnet8": ("model_options.channels=[4, 8, 8]", "model_options.stem_stride=4"),
    "econt_autoencoder": (),  # the encoder alone (quant.deploy_until): the transposed decoder runs on the host
}


@pytest.mark.parametrize("name", sorted(FPGA_VARIANTS))
def test_field_models_are_exact_at_w6a8_on_both_hls4ml_io_types(name: str, tmp_path: Path) -> None:
    pytest.importorskip("hls4ml", reason="the FPGA targets need the fpga extra: pip install 'edgekit[fpga]'")
    targets = ("fpga-xcvu13p", "fpga-xczu7ev-stream")
    request = CompileRequest(name, targets, out=tmp_path / name, tiny=True, quant="w6a8", overrides=FPGA_VARIANTS[name])
    result = compile_model(request)
    assert [t.target for t in result.report.targets] == list(targets)
    for target in result.report.targets:  # a tiny model may miss its accuracy gate; it must be exact
        assert target.status == "ok", target.reason
        assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0, target.target
    # The size guard of io_parallel counts the window copies hls4ml's generated code makes, one by one.
    plan = plan_build(request)
    generated = (tmp_path / name / "targets/fpga-xcvu13p/hls4ml_prj/firmware/nnet_utils/nnet_code_gen.h").read_text()
    deployed = {layer.name for layer in plan.quant_plans["fixed"].deployed()}
    copies = [row for row in window_copies(plan.source, tuple(plan.spec.recipe.input_shape)) if row[0] in deployed]
    assert len(re.findall(r"\bbuffer\[\d+\]\[\d+\] =", generated)) == sum(n for _, n in copies) > 0
