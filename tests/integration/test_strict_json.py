"""Every JSON file a build writes, and ``--json`` output, is strict JSON: no NaN or Infinity tokens.

A target that could not run has no numbers (NaN in memory); they are written as null, which strict parsers
(JavaScript's JSON.parse, jq) accept, and read back as NaN.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _strict(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_build_with_an_unavailable_target_writes_strict_json(tmp_path: Path) -> None:
    out = tmp_path / "b"
    run = subprocess.run(
        [sys.executable, "-m", "edgekit", "compile", "jet_tagger", "--tiny", "-t", "cpu-onnxruntime",
         "-t", "gpu-tensorrt-fp16", "--out", str(out), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 3, run.stderr  # TensorRT is not installed here: its row has no numbers
    printed = _strict(run.stdout)
    assert isinstance(printed, dict)
    unavailable = next(t for t in printed["validation"]["targets"] if t["target"] == "gpu-tensorrt-fp16")
    assert unavailable["status"] == "unavailable" and unavailable["metric"] is None  # NaN in memory
    files = sorted(out.rglob("*.json"))
    assert {p.name for p in files} >= {"manifest.json", "stage.json", "train.json"}
    for path in files:
        _strict(path.read_text())  # raises on a NaN or Infinity token
    again = subprocess.run([sys.executable, "-m", "edgekit", "validate", str(out), "--json"], cwd=REPO,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 3, again.stderr
    _strict(again.stdout)
    _strict((out / "manifest.json").read_text())


def test_nulls_read_back_as_nan() -> None:
    from edgekit.core.jsonio import dumps
    from edgekit.core.results import TargetResult
    from edgekit.core.schema import build

    result = TargetResult("t", "onnxruntime", "unavailable", reconstruction={"mse": math.inf})
    text = dumps(result)
    assert "NaN" not in text and "Infinity" not in text
    back = build(TargetResult, _strict(text))  # type: ignore[arg-type]
    assert math.isnan(back.metric) and math.isnan(back.reconstruction["mse"])
    with pytest.raises(ValueError, match="not JSON"):
        _strict('{"x": NaN}')
