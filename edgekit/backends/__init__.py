"""Compile backends: one module per foreign library, each the only importer of it.

A backend is found by the ``backend`` name in a target profile: first among the
backends built into edgekit, then among entry points in the ``edgekit.backends``
group, which third-party packages can register. Modules load lazily, so an
uninstalled library only matters when its target is asked for.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import cast

from edgekit.backends.base import Backend, BackendBase, Runner, missing_hooks
from edgekit.core.errors import BackendUnavailable, ConfigError

__all__ = ["BUILTIN", "Backend", "BackendBase", "Runner", "get_backend"]

BUILTIN = {
    "onnxruntime": "edgekit.backends.onnxruntime:OnnxRuntimeBackend",
    "hls4ml": "edgekit.backends.hls4ml.backend:Hls4mlBackend",
    "rtl": "edgekit.backends.rtl.backend:RtlBackend",
    "inductor": "edgekit.backends.inductor:InductorBackend",
    "tensorrt": "edgekit.backends.tensorrt.backend:TensorRTBackend",
}


def _load(spec: str) -> Backend:
    module_name, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    return cast(Backend, cls())


def get_backend(name: str) -> Backend:
    """The backend called ``name``; BackendUnavailable with the reason if there is none."""
    if name in BUILTIN:
        return _load(BUILTIN[name])
    for ep in entry_points(group="edgekit.backends"):
        if ep.name == name:
            backend = ep.load()()
            missing = missing_hooks(backend)
            if missing:
                raise ConfigError(
                    f"backend {name!r} ({ep.value}) lacks part of edgekit's backend contract: {', '.join(missing)}",
                    hint="subclass edgekit.backends.BackendBase (its docstring lists every hook) and implement "
                    "unavailable_reason, versions, check_target, compile and load",
                )
            return cast(Backend, backend)
    raise BackendUnavailable(
        f"no backend named {name!r}",
        hint=f"built-in backends: {', '.join(BUILTIN)}; others register in the 'edgekit.backends' entry-point group",
    )
