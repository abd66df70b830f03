"""What every backend provides: a build step and a runner (Polygraphy's loader/runner split), and the hooks
a backend may offer beyond them, each declared here once.

The pipeline calls a backend only through :class:`Backend`: five methods every backend implements
(availability, versions, profile checks, compile, load) and the optional hooks below, which
:class:`BackendBase` gives a default that says "not offered". A built-in or third-party backend subclasses
:class:`BackendBase` and overrides what it offers; :func:`edgekit.backends.get_backend` refuses an object
that lacks part of the contract, naming what is missing.

Optional hooks (capability flag, then the method it enables):

* ``float_path``: an FPGA backend that can build a float model (hls4ml's PyTorch frontend); False makes
  a build without ``--quant`` stop before any work (the RTL path builds quantized logic only).
* ``float_graph``: the float graph it compiles, ``"onnx"`` (the ONNX export) or ``"torch"`` (the torch
  model itself: AOTInductor, hls4ml's float path).
* ``brevitas_int8``: an INT8 backend that compiles a brevitas network's own QCDQ export as it is (ONNX
  Runtime); a brevitas model is refused for other INT8 targets before any work.
* :meth:`Backend.secondary_runners`: emulators validated beside the target's own runner.
* :meth:`Backend.resources`: resource and latency figures of a compiled artifact, for the budget gates.
* ``traces_artifact`` / :meth:`Backend.trace_artifact`: every layer's output read from the compiled
  artifact itself (onnxruntime), to name the first layer that departs from the reference.
* ``traces_graph`` / :meth:`Backend.trace`: the same from a tracing copy built from the exported graph
  (hls4ml, the RTL path).
* ``writes_vectors`` / :meth:`Backend.write_vectors`: testbench vectors of a bit-exact target.
* :meth:`Backend.check_size`: refuse a model the backend could not build in time (ConfigError), by the
  measures of :class:`ModelSize` (the RTL path's multiplications, hls4ml io_parallel's window copies).
* :meth:`Backend.quant_problems`: the layers of a quantized model the backend cannot build exactly, each with
  the reason, checked before any work (the number-format rules every FPGA or INT8 target shares are
  :func:`edgekit.core.precision.legality_problems`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from edgekit.core.artifacts import CompiledArtifact, ExportedGraph
from edgekit.core.precision import QuantPlan
from edgekit.core.runner import Runner, RunnerBase
from edgekit.core.targets import TargetProfile

if TYPE_CHECKING:  # the model package needs torch; a device running artifacts imports this module without it
    from edgekit.model.quant_graph import GraphInfo

__all__ = ["Backend", "BackendBase", "LayerTrace", "ModelFacts", "ModelSize", "Runner", "RunnerBase", "missing_hooks"]

# (layer name, layer kind, its outputs for the traced samples, flattened per sample)
LayerTrace = list[tuple[str, str, np.ndarray]]


@dataclass(frozen=True)
class ModelFacts:
    """What the check before any work knows of a model: its graph's facts, its input shape (no batch axis), and
    the layers a build deploys (None: all; with ``quant.deploy_until``, those up to the cut)."""

    graph: GraphInfo
    input_shape: tuple[int, ...]
    deployed: frozenset[str] | None = None

    def ours(self, names: frozenset[str]) -> list[str]:
        """The ``names`` a build deploys, sorted: a layer after the cut runs on the host and meets no target rule."""
        return sorted(names if self.deployed is None else names & self.deployed)


@dataclass
class ModelSize:
    """Size measures a backend may refuse a model by before any work, each a list of (layer, count) computed on
    first use (a forward pass of the torch model). ``deployed``: the layers a quantized build deploys (up to
    ``quant.deploy_until``); ``pruning``: how the planned pruning was counted ("" when there is none)."""

    measure_multiplies: Callable[[], list[tuple[str, int]]]  # multiplications by the weights the pruning leaves
    measure_window_copies: Callable[[], list[tuple[str, int]]]  # per convolution: positions x kernel x channels
    deployed: frozenset[str]
    pruning: str = ""
    _measured: dict[str, list[tuple[str, int]]] = field(default_factory=dict, repr=False)

    def _rows(self, name: str, measure: Callable[[], list[tuple[str, int]]]) -> list[tuple[str, int]]:
        if name not in self._measured:
            self._measured[name] = measure()
        return self._measured[name]

    def multiplies(self) -> list[tuple[str, int]]:
        """Per deployed weighted layer, its multiplications by non-zero weights after the planned pruning."""
        return [row for row in self._rows("multiplies", self.measure_multiplies) if row[0] in self.deployed]

    def window_copies(self, quantized: bool) -> list[tuple[str, int]]:
        """Per convolution (deployed ones of a quantized build; all on a float path), the window elements an
        im2col copies one by one."""
        rows = self._rows("window_copies", self.measure_window_copies)
        return [row for row in rows if not quantized or row[0] in self.deployed]


@runtime_checkable
class Backend(Protocol):
    name: str
    float_path: bool
    brevitas_int8: bool
    float_graph: Literal["onnx", "torch"]
    traces_artifact: bool
    traces_graph: bool
    writes_vectors: bool

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

    def secondary_runners(
        self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile
    ) -> dict[str, Runner]:
        """Emulators validated beside the target's runner, by label (``target [label]`` in the report)."""

    def check_size(self, target: TargetProfile, quantized: bool, size: ModelSize) -> None:
        """Refuse (ConfigError) a model of this size that the backend could not build in time for ``target``."""

    def quant_problems(self, plan: QuantPlan, model: ModelFacts, target: TargetProfile) -> list[str]:
        """Every deployed layer of the quantized model this backend cannot build exactly, with the reason."""

    def resources(self, artifact: CompiledArtifact) -> tuple[dict[str, float], str] | None:
        """Resource and latency figures of ``artifact`` (``lut``, ``ff``, ``dsp``, ``bram_18k``, ``latency_ns``,
        ``fmax_mhz``) and their source; None when the backend has none."""

    def trace_artifact(
        self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile, x: np.ndarray
    ) -> LayerTrace:
        """Every layer's output for ``x``, read from the compiled artifact (``traces_artifact``)."""

    def trace(self, graph_path: Path, target: TargetProfile, x: np.ndarray) -> LayerTrace:
        """Every layer's output for ``x`` (channels last), from a tracing build of the graph (``traces_graph``)."""

    def write_vectors(
        self, artifact: CompiledArtifact, artifact_path: Path, inputs: np.ndarray, expected: np.ndarray, out_dir: Path
    ) -> None:
        """Stimulus, response and testbench files for ``artifact`` into ``out_dir`` (``writes_vectors``)."""


