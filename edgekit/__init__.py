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
    "EdgekitError": "edgekit.core.errors",
    "ConfigError": "edgekit.core.errors",
    "InputError": "edgekit.core.errors",
    "BackendUnavailable": "edgekit.core.errors",
    "ToolchainError": "edgekit.core.errors",
    "compile": "edgekit.api",
    "load": "edgekit.api",
    "Deployed": "edgekit.api",
    "CompileRequest": "edgekit.pipeline.request",
    "BuildResult": "edgekit.pipeline.request",
    "compile_model": "edgekit.pipeline.compile",
    "validate_build": "edgekit.pipeline.reopen",
    "TargetProfile": "edgekit.core.targets",
    "load_target": "edgekit.core.targets",
    "list_targets": "edgekit.core.targets",
    "list_models": "edgekit.model.zoo",
    "resolve_model": "edgekit.model.zoo",
    "Settings": "edgekit.core.config",
    "ValidationReport": "edgekit.core.results",
    "TargetResult": "edgekit.core.results",
    "doctor": "edgekit.core.toolchains",
    "sweep_grid": "edgekit.explore.api",
    "search_precision": "edgekit.explore.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
