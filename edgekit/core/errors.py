"""Every error edgekit raises on purpose, and the exit code each one maps to.

    EdgekitError                  root; ``exit_code`` and ``hint`` on every instance
    ├── ConfigError               2  bad recipe, profile, CLI flag or unknown key
    │   └── UnknownNameError      2  a model, target or backend name that does not exist
    ├── InputError                2  missing or corrupt file, data that does not fit the model
    ├── BackendUnavailable        3  the target's backend is not built into edgekit or not installed
    ├── ToolchainError            4  an external tool or runtime failed (g++, onnxruntime, ...)
    ├── DiskFullError             4  the disk under the build folder filled up (nothing half-written is kept)
    └── DeviceError               4  a hardware-in-the-loop device could not be reached or its run failed

A validation gate that fails is not an exception: it is data in the validation
result, and the CLI turns it into exit code 1 (``GATES_FAILED``).

Bugs in edgekit stay ordinary exceptions with their traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "GATES_FAILED",
    "OK",
    "BackendUnavailable",
    "ConfigError",
    "DeviceError",
    "DiskFullError",
    "EdgekitError",
    "InputError",
    "ToolchainError",
    "UnknownNameError",
]

OK = 0
GATES_FAILED = 1


class EdgekitError(Exception):
    """Root of every deliberate edgekit error: a message, a hint and an exit code.

    >>> import edgekit
    >>> try:
    ...     edgekit.load_target("fpga-nonexistent")
    ... except edgekit.EdgekitError as err:
    ...     print(err.exit_code, "unknown target" in err.message)
    2 True
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str = "", log_path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.log_path = log_path

    def __str__(self) -> str:
        parts = [self.message]
        if self.log_path is not None:
            parts.append(f"log: {self.log_path}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class ConfigError(EdgekitError):
    """A recipe, target profile or command-line setting is wrong (exit code 2).

    >>> import edgekit
    >>> try:
    ...     edgekit.compile_model(edgekit.CompileRequest("jet_tagger", overrides=("train.epoch=3",)))
    ... except edgekit.ConfigError as err:
    ...     print(err.message)
    command line --set: unknown key 'epoch' in [train]
    """

    exit_code = 2


class UnknownNameError(ConfigError):
    """A model, target or backend name that edgekit does not know."""


class InputError(EdgekitError):
    """A file is missing or corrupt, or data does not fit the model (exit code 2).

    >>> import edgekit
    >>> try:
    ...     edgekit.compile_model(edgekit.CompileRequest("missing.onnx"))
    ... except edgekit.InputError as err:
    ...     print(err.message)
    ONNX file missing.onnx does not exist
    """

    exit_code = 2


class BackendUnavailable(EdgekitError):
    """The backend a target needs is not part of edgekit yet or is not installed (exit code 3).

    >>> import edgekit
    >>> edgekit.BackendUnavailable("tensorrt is not installed", hint="pip install 'edgekit[tensorrt]'").exit_code
    3
    """

    exit_code = 3


class ToolchainError(EdgekitError):
    """An external tool or foreign runtime failed while building or running an artifact (exit code 4).

    ``log_path`` names the tool's captured log, when there is one.

    >>> import edgekit
    >>> edgekit.ToolchainError("g++ failed", log_path=None).exit_code
    4
    """

    exit_code = 4


class DiskFullError(EdgekitError):
    """The disk (or quota, or file-size limit) ran out while edgekit wrote a stage, a manifest or a report."""

    exit_code = 4


class DeviceError(EdgekitError):
    """A hardware-in-the-loop device could not be reached, refused us, or its run failed or timed out."""

    exit_code = 4
