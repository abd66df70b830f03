"""The build directory: one folder per stage, written atomically and cached by content hash.

A stage writes into a temporary sibling folder; only when it finished is that
folder renamed into place, with ``stage.json`` (its cache key, artifact and
file hashes) inside. A failed or interrupted stage therefore leaves the
previous output untouched, and a stage whose key and files still match is
reused instead of run again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from edgekit.core.artifacts import file_sha256
from edgekit.core.errors import DiskFullError, EdgekitError, InputError
from edgekit.core.jsonio import write_json
from edgekit.core.provenance import StageIdentity
from edgekit.core.schema import build, to_plain

__all__ = ["BuildDir", "StageRecord", "atomic_write_text", "cache_key"]

A = TypeVar("A")
B = TypeVar("B")
STAGE_FILE = "stage.json"


def cache_key(inputs: Mapping[str, Any]) -> str:
    """A stable hash of a stage's inputs (content hashes, settings, library versions)."""
    blob = json.dumps(to_plain(inputs), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _umask() -> int:
    """The process's umask (read without changing it where Linux shows it; tempfile ignores it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Messages that mean the disk (or a quota, or the file-size limit) ran out, where no errno says so: g++, ld
# and as print them; shutil.Error carries them per file; torch's legacy writer has them in its text.
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "File too large")
_FULL_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                errno.EFBIG: "a file reached the file-size limit (ulimit -f)"}  # fmt: skip
LOW_SPACE_BYTES = 1 << 20


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def out_of_space(err: BaseException, folder: Path) -> str | None:
    """Why writing under ``folder`` failed, if the disk ran out; None for any other failure.

    An errno (ENOSPC, EDQUOT, EFBIG) or a tool's message says so directly. numpy (``N requested and M
    written``) and torch (``basic_ios::clear: iostream error``) say nothing: for an OSError or a RuntimeError
    the free space left on ``folder``'s disk decides (checked before the failed stage's files are removed).
    """
    for link in _chain(err):
        if isinstance(link, OSError) and link.errno in _FULL_ERRNOS:
            return _FULL_ERRNOS[link.errno]
        text = str(link)
        for message, reason in zip(_FULL_TEXTS, _FULL_ERRNOS.values(), strict=True):
            if message in text:
                return reason
    if not any(isinstance(link, (OSError, RuntimeError)) for link in _chain(err)):
        return None
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    if stat.f_bavail * stat.f_frsize < LOW_SPACE_BYTES or stat.f_favail == 0:
        return "the disk is full"
    return None


def _free_space(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "free space unknown"
    return f"{free / 2**20:,.1f} MiB free now" if free >= 2**20 else f"{free / 2**10:,.0f} KiB free now"


def disk_full_error(reason: str, what: str, folder: Path, err: BaseException) -> DiskFullError:
    return DiskFullError(
        f"{what} could not be written: {reason} ({folder}, {_free_space(folder)}); nothing half-written was kept "
        f"({type(err).__name__}: {str(err).strip().splitlines()[0][:160] if str(err).strip() else ''})",
        hint=f"free some space (df -h {folder}) or build into another --out, then run again: finished stages are "
        "reused",
    )


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all, with the mode a plain write would give it (the umask's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600: colleagues on a shared disk could not read it
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException as err:
        reason = out_of_space(err, path.parent)
        Path(tmp).unlink(missing_ok=True)
        if reason is not None:
            raise disk_full_error(reason, path.name, path.parent, err) from err
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
    # the libraries and tools the stage ran and a hash of edgekit's code it ran (both in its key)
    versions: Mapping[str, str] = field(default_factory=dict)
    code_sha256: str = ""


def _hash_tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != STAGE_FILE
    }


LOCK_FILE = ".edgekit.lock"
# What an interrupted stage or write leaves behind (the temporary folders and files of run_stage,
# atomic_write_text and the vectors step), at the depths stages write: the root, targets/, synth/, vectors/.
LEFTOVERS = (".*.tmp-*", ".*.old-*", ".*.tmp", "*/.*.tmp-*", "*/.*.old-*", "*/.*.tmp")


class BuildDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def locked(self, command: str) -> Iterator[None]:
        """Hold the build folder for one edgekit run; a second run into it is refused, naming the first.

        The lock is an ``flock`` on ``.edgekit.lock``, which the kernel releases when its process ends in
        any way (SIGKILL included). Holding it, the run removes what killed runs left behind.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / LOCK_FILE).open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise InputError(
                f"build folder {self.root} is in use by another edgekit run ({holder})",
                hint="wait for it to finish, or give this run another --out",
            ) from err
        try:
            handle.seek(0)
            handle.truncate()
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}: {command}, since {started}\n")
            handle.flush()
            self.remove_leftovers()
            yield
        finally:
            handle.truncate(0)  # who holds it: nobody now (a build folder's files are otherwise only its stages')
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def remove_leftovers(self) -> list[Path]:
        """Delete the temporary folders and files of stages that were killed (call it holding the lock)."""
        removed = []
        for pattern in LEFTOVERS:
            for path in self.root.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
        return removed

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
        identity: StageIdentity | None = None,
    ) -> tuple[A, StageRecord]:
        """Reuse ``directory`` if its key and files match, else run ``produce`` into a temp dir and swap it in.

        ``identity`` (the stage's library versions and edgekit code, which ``key`` must include) is recorded.
        """
        started = time.perf_counter()
        ident = identity or StageIdentity()
        if not force:
            hit = self._cached(directory, key, cls)
            if hit is not None:
                artifact, files = hit
                wall = time.perf_counter() - started
                return artifact, StageRecord(name, directory, key, True, wall, files, ident.versions, ident.code_sha256)

        def produce_and_record(tmp: Path) -> tuple[A, dict[str, str], float]:
            artifact = produce(tmp)
            files = _hash_tree(tmp)
            wall = time.perf_counter() - started
            record = {"stage": name, "key": key, "wall_s": wall, "artifact": artifact, "files": files,
                      "versions": ident.versions, "code_sha256": ident.code_sha256}  # fmt: skip
            write_json(tmp / STAGE_FILE, record)
            return artifact, files, wall

        artifact, files, wall = self.write_folder(f"the {name} stage's {directory}/", directory, produce_and_record)
        return artifact, StageRecord(name, directory, key, False, wall, files, ident.versions, ident.code_sha256)

    def write_folder(self, what: str, directory: str, produce: Callable[[Path], B]) -> B:
        """``produce`` writes into a fresh temporary folder, which then replaces ``directory`` as a whole.

        A failure leaves ``directory`` as it was and removes the temporary folder (its tool log moves to
        ``logs/``); a full disk becomes a DiskFullError naming ``what``.
        """
        final = self.root / directory
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the folder keeps this mode
        try:
            result = produce(tmp)
            self._swap_in(tmp, final)
        except BaseException as err:
            reason = out_of_space(err, tmp)  # before the removal below frees the space again
            self._keep_log(err, tmp, directory)
            shutil.rmtree(tmp, ignore_errors=True)
            if reason is not None:
                raise disk_full_error(reason, what, self.root, err) from err
            raise
        return result

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
