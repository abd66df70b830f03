"""Vendor C synthesis of an hls4ml project (Vitis HLS or Vivado HLS), its report into the manifest.

The compiled project is copied into its own folder first, so synthesis never
changes the compile stage's files (and its cache). The tool runs through
edgekit's tool runner: explicit working directory, timeout, a log file, and a
checked exit code.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from edgekit.backends.hls4ml.project import PROJECT, PROJECT_DIR
from edgekit.backends.hls4ml.reports import CsynthReport, parse_csynth_xml
from edgekit.core.artifacts import CompiledArtifact
from edgekit.core.config import SynthSettings
from edgekit.core.errors import BackendUnavailable
from edgekit.core.targets import TargetProfile
from edgekit.core.tools import run_tool

__all__ = ["SynthesisResult", "synth_command", "synthesize"]

# Options hls4ml's build_prj.tcl reads: C synthesis only.
OPTIONS = {"reset": 1, "csim": 0, "synth": 1, "cosim": 0, "validation": 0, "export": 0, "vsynth": 0, "fifo_opt": 0}


@dataclass(frozen=True)
class SynthesisResult:
    target: str
    tool: str
    report: CsynthReport
    log: str


def synth_command(target: TargetProfile) -> list[str]:
    """The vendor command for the target's HLS flavour; BackendUnavailable when it is not on PATH."""
    assert target.fpga is not None
    if target.fpga.hls_backend == "Vitis":
        program, args = "vitis-run", ["--tcl", "build_prj.tcl", "--mode", "hls"]
    else:
        opts = " ".join(f"{k}={v}" for k, v in OPTIONS.items())
        program, args = "vivado_hls", ["-f", "build_prj.tcl", opts]
    path = shutil.which(program)
    if path is None:
        raise BackendUnavailable(
            f"--synth for {target.name} needs {program} ({target.fpga.hls_backend} HLS) on PATH",
            hint="install AMD Vitis/Vivado and source its settings64.sh; edgekit doctor lists toolchains",
        )
    return [path, *args]


def synthesize(
    artifact: CompiledArtifact, compiled_dir: Path, target: TargetProfile, cfg: SynthSettings, out_dir: Path
) -> SynthesisResult:
    command = synth_command(target)
    project = out_dir / PROJECT_DIR
    shutil.copytree(compiled_dir / PROJECT_DIR, project)
    options = "".join(f"    {k} {v}\n" for k, v in OPTIONS.items())
    (project / "build_opt.tcl").write_text(f"array set opt {{\n{options}}}\n")
    log = out_dir / "synth.log"
    assert target.fpga is not None
    flavour = target.fpga.hls_backend
    run_tool(command, cwd=project, timeout_s=cfg.timeout_s, log_path=log, name=f"{flavour} HLS C synthesis")
    top = str(artifact.info.get("project", PROJECT))  # a build names its own top; older builds hls4ml's
    report = parse_csynth_xml(project / f"{top}_prj" / "solution1" / "syn" / "report" / f"{top}_csynth.xml")
    return SynthesisResult(target.name, Path(command[0]).name, report, "synth.log")
