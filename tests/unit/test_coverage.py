"""The coverage table (`edgekit ops`) says what the check before training decides, row by row."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest
import torch

from edgekit.pipeline.coverage import COLUMNS, OPS, Op, pre_check

pytest.importorskip("brevitas", reason="the quantized columns need the quant extra: pip install 'edgekit[quant]'")


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_the_check_before_training_agrees_with_the_table(op: Op) -> None:
    for column in COLUMNS:
        message = pre_check(op, column)
        if op.status[column] == "refused":
            assert message is not None, f"{op.name} on {column}: the table says refused, the check takes it"
            assert op.reasons[column] in message, f"{op.name} on {column}: {message}"
        else:
            assert message is None, f"{op.name} on {column}: the table says {op.status[column]}, the check: {message}"
            assert column not in op.reasons


@pytest.mark.filterwarnings("ignore")  # the TorchScript exporter's tracer warnings on the LSTM
@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_every_example_runs_in_torch_and_exports_for_the_float_targets(op: Op, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = op.build().eval()
    x = torch.randn(2, *op.input_shape)
    with torch.no_grad():
        assert model(x).shape[0] == 2
    torch.onnx.export(model, (x,), str(tmp_path / "m.onnx"), dynamo=False)
    assert (tmp_path / "m.onnx").stat().st_size > 0


def test_edgekit_ops_prints_the_table_and_its_json() -> None:
    from edgekit.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["ops"]) == 0
    text = out.getvalue()
    assert "depthwise Conv" in text and "the RTL path has no grouped convolution (RTL)" in text
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["ops", "--json"]) == 0
    rows = {row["layer"]: row for row in json.loads(out.getvalue())}
    assert rows["sigmoid, tanh"]["hls4ml"] == "exact" and rows["softmax head"]["int8"] == "host"
