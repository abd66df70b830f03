"""``manifest.json``: what a build was made from, with what, how long each stage took, and what it found."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.core.builddir import atomic_write_text
from edgekit.core.errors import InputError
from edgekit.core.jsonio import dumps
from edgekit.core.provenance import LIBRARIES, code_sha256, versions

__all__ = ["MANIFEST_NAME", "MANIFEST_SCHEMA_VERSION", "environment", "read_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1


def environment(stage_versions: Iterable[Mapping[str, str]] = ()) -> dict[str, Any]:
    """The machine, every library an edgekit stage may run, and the versions the build's stages ran with.

    ``versions_used`` (the union over the stages, external tools such as g++ or yosys included) is what the
    stage keys hold; ``libraries`` lists the rest too, for the record.
    """
    used: dict[str, str] = {}
    for stage in stage_versions:
        used.update(stage)
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "edgekit": {"version": __version__, "code_sha256": code_sha256("edgekit.pipeline.compile")},
        "libraries": versions(LIBRARIES),
        "versions_used": dict(sorted(used.items())),
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> Path:
    path = root / MANIFEST_NAME
    atomic_write_text(path, dumps(manifest) + "\n")
    return path


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of an existing build, with clear errors for missing, corrupt or foreign ones."""
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise InputError(
            f"build directory {root} does not exist", hint="give the --out folder of an edgekit compile run"
        )
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
        raise InputError(
            f"{path} is not an edgekit manifest (no schema_version)", hint="re-run edgekit compile for this build"
        )
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
