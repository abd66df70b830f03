"""The backend contract is declared, not probed: every hook is a member of Backend or Runner."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from edgekit.backends import BUILTIN
from edgekit.backends.base import Backend, BackendBase, missing_hooks
from edgekit.core.runner import Runner, RunnerBase

PACKAGE = Path(__file__).resolve().parents[2] / "edgekit"
# getattr/hasattr on a backend or a runner: what the pipeline did before the contract was declared
PROBE = re.compile(r"\b(getattr|hasattr)\(\s*(self\._?)?(plan\.)?(backend|runner|extra|secondary)\b")


def test_no_module_probes_a_backend_or_runner_for_hooks() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PROBE.search(line)
    ]
    assert not found, found


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_backend_declares_the_whole_contract(name: str) -> None:
    module_name, _, attr = BUILTIN[name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)  # importing needs none of the foreign libraries
    assert issubclass(cls, BackendBase) and cls.name == name
    backend = cls()
    assert missing_hooks(backend) == [] and isinstance(backend, Backend)
    for flag, hook in (("traces_artifact", "trace_artifact"), ("traces_graph", "trace"),
                       ("writes_vectors", "write_vectors")):  # fmt: skip
        offered = getattr(cls, flag)
        assert offered == (getattr(cls, hook) is not getattr(BackendBase, hook)), f"{name}: {flag} and {hook} agree"


def test_every_runner_class_is_a_runner() -> None:
    """Classes named *Runner with a run method, anywhere in edgekit, subclass RunnerBase (its defaults)."""
    runners = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            protocol = any(isinstance(b, ast.Name) and b.id == "Protocol" for b in getattr(node, "bases", []))
            if (
                isinstance(node, ast.ClassDef)
                and node.name.endswith("Runner")
                and not node.name.startswith("_")
                and not protocol
            ):
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                if "run" in methods:
                    runners.append((path, node))
    assert len(runners) >= 7
    for path, node in runners:
        bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
        assert "RunnerBase" in bases, f"{path.name}: {node.name} does not subclass RunnerBase"
    assert isinstance(RunnerBase(), object) and not RunnerBase.device_timer
    assert {"device_timer", "clock", "description"} <= set(Runner.__annotations__) and "timed_run" in dir(Runner)


def _imports(path: Path) -> set[str]:
    """Every edgekit module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.startswith("edgekit")}


# What each package may import (besides itself and the light root ``edgekit/__init__``), as each package's
# docstring says. A module of edgekit's root (``api``, ``__main__``) is a package of its own name.
ALLOWED = {
    "core": set(),
    "model": {"core"},
    "stages": {"core", "model"},
    "report": {"core", "model"},
    "backends": {"core", "model"},
    "pipeline": {"core", "model", "stages", "backends", "report", "api"},
    "explore": {"core", "model", "pipeline", "report", "api"},
    "hil": {"core", "model", "backends", "pipeline", "stages"},
    "api": {"core", "model", "backends", "pipeline"},
    "cli": {"core", "model", "backends", "pipeline", "report", "explore", "api"},
    "__main__": {"cli"},
}
SHARED_BACKEND_MODULES = {"edgekit.backends", "edgekit.backends.base", "edgekit.backends.native_pool",
                          "edgekit.backends.cuda_device"}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edgekit"


def _backend_unit(module: str) -> str:
    """The backend a module of ``edgekit.backends`` belongs to (``hls4ml`` for ``backends.hls4ml.emulator``)."""
    return module.split(".")[2] if module not in SHARED_BACKEND_MODULES else "shared"


def test_every_package_imports_only_what_its_docstring_allows() -> None:
    """Packages import along the pipeline; stages never import stages; a backend never imports another."""
    problems = []
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if not p.relative_to(PACKAGE).parts[0].startswith("_")]
    assert len(modules) > 80
    for path in modules:
        own = _module_name(path)
        package = _package(own)
        allowed = ALLOWED[package] | {package, "edgekit"}
        for imported in sorted(_imports(path)):
            target = _package(imported)
            if target not in allowed or (package == "core" and target == "edgekit"):
                problems.append(f"{own} imports {imported} ({package} may import {sorted(ALLOWED[package])})")
            elif package == "stages" == target and imported not in (own, "edgekit.stages"):
                problems.append(f"{own} imports {imported}: a stage never imports another stage")
            elif (
                package == "backends" == target
                and imported not in SHARED_BACKEND_MODULES
                and _backend_unit(imported) != _backend_unit(own)
            ):
                problems.append(f"{own} imports {imported}: a backend never imports another backend")
    assert not problems, "\n".join(problems)


def test_every_package_says_what_it_holds_and_may_import() -> None:
    packages = [p for p in sorted(PACKAGE.rglob("__init__.py")) if not p.relative_to(PACKAGE).parts[0].startswith("_")]
    assert len(packages) >= 11
    for init in packages:
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 80, f"{init.relative_to(PACKAGE)} has no docstring saying what it holds"


def test_no_module_is_over_500_lines_and_no_function_over_80() -> None:
    long_modules, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0].startswith("_"):
            continue
        text = path.read_text()
        if len(text.splitlines()) > 500:
            long_modules.append(f"{path.relative_to(PACKAGE)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    long_functions.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {length} lines")
    assert not long_modules and not long_functions, long_modules + long_functions


def test_test_files_have_unique_names() -> None:
    """pytest imports test modules by basename (no packages under tests/): two of one name fail collection."""
    names = [p.name for p in (PACKAGE.parent / "tests").rglob("test_*.py")]
    assert len(names) > 50 and len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
