"""edgekit: quantize, prune, export, compile and validate small neural networks for the edge.

The public API is what this module exports. Heavy modules (torch, onnx,
onnxruntime) load on first use, so ``import edgekit`` stays fast and works
without any optional extra.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "EdgekitError": "edgekit.errors",
    "ConfigError": "edgekit.errors",
    "InputError": "edgekit.errors",
    "BackendUnavailable": "edgekit.errors",
    "ToolchainError": "edgekit.errors",
    "compile": "edgekit.api",
    "load": "edgekit.api",
    "Deployed": "edgekit.api",
    "CompileRequest": "edgekit.pipeline",
    "BuildResult": "edgekit.pipeline",
    "compile_model": "edgekit.pipeline",
    "validate_build": "edgekit.pipeline",
    "TargetProfile": "edgekit.targets",
    "load_target": "edgekit.targets",
    "list_targets": "edgekit.targets",
    "list_models": "edgekit.zoo",
    "resolve_model": "edgekit.zoo",
    "Settings": "edgekit.config",
    "ValidationReport": "edgekit.results",
    "TargetResult": "edgekit.results",
    "doctor": "edgekit.toolchains",
    "sweep_grid": "edgekit.explore",
    "search_precision": "edgekit.explore",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
