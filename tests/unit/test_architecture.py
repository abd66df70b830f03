"""The backend contract is declared, not probed: every hook is a member of Backend or Runner."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from edgekit.backends import BUILTIN
from edgekit.backends.base import Backend, BackendBase, missing_hooks
from edgekit.runner import Runner, RunnerBase

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


def test_stages_backends_and_reports_import_along_the_pipeline() -> None:
    """Stages never import stages, a backend never imports another backend, results and reports no stage."""
    problems = []
    for path in sorted((PACKAGE / "stages").glob("*.py")):
        own = f"edgekit.stages.{path.stem}"
        problems += [f"{own} imports {m}" for m in _imports(path) if m.startswith("edgekit.stages.") and m != own]
    backends = {spec.partition(":")[0] for spec in BUILTIN.values()}
    for module in backends:
        path = PACKAGE.parent / (module.replace(".", "/") + ".py")
        problems += [f"{module} imports {m}" for m in _imports(path) if m in backends - {module}]
    for name in ("results", "report", "report_html"):
        problems += [
            f"edgekit.{name} imports {m}"
            for m in _imports(PACKAGE / f"{name}.py")
            if m.startswith(("edgekit.stages", "edgekit.backends", "edgekit.pipeline"))
        ]
    assert not problems, problems
