"""Stage 2: the float model as ONNX with a dynamic batch axis.

The exporter is pinned to torch's TorchScript exporter (``dynamo=False``): it
needs no onnxscript, and it is the path brevitas' QONNX/QCDQ exports take, so
float and quantized graphs come out of the same machinery.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from edgekit.core.artifacts import ExportedGraph, FloatModel
from edgekit.core.config import ExportSettings
from edgekit.core.errors import ToolchainError
from edgekit.model.torch_model import load_float_model

__all__ = ["EXPORTER", "export_float_onnx"]

EXPORTER = f"torch.onnx.export (TorchScript, dynamo=False), torch {torch.__version__}"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_float_onnx(model: FloatModel, build_root: Path, cfg: ExportSettings, out_dir: Path) -> ExportedGraph:
    module = load_float_model(model, build_root)
    example = torch.zeros((2, *model.input_shape), dtype=torch.float32)
    path = out_dir / "model.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamo=False,
                opset_version=cfg.opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        graph = onnx.load(str(path))
        onnx.checker.check_model(graph, full_check=True)
    except (RuntimeError, torch.onnx.errors.OnnxExporterError, onnx.checker.ValidationError) as err:
        raise ToolchainError(
            f"ONNX export of {model.name!r} failed: {str(err).splitlines()[0]}",
            hint="an operator in the model may have no ONNX form at this opset; try --set export.opset=18",
        ) from err
    return ExportedGraph(
        path="model.onnx",
        format="onnx-float",
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        opset=cfg.opset,
        exporter=EXPORTER,
    )
