"""The host side of a hardware-in-the-loop run: ship a target's artifact and golden inputs, judge what comes back.

Outputs from the device are compared, sample by sample, with the reference the target was built to match
(brevitas' outputs for a quantized target, the float model's for a float one), and the target's gates from
the build (agreement, metric drop, latency budget) are applied to the device's own numbers.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends import get_backend
from edgekit.core.config import FORMAT_GATES
from edgekit.core.errors import ConfigError, InputError
from edgekit.core.jsonio import write_json
from edgekit.core.latency import LatencyStat
from edgekit.core.metrics import task_metric
from edgekit.core.progress import say
from edgekit.core.results import TargetResult
from edgekit.core.schema import build, to_plain
from edgekit.hil.device_run import (
    ARTIFACT_DIR,
    DEVICE_FILE,
    INPUTS_FILE,
    JOB_FILE,
    JOB_SCHEMA_VERSION,
    OUTPUTS_FILE,
)
from edgekit.hil.devices import Device, job_tempdir
from edgekit.pipeline.reopen import OpenedBuild
from edgekit.stages.validate import score_outputs, target_resources

__all__ = ["HilResult", "Mismatch", "hil_targets", "run_target"]

MAX_LISTED = 20  # mismatching samples listed by number


@dataclass(frozen=True)
class Mismatch:
    sample: int  # index into the build's golden vectors
    max_abs_diff: float


@dataclass(frozen=True)
class HilResult:
    target: str
    device: str
    reference: str  # what the outputs were compared with
    tolerance: float  # a sample mismatches when any output differs by more than this
    n_samples: int
    n_mismatched: int
    mismatches: tuple[Mismatch, ...]  # the first MAX_LISTED, by sample number
    result: TargetResult  # metric, agreement, device latency, gates
    host: str
    platform: str
    load_s: float
    modified: tuple[str, ...] = ()  # artifact files changed since compile

    @property
    def passed(self) -> bool:
        return self.n_mismatched == 0 and self.result.passed

    def describe_mismatches(self) -> str:
        if not self.n_mismatched:
            return f"all {self.n_samples} samples match the {self.reference} (tolerance {self.tolerance:g})"
        listed = ", ".join(f"sample {m.sample} (max |diff| {m.max_abs_diff:.4g})" for m in self.mismatches)
        more = (
            f" and {self.n_mismatched - len(self.mismatches)} more" if self.n_mismatched > len(self.mismatches) else ""
        )
        return (
            f"{self.n_mismatched} of {self.n_samples} samples differ from the {self.reference} by more than "
            f"{self.tolerance:g}: {listed}{more}"
        )


def hil_targets(opened: OpenedBuild, wanted: tuple[str, ...] = ()) -> list[str]:
    """The build's compiled targets, or the ``wanted`` ones (each must be compiled in this build)."""
    compiled = list(opened.compiled)
    for name in wanted:
        if name not in opened.compiled:
            raise ConfigError(
                f"target {name!r} is not compiled in {opened.root}",
                hint=f"compiled there: {', '.join(compiled) or 'none'}",
            )
    return list(wanted) or compiled


def _write_job(opened: OpenedBuild, name: str, n: int | None, folder: Path) -> np.ndarray:
    settings = opened.settings(name)
    golden = opened.target_golden(name).limited(n if n is not None else settings.validation.max_samples)
    job = {
        "schema_version": JOB_SCHEMA_VERSION,
        "profile": opened.manifest["targets"][name]["profile"],
        "artifact": to_plain(opened.compiled[name]),
        "latency": to_plain(settings.latency),
        "batch_size": settings.validation.batch_size,
    }
    write_json(folder / JOB_FILE, job)
    np.save(folder / INPUTS_FILE, golden.inputs, allow_pickle=False)
    shutil.copytree(opened.root / "targets" / name, folder / ARTIFACT_DIR, symlinks=False)
    return golden.inputs


