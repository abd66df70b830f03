"""``manifest.json``: what a build was made from, with what, how long each stage took, and what it found."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from edgekit.builddir import atomic_write_text
from edgekit.errors import InputError

__all__ = ["MANIFEST_NAME", "MANIFEST_SCHEMA_VERSION", "environment", "read_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1
_LIBRARIES = ("edgekit", "torch", "numpy", "onnx", "onnxruntime", "scikit-learn", "tqdm")


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "libraries": {name: _version(name) for name in _LIBRARIES},
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> Path:
    path = root / MANIFEST_NAME
    atomic_write_text(path, json.dumps(manifest, indent=1, default=str) + "\n")
    return path


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of an existing build, with clear errors for missing, corrupt or foreign ones."""
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise InputError(f"build directory {root} does not exist")
    if not path.is_file():
        raise InputError(
            f"{root} is not an edgekit build directory (no {MANIFEST_NAME})",
            hint="give the --out directory of an edgekit compile run",
        )
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is corrupt: {err}", hint="re-run edgekit compile for this build") from err
    if not isinstance(manifest, dict) or "schema_version" not in manifest:
        raise InputError(f"{path} is not an edgekit manifest (no schema_version)")
    found = manifest["schema_version"]
    if not isinstance(found, int) or found > MANIFEST_SCHEMA_VERSION:
        raise InputError(
            f"{path} has manifest schema {found!r}; this edgekit reads up to {MANIFEST_SCHEMA_VERSION}",
            hint="upgrade edgekit to validate this build",
        )
    for key in ("model", "artifacts", "settings", "targets"):
        if key not in manifest:
            raise InputError(f"{path} is incomplete: no {key!r} section", hint="re-run edgekit compile")
    return manifest
