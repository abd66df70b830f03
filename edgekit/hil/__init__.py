"""Hardware in the loop: run a build's compiled artifacts on a device and hold them to the build's golden vectors.

    from edgekit.hil import open_build, parse_device, run_target

    build = open_build(Path("build/jet_tagger"))
    device = parse_device("ssh://lab@edgebox:2222", python="/opt/edgekit/bin/python")
    result = run_target(build, "cpu-onnxruntime-int8", device)
    print(result.describe_mismatches(), result.result.failed_gates())

The test scripts in the repository's ``hil/`` folder do the same as pytest tests, one per target and gate.
Names load on first use: the device side (``edgekit.hil.device_run``) runs without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Device": "edgekit.hil.devices",
    "LocalDevice": "edgekit.hil.devices",
    "SshDevice": "edgekit.hil.devices",
    "parse_device": "edgekit.hil.devices",
    "safe_extract": "edgekit.hil.devices",
    "HilResult": "edgekit.hil.check",
    "Mismatch": "edgekit.hil.check",
    "hil_targets": "edgekit.hil.check",
    "run_target": "edgekit.hil.check",
    "OpenedBuild": "edgekit.pipeline.reopen",
    "open_build": "edgekit.pipeline.reopen",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edgekit.hil' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
