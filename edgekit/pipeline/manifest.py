"""``manifest.json``: what a build was made from, with what, how long each stage took, and what it found."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit import __version__
from edgekit.core.builddir import atomic_write_text
from edgekit.core.errors import InputError
from edgekit.core.jsonio import dumps
from edgekit.core.provenance import LIBRARIES, code_sha256, versions
from edgekit.core.results import ValidationReport
from edgekit.core.schema import to_plain
from edgekit.model.reconstruction import compression_summary
from edgekit.pipeline.request import exit_code_for

if TYPE_CHECKING:
    from edgekit.pipeline.compile import Made
    from edgekit.pipeline.plan import BuildPlan

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA_VERSION",
    "assemble_manifest",
    "environment",
    "read_manifest",
    "write_manifest",
]

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


def assemble_manifest(
    planned: BuildPlan, made: Made, report: ValidationReport, float_module: Any, started: float
) -> dict[str, Any]:
    """``manifest.json``: the request, the model, the environment, the settings, every stage and artifact."""
    spec, plans, root = planned.spec, planned.plans, planned.root
    model = {
        "name": spec.name, "source": to_plain(planned.source), "code_sha256": spec.code_sha256,
        "recipe": spec.recipe.source, "recipe_sha256": spec.recipe.content_sha256,
        "input_shape": list(spec.recipe.input_shape), "classes": list(made.float_model.classes),
        "metric": spec.recipe.metric, "task": spec.recipe.task, "n_parameters": made.float_model.n_parameters,
        "compression": compression_summary(spec.recipe, float_module, made.quantized) if float_module else {},
    }  # fmt: skip
    targets = {
        p.profile.name: {"profile": to_plain(p.profile), "unavailable": p.unavailable or None,
                         "quant_family": p.family, "graph": to_plain(made.graphs[p.profile.name].graph)}
        for p in plans
    }  # fmt: skip
    artifacts = {
        "float_model": to_plain(made.float_model), "pruned": to_plain(made.base_model) if made.pruned else None,
        "exported": to_plain(made.graph), "quantized": {f: to_plain(q) for f, q in made.quantized.items()},
        "quant_exports": {f: to_plain(e) for f, e in made.quant_exports.items()},
        "compiled": {name: to_plain(a) for name, a in made.compiled.items()},
        "synthesis": {name: to_plain(r) for name, r in made.synthesis.items()},
    }  # fmt: skip
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "edgekit_version": __version__,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "request": to_plain(planned.request),
        "model": model,
        "environment": environment(r.versions for r in made.records if r.name != "validate"),
        "settings": {
            "model": to_plain(planned.settings),
            "targets": {p.profile.name: to_plain(p.settings) for p in plans},
        },
        "targets": targets,
        "stages": [to_plain(r) for r in made.records],
        "artifacts": artifacts,
        "pruning": json.loads((root / "pruned" / "prune.json").read_text()) if made.pruned else None,
        "validation": to_plain(report),
        "exit_code": exit_code_for(report),
        "total_wall_s": time.perf_counter() - started,
    }
