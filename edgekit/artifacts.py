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

__all__ = [
    "CompiledArtifact",
    "ExportedGraph",
    "FloatModel",
    "ModelSource",
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

    kind: str  # "file" (zoo or model folder) or "module" (module:factory)
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
