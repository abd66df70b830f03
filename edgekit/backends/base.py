"""What every backend provides: a build step and a runner (Polygraphy's loader/runner split)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from edgekit.artifacts import CompiledArtifact, ExportedGraph
from edgekit.runner import Runner
from edgekit.targets import TargetProfile

__all__ = ["Backend", "Runner"]


class Backend(Protocol):
    name: str

    def unavailable_reason(self) -> str | None:
        """None when the backend can build and run here, else why not and what to install."""

    def versions(self) -> dict[str, str]:
        """Versions of the foreign libraries this backend uses, for the manifest."""

    def check_target(self, target: TargetProfile) -> None:
        """Reject backend options and settings this backend cannot honour (ConfigError)."""

    def compile(
        self,
        graph: ExportedGraph,
        graph_path: Path,
        target: TargetProfile,
        out_dir: Path,
    ) -> CompiledArtifact:
        """Build the artifact for ``target`` into ``out_dir`` (a fresh temporary directory)."""

    def load(self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile) -> Runner:
        """A runner for a built artifact."""