class BackendBase:
    """The optional hooks of :class:`Backend`, not offered: subclass it and override what a backend offers."""

    name = "base"
    float_path = True
    brevitas_int8 = False
    float_graph: Literal["onnx", "torch"] = "onnx"
    traces_artifact = False
    traces_graph = False
    writes_vectors = False

    def secondary_runners(
        self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile
    ) -> dict[str, Runner]:
        return {}

    def check_size(self, target: TargetProfile, quantized: bool, size: ModelSize) -> None:
        return None

    def quant_problems(self, plan: QuantPlan, model: ModelFacts, target: TargetProfile) -> list[str]:
        return []

    def resources(self, artifact: CompiledArtifact) -> tuple[dict[str, float], str] | None:
        return None

    def trace_artifact(
        self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile, x: np.ndarray
    ) -> LayerTrace:
        raise NotImplementedError(f"backend {self.name} does not trace its artifacts (traces_artifact is False)")

    def trace(self, graph_path: Path, target: TargetProfile, x: np.ndarray) -> LayerTrace:
        raise NotImplementedError(f"backend {self.name} does not trace graphs (traces_graph is False)")

    def write_vectors(
        self, artifact: CompiledArtifact, artifact_path: Path, inputs: np.ndarray, expected: np.ndarray, out_dir: Path
    ) -> None:
        raise NotImplementedError(f"backend {self.name} writes no test vectors (writes_vectors is False)")


_MEMBERS = ("name", "float_path", "brevitas_int8", "float_graph", "traces_artifact", "traces_graph", "writes_vectors",
            "unavailable_reason", "versions", "check_target", "compile", "load", "secondary_runners",
            "check_size", "quant_problems", "resources", "trace_artifact", "trace", "write_vectors")  # fmt: skip


def missing_hooks(candidate: object) -> list[str]:
    """The members of the :class:`Backend` contract ``candidate`` lacks (none for a :class:`BackendBase` subclass
    that implements the five required methods): the one check of a third-party backend, when it is loaded."""
    return [member for member in _MEMBERS if not hasattr(candidate, member)]
