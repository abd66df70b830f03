"""The build directory: one folder per stage, written atomically and cached by content hash.

A stage writes into a temporary sibling folder; only when it finished is that
folder renamed into place, with ``stage.json`` (its cache key, artifact and
file hashes) inside. A failed or interrupted stage therefore leaves the
previous output untouched, and a stage whose key and files still match is
reused instead of run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edgekit.artifacts import file_sha256
from edgekit.errors import EdgekitError, InputError
from edgekit.schema import build, to_plain

__all__ = ["BuildDir", "StageRecord", "atomic_write_text", "cache_key"]

A = TypeVar("A")
STAGE_FILE = "stage.json"


def cache_key(inputs: Mapping[str, Any]) -> str:
    """A stable hash of a stage's inputs (content hashes, settings, library versions)."""
    blob = json.dumps(to_plain(inputs), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class StageRecord:
    """What the manifest says about one stage run."""

    name: str
    directory: str
    key: str
    cached: bool
    wall_s: float
    files: Mapping[str, str]


def _hash_tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != STAGE_FILE
    }


class BuildDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _cached(self, directory: str, key: str, cls: type[A]) -> tuple[A, dict[str, str]] | None:
        folder = self.root / directory
        try:
            record = json.loads((folder / STAGE_FILE).read_text())
        except (OSError, ValueError):
            return None
        if record.get("key") != key:
            return None
        files = record.get("files", {})
        for rel, digest in files.items():
            path = folder / rel
            if not path.is_file() or file_sha256(path) != digest:
                return None
        return build(cls, record["artifact"]), files

    def run_stage(
        self,
        name: str,
        directory: str,
        key: str,
        cls: type[A],
        produce: Callable[[Path], A],
        *,
        force: bool = False,
    ) -> tuple[A, StageRecord]:
        """Reuse ``directory`` if its key and files match, else run ``produce`` into a temp dir and swap it in."""
        started = time.perf_counter()
        if not force:
            hit = self._cached(directory, key, cls)
            if hit is not None:
                artifact, files = hit
                return artifact, StageRecord(name, directory, key, True, time.perf_counter() - started, files)
        final = self.root / directory
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
        try:
            artifact = produce(tmp)
            files = _hash_tree(tmp)
            wall = time.perf_counter() - started
            record = {"stage": name, "key": key, "wall_s": wall, "artifact": to_plain(artifact), "files": files}
            (tmp / STAGE_FILE).write_text(json.dumps(record, indent=1))
            self._swap_in(tmp, final)
        except BaseException as err:
            self._keep_log(err, tmp, directory)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return artifact, StageRecord(name, directory, key, False, wall, files)

    def _keep_log(self, err: BaseException, tmp: Path, directory: str) -> None:
        """A failed stage's tool log outlives its temporary folder: it moves to ``logs/``."""
        log = getattr(err, "log_path", None)
        if isinstance(err, EdgekitError) and log is not None and Path(log).is_relative_to(tmp) and Path(log).exists():
            kept = self.root / "logs" / f"{directory.replace('/', '-')}-{Path(log).name}"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(log), kept)
            err.log_path = kept

    @staticmethod
    def _swap_in(tmp: Path, final: Path) -> None:
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}-{time.time_ns()}")
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def changed_files(self, directory: str, files: Mapping[str, str]) -> tuple[list[Path], list[Path]]:
        """(missing, changed): the files a stage recorded that are gone, and those whose content hash differs."""
        missing, changed = [], []
        for rel, digest in files.items():
            path = self.root / directory / rel
            if not path.is_file():
                missing.append(path)
            elif file_sha256(path) != digest:
                changed.append(path)
        return missing, changed

    def verify_files(self, directory: str, files: Mapping[str, str]) -> None:
        """Every file a stage recorded still exists with the same content (for ``edgekit validate``)."""
        missing, changed = self.changed_files(directory, files)
        if missing:
            raise InputError(f"build file {missing[0]} is missing", hint="re-run edgekit compile for this build")
        if changed:
            raise InputError(
                f"build file {changed[0]} changed since it was built (content hash differs)",
                hint="re-run edgekit compile, or restore the file",
            )
