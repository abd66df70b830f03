"""What a build is asked for and what it gives back: :class:`CompileRequest`, :class:`BuildResult`, exit codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.results import ValidationReport

__all__ = ["BuildResult", "CompileRequest", "exit_code_for"]


@dataclass(frozen=True)
class CompileRequest:
    """What to build: the model, its targets, and how (the ``edgekit compile`` command's flags, as fields).

    ``model`` is a zoo name (``"jet_tagger"``), a model folder, ``"module:factory"``, or a model object: an
    ``nn.Module`` or a function that returns one (see :func:`edgekit.compile`, which also takes arrays).
    ``targets`` are profile names or TOML paths (empty: the recipe's ``default_targets``); ``out`` the build
    folder (default ``build/NAME``); ``recipe`` a zoo name or recipe path, for a model that brings none;
    ``quant``/``prune`` the command's shorthands (``"w6a8"``, ``"2:4"``); ``overrides`` ``--set`` strings
    (``"train.epochs=5"``); ``data`` a data file for the built-in loader.

    >>> request = CompileRequest("jet_tagger", ("cpu-onnxruntime-int8",), quant="int8", tiny=True)  # doctest: +SKIP
    >>> compile_model(request).exit_code  # doctest: +SKIP
    0
    """

    model: Any
    targets: tuple[str, ...] = ()
    out: Path | None = None
    recipe: str | None = None
    tiny: bool = False
    quant: str | None = None  # shorthand such as "w6a8" or "int8"
    prune: str | None = None  # shorthand such as "0.8", "structured:0.5" or "2:4"
    synth: bool = False  # vendor C synthesis of FPGA targets
    overrides: tuple[str, ...] = ()
    force: bool = False
    data: str | None = None  # a data file for the built-in loader (.npz, .npy, .h5, .csv, .parquet): --data


@dataclass(frozen=True)
class BuildResult:
    """A finished build: its folder, its manifest, the validation report and the command's exit code.

    ``exit_code`` is 0 when every gate passed and 1 when one failed (see ``report.targets`` for which);
    ``load(target)`` runs a compiled artifact on your own arrays (:func:`edgekit.load`).

    >>> result = edgekit.compile(net, data=(x_train, y_train, x_test, y_test))  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP
    >>> result.load("cpu-onnxruntime").predict(x_test[:4]).shape  # doctest: +SKIP
    (4, 5)
    """

    build_dir: Path
    manifest: dict[str, Any] = field(repr=False)
    report: ValidationReport = field(repr=False)
    exit_code: int

    def load(self, target: str | None = None) -> Any:
        """The compiled ``target`` ready to ``predict`` (the only one when not named): :func:`edgekit.load`."""
        from edgekit.api import load

        return load(self.build_dir, target)

    def summary(self) -> str:
        """The table ``edgekit compile`` prints: one row per target, metric, agreement, gates."""
        from edgekit.report.markdown import results_table

        return str(results_table(self.report))

    def __repr__(self) -> str:
        verdict = "all gates passed" if self.exit_code == 0 else f"exit code {self.exit_code}"
        rows = ", ".join(f"{t.target}: {'ok' if t.passed else t.status}" for t in self.report.targets)
        return f"BuildResult({str(self.build_dir)!r}, {verdict}; {rows})"


def exit_code_for(report: ValidationReport) -> int:
    """4 a toolchain failed, 3 a backend was unavailable, 2 an artifact is unreadable, 1 a gate failed, 0 passed."""
    codes = {t.exit_code for t in report.targets if t.status != "ok"}
    for code in (4, 3, 2):
        if code in codes:
            return code
    return 0 if report.passed else 1
