"""The frozen artifacts that flow between stages, and their JSON form.

Paths inside artifacts are relative to the build directory, so a build can be
moved or copied (to a lab machine, say) and re-validated there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.precision import QuantPlan

__all__ = [
    "CompiledArtifact",
    "ExportedGraph",
    "FloatModel",
    "ModelSource",
    "QuantExport",
    "QuantizedModel",
    "file_sha256",
]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSource:
    """How to rebuild the model's Python object: a file or module, a factory and its options."""

    kind: str  # "file" (zoo or model folder), "module" (module:factory) or "object" (edgekit.compile(net))
    location: str  # file path or module name
    factory: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FloatModel:
    """Trained float weights plus the golden vectors of the held-out set."""

    name: str
    source: ModelSource
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    weights: str  # state_dict, relative to the build directory
    golden_inputs: str
    golden_labels: str
    golden_float_outputs: str
    n_parameters: int
    train_wall_s: float
    files: Mapping[str, str] = field(default_factory=dict)  # relative path -> sha256


@dataclass(frozen=True)
class ExportedGraph:
    """An ONNX graph with a dynamic batch axis."""

    path: str
    format: str  # "onnx-float" now; "qcdq" and "qonnx" come with quantization
    input_name: str
    output_name: str
    opset: int
    exporter: str
    files: Mapping[str, str] = field(default_factory=dict)
    top_name: str = ""  # the FPGA design's top module / HLS project (export.top_name, else the model's name)


@dataclass(frozen=True)
class QuantizedModel:
    """A brevitas model (its state dict and the plan that rebuilds it) and its outputs on the golden inputs."""

    family: str
    plan: QuantPlan
    method: str  # "qat", "ptq" or "learned"
    weights: str
    golden_quant_outputs: str
    held_out_metric: float
    wall_s: float
    # per brevitas module, its number formats as trained: {"fc1": {"weight": "fixed<6,0>"}, "relu1": {"output": ...}}
    formats: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # quant.method "learned": per weighted layer, the bits each output channel's weights need after QAT, and
    # the resource term (bit operations relative to the uniform model) when QAT started and ended
    learned_bits: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    resource_ratio: tuple[float, ...] = ()
    # and per ReLU and the input, the activation width asked for and the one learned (the plan's now)
    learned_activations: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class QuantExport:
    """The exported graphs of one quantized model and how each compared with brevitas' forward."""

    family: str
    graphs: tuple[ExportedGraph, ...]  # formats "qcdq", "qonnx", "qonnx-clean"
    max_abs_diff_vs_brevitas: Mapping[str, float]  # per format, on the golden inputs
    n_check_samples: int

    def graph(self, fmt: str) -> ExportedGraph:
        return next(g for g in self.graphs if g.format == fmt)


@dataclass(frozen=True)
class CompiledArtifact:
    """What a backend built for one target, enough for its runner to load it again."""

    target: str
    backend: str
    path: str
    input_name: str
    output_name: str
    info: Mapping[str, Any] = field(default_factory=dict)  # backend facts for the report
    files: Mapping[str, str] = field(default_factory=dict)