def _read_result(result_dir: Path, n: int, n_outputs: tuple[int, ...]) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        outputs = np.load(result_dir / OUTPUTS_FILE, allow_pickle=False)
        device = json.loads((result_dir / DEVICE_FILE).read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"the device's results in {result_dir} are missing or corrupt: {err}") from err
    if not isinstance(outputs, np.ndarray) or outputs.dtype.kind not in "fiu":
        raise InputError(f"the device returned outputs that are not a numeric array ({type(outputs).__name__})")
    if outputs.shape != (n, *n_outputs):
        raise InputError(f"the device returned outputs of shape {outputs.shape}, expected {(n, *n_outputs)}")
    return outputs, device


def run_target(opened: OpenedBuild, name: str, device: Device, *, timeout_s: float = 300.0,
               samples: int | None = None) -> HilResult:  # fmt: skip
    """Run target ``name`` of the build on ``device`` and judge its outputs and latency."""
    if name not in opened.compiled:
        raise ConfigError(f"target {name!r} is not compiled in {opened.root}")
    if samples is not None and samples < 1:
        raise ConfigError(f"--samples must be at least 1, not {samples}")
    profile = opened.profile(name)
    settings = opened.settings(name)
    family = opened.family(name)
    folder = job_tempdir()
    try:
        inputs = _write_job(opened, name, samples, folder)
        say(f"[hil] {name} on {device.name}: {len(inputs)} samples")
        result_dir = device.run(folder, timeout_s)
        golden = opened.target_golden(name).limited(len(inputs))
        shape = (golden.quant_outputs if golden.quant_outputs is not None else golden.float_outputs).shape[1:]
        outputs, info = _read_result(result_dir, len(inputs), shape)  # quant.deploy_until: a cut's values
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        latency = tuple(build(LatencyStat, s) for s in info["latency"])
        runner, host, platform = str(info["runner"]), str(info["host"]), str(info["platform"])
        load_s = float(info["load_s"])
    except (KeyError, TypeError, ValueError, ConfigError) as err:
        raise InputError(f"the device's {DEVICE_FILE} is incomplete: {err}") from err
    # the metric drop is measured on the samples that ran: the float model's metric on the same ones
    reference_metric = opened.previous.reference.metric
    if len(outputs) < opened.previous.reference.n_samples:
        float_ref = opened.float_golden().limited(len(outputs))
        reference_metric = task_metric(golden.metric, float_ref.float_outputs, float_ref.labels)
    resources = target_resources(get_backend(profile.backend), opened.compiled[name], profile)
    result = score_outputs(
        name, profile.backend, f"{runner} on {device.name} ({host})", outputs, latency, golden, settings,
        reference_metric, resources,
    )  # fmt: skip
    if family:
        assert golden.quant_outputs is not None
        reference, expected = f"quantized reference ({family})", golden.quant_outputs
        tolerance = settings.gates.max_abs_diff_vs_quantized
    else:
        reference, expected = "float reference", golden.float_outputs
        tolerance = settings.gates.max_abs_diff_vs_float
    if tolerance is None:
        tolerance = 0.0 if family else FORMAT_GATES["fp32"]["max_abs_diff_vs_float"]
    diff = np.abs(outputs.astype(np.float64) - expected.astype(np.float64)).reshape(len(outputs), -1).max(axis=1)
    bad = np.flatnonzero(~(diff <= tolerance))  # NaN outputs mismatch too
    mismatches = tuple(Mismatch(int(i), float(diff[i])) for i in bad[:MAX_LISTED])
    return HilResult(
        target=name, device=device.name, reference=reference, tolerance=float(tolerance), n_samples=len(outputs),
        n_mismatched=len(bad), mismatches=mismatches, result=replace(result, modified=opened.modified.get(name, ())),
        host=host, platform=platform, load_s=load_s,
        modified=opened.modified.get(name, ()),
    )  # fmt: skip
