"""The device side of a hardware-in-the-loop run: load one compiled artifact, run the golden inputs, time it.

Run as ``python -m edgekit.hil.device_run JOB_DIR`` on the device, locally or over SSH. It needs only
edgekit's runtime part (numpy, onnx, onnxruntime; no torch): the job folder holds everything else.

    JOB_DIR/job.json        target profile, compiled-artifact record, latency settings, batch size
    JOB_DIR/inputs.npy      the golden inputs
    JOB_DIR/artifact/       the target's folder from the build (``targets/NAME``)
    JOB_DIR/result/         written here: outputs.npy and device.json (timings, host, runner)

Exit codes follow edgekit's (2 bad job, 3 runtime missing, 4 the runtime failed); the message goes to stderr.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

JOB_FILE = "job.json"
INPUTS_FILE = "inputs.npy"
ARTIFACT_DIR = "artifact"
RESULT_DIR = "result"
OUTPUTS_FILE = "outputs.npy"
DEVICE_FILE = "device.json"
JOB_SCHEMA_VERSION = 1

__all__ = ["ARTIFACT_DIR", "DEVICE_FILE", "INPUTS_FILE", "JOB_FILE", "OUTPUTS_FILE", "RESULT_DIR", "run_job"]


def run_job(job_dir: Path) -> dict[str, Any]:
    """Run the job in ``job_dir``; write ``result/``; return what ``device.json`` holds."""
    from edgekit import __version__
    from edgekit.backends import get_backend
    from edgekit.core.artifacts import CompiledArtifact
    from edgekit.core.config import LatencySettings
    from edgekit.core.errors import InputError
    from edgekit.core.jsonio import write_json
    from edgekit.core.latency import measure_latency
    from edgekit.core.schema import build, to_plain
    from edgekit.core.targets import TargetProfile

    try:
        job = json.loads((job_dir / JOB_FILE).read_text())
        inputs = np.load(job_dir / INPUTS_FILE, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"hardware-in-the-loop job {job_dir} is incomplete or corrupt: {err}") from err
    if job.get("schema_version") != JOB_SCHEMA_VERSION:
        raise InputError(
            f"job schema {job.get('schema_version')!r}, this edgekit reads {JOB_SCHEMA_VERSION}",
            hint="install the same edgekit version on the device as on the host",
        )
    profile = build(TargetProfile, job["profile"], str(job_dir / JOB_FILE), "profile")
    artifact = build(CompiledArtifact, job["artifact"], str(job_dir / JOB_FILE), "artifact")
    latency = build(LatencySettings, job["latency"], str(job_dir / JOB_FILE), "latency")
    backend = get_backend(profile.backend)
    started = time.perf_counter()
    runner = backend.load(artifact, job_dir / ARTIFACT_DIR / artifact.path, profile)
    load_s = time.perf_counter() - started
    try:
        batch = int(job["batch_size"])
        outputs = np.concatenate([runner.run(inputs[i : i + batch]) for i in range(0, len(inputs), batch)])
        stats = [measure_latency(runner, inputs[: max(latency.batch_sizes)], b, latency) for b in latency.batch_sizes]
    finally:
        runner.close()
    result = job_dir / RESULT_DIR
    result.mkdir(exist_ok=True)
    np.save(result / OUTPUTS_FILE, np.ascontiguousarray(outputs), allow_pickle=False)
    device = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "edgekit": __version__,
        "runner": runner.description,
        "load_s": load_s,
        "latency": [to_plain(s) for s in stats],
    }
    write_json(result / DEVICE_FILE, device)
    return device


def main(argv: list[str] | None = None) -> int:
    from edgekit.core.errors import EdgekitError

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m edgekit.hil.device_run JOB_DIR", file=sys.stderr)
        return 2
    try:
        run_job(Path(args[0]))
    except EdgekitError as err:
        print(f"edgekit device run: error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
