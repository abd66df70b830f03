"""Stage: what hls4ml's PyTorch frontend needs for a float model: the model, and its activation ranges.

For an FPGA target without quantization, fixed-point types are chosen from the
largest magnitude each layer produces on calibration data (training samples),
instead of hls4ml's one-size ``fixed<16,6>`` that truncates and wraps. This
stage records those ranges, a calibration batch, and how to rebuild the model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from edgekit.core.artifacts import ExportedGraph, FloatModel
from edgekit.core.config import Settings
from edgekit.core.jsonio import write_json
from edgekit.core.progress import say
from edgekit.model.data import Dataset
from edgekit.model.torch_model import load_float_model
from edgekit.model.zoo import ModelSpec

__all__ = ["PROFILER", "profile_float_model"]

PROFILER = "edgekit activation-range profile v2 (per torch.fx node)"


class _LayerTracer(fx.Tracer):
    """The graph hls4ml's PyTorch frontend sees: torch.nn modules are leaves, the user's own are traced through."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return m.__module__.startswith(("torch.nn", "torch.ao.nn")) and not isinstance(m, nn.Sequential)


class _RangeRecorder(fx.Interpreter):
    """Runs the traced graph and keeps the largest |output| of every node, by node name."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.ranges: dict[str, float] = {}
        self.modules: dict[str, str] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        if isinstance(out, torch.Tensor) and out.is_floating_point() and n.op != "output":
            self.ranges["input" if n.op == "placeholder" else n.name] = float(out.detach().abs().max())
        if n.op == "call_module":
            self.modules[n.name] = str(n.target)
        return out


def _node_ranges(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, float], dict[str, str]]:
    """Largest |output| of every node of the traced graph, by node name (hls4ml's layer names: ``encoder_0``,
    ``relu_1``), and the module each ``call_module`` node runs; the model's input is ``"input"``."""
    recorder = _RangeRecorder(fx.GraphModule(model, _LayerTracer().trace(model)))
    with torch.no_grad():
        recorder.run(x)
    return recorder.ranges, recorder.modules


def profile_float_model(
    spec: ModelSpec, base_model: FloatModel, base_dir: Path, settings: Settings, data: Dataset, out_dir: Path
) -> ExportedGraph:
    model = load_float_model(base_model, base_dir)
    x_train = data.x_train
    order = np.random.default_rng(settings.train.seed).permutation(len(x_train))
    calibration = x_train[order[: settings.quant.calibration_samples]]
    try:
        ranges, modules = _node_ranges(model, torch.from_numpy(calibration))
    except Exception as err:  # torch.fx cannot trace it (Python control flow): hls4ml's frontend could not either
        say(f"  the model cannot be traced by torch.fx ({type(err).__name__}): no activation ranges recorded")
        ranges, modules = {"input": float(np.max(np.abs(calibration)))}, {}
    shutil.copyfile(base_dir / base_model.weights, out_dir / "model.pt")
    np.save(out_dir / "calibration_inputs.npy", calibration)
    write_json(
        out_dir / "profile.json",
        {
            "source": base_model.source,
            "input_shape": list(base_model.input_shape),
            "ranges": ranges,
            "modules": modules,
            "calibration_samples": len(calibration),
        },
    )
    return ExportedGraph("model.pt", "torch-float", "input", "logits", 0, PROFILER)
