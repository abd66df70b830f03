"""Stage: what hls4ml's PyTorch frontend needs for a float model: the model, and its activation ranges.

For an FPGA target without quantization, fixed-point types are chosen from the
largest magnitude each layer produces on calibration data (training samples),
instead of hls4ml's one-size ``fixed<16,6>`` that truncates and wraps. This
stage records those ranges, a calibration batch, and how to rebuild the model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from edgekit.artifacts import ExportedGraph, FloatModel
from edgekit.config import Settings
from edgekit.data import load_data
from edgekit.schema import to_plain
from edgekit.torch_model import load_float_model
from edgekit.zoo import ModelSpec

__all__ = ["PROFILER", "profile_float_model"]

PROFILER = "edgekit activation-range profile v1"


def profile_float_model(
    spec: ModelSpec, base_model: FloatModel, base_dir: Path, settings: Settings, out_dir: Path
) -> ExportedGraph:
    model = load_float_model(base_model, base_dir)
    data = load_data(spec, settings)
    x_train = np.ascontiguousarray(data["x_train"], dtype=np.float32)
    order = np.random.default_rng(settings.train.seed).permutation(len(x_train))
    calibration = x_train[order[: settings.quant.calibration_samples]]
    ranges: dict[str, float] = {"input": float(np.max(np.abs(calibration)))}
    hooks = []
    for name, module in model.named_modules():
        if name:

            def record(mod: torch.nn.Module, args: object, out: torch.Tensor, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    ranges[name] = max(ranges.get(name, 0.0), float(out.detach().abs().max()))

            hooks.append(module.register_forward_hook(record))
    with torch.no_grad():
        model(torch.from_numpy(calibration))
    for hook in hooks:
        hook.remove()
    shutil.copyfile(base_dir / base_model.weights, out_dir / "model.pt")
    np.save(out_dir / "calibration_inputs.npy", calibration)
    (out_dir / "profile.json").write_text(
        json.dumps(
            {
                "source": to_plain(base_model.source),
                "input_shape": list(base_model.input_shape),
                "ranges": ranges,
                "calibration_samples": len(calibration),
            },
            indent=1,
        )
    )
    return ExportedGraph("model.pt", "torch-float", "input", "logits", 0, PROFILER)
