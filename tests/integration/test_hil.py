"""Hardware in the loop: the hil/ test scripts against a jet_tagger build, locally and over SSH to a real sshd.

The SSH server is Debian's OpenSSH on 127.0.0.1 with throwaway keys (tests/loopback_sshd.py). Every fault
must end in a clear error within its timeout, with nothing lost on this side.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgekit.core.errors import DeviceError, InputError
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

pytest.importorskip("brevitas", reason="the INT8 target needs the quant extra: pip install 'edgekit[quant]'")
REPO = Path(__file__).resolve().parents[2]
INT8 = "cpu-onnxruntime-int8"
needs_sshd = pytest.mark.skipif(
    shutil.which("ssh") is None or not Path("/usr/sbin/sshd").exists(),
    reason="needs Debian's openssh-server and openssh-client (.ci/run installs them)",
)


@pytest.fixture(scope="module")
def jet(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    out = tmp_path_factory.mktemp("hil") / "jet"
    overrides = ("latency.batch_sizes=[1,16]", "latency.min_time_s=0.05", "latency.max_time_s=0.2")
    build = compile_model(CompileRequest("jet_tagger", (INT8, "cpu-onnxruntime"), out=out, tiny=True, quant="int8",
                                         overrides=overrides))  # fmt: skip
    assert build.exit_code == 0
    return build


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if shutil.which("ssh") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs Debian's openssh-server and openssh-client (.ci/run installs them)")
    from loopback_sshd import loopback_sshd

    with loopback_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def _flip_second_layer(path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    layer = [n for n in model.graph.node if n.op_type in ("FusedGemm", "Gemm", "QGemm")][1]
    weight = layer.input[3] if layer.op_type == "QGemm" else layer.input[1]
    while weight not in inits:
        weight = producers[weight].input[0]
    values = numpy_helper.to_array(inits[weight]).copy()
    values[np.unravel_index(np.argmax(np.abs(values.astype(np.float64))), values.shape)] *= -1
    inits[weight].CopyFrom(numpy_helper.from_array(values, weight))
    onnx.save(model, str(path))


def _pytest_hil(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``pytest hil ...`` as a lab's CI would run it: a new process from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "hil", "-p", "no:cacheprovider", "-q", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _ssh_args(server, tmp_path: Path) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        "--device", server.url, "--identity", str(server.client_key), "--ssh-config", "/dev/null",
        "--known-hosts", str(server.known_hosts(tmp_path / "known_hosts")), "--remote-python", sys.executable,
    ]  # fmt: skip


def test_pytest_hil_passes_locally_and_fails_naming_sample_and_gate_when_tampered(
    jet: BuildResult, tmp_path: Path
) -> None:
    run = _pytest_hil("--device", "local", "--build", str(jet.build_dir))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{INT8}: PASS on" in run.stdout and "all 800 samples match the quantized reference (int8)" in run.stdout
    assert "batch 1: p50" in run.stdout and "p99" in run.stdout
    assert "pass: max_abs_diff_vs_quantized: 0 (must be <= 0)" in run.stdout
    tampered = tmp_path / "tampered"
    shutil.copytree(jet.build_dir, tampered)
    _flip_second_layer(tampered / "targets" / INT8 / "model.ort.onnx")
    run = _pytest_hil("--device", "local", "--build", str(tampered), "--target", INT8)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"FAILED hil/test_device.py::test_every_sample_matches_the_reference[{INT8}]" in run.stdout
    assert f"FAILED hil/test_device.py::test_gate_holds_on_the_device[{INT8}:max_abs_diff_vs_quantized]" in run.stdout
    assert "samples differ from the quantized reference (int8) by more than 0: sample " in run.stdout
    assert f"artifact changed since compile: targets/{INT8}/model.ort.onnx" in run.stdout


@needs_sshd
def test_pytest_hil_over_ssh_passes_and_fails_when_tampered(jet: BuildResult, sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = set(Path("/tmp").glob("edgekit-hil.*"))
    run = _pytest_hil(*_ssh_args(sshd, tmp_path), "--build", str(jet.build_dir))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"edgekit hardware in the loop: {sshd.url}" in run.stdout and "9 passed" in run.stdout
    tampered = tmp_path / "tampered"
    shutil.copytree(jet.build_dir, tampered)
    _flip_second_layer(tampered / "targets" / INT8 / "model.ort.onnx")
    run = _pytest_hil(*_ssh_args(sshd, tmp_path), "--build", str(tampered))
    assert run.returncode == 1
    assert f"test_gate_holds_on_the_device[{INT8}:max_abs_diff_vs_quantized]" in run.stdout
    assert "samples differ from the quantized reference (int8) by more than 0: sample " in run.stdout
    assert set(Path("/tmp").glob("edgekit-hil.*")) == before  # each run's remote folder was removed


def _device(sshd, tmp_path: Path, **changes):  # type: ignore[no-untyped-def]
    from edgekit.hil import parse_device

    options = {
        "python": sys.executable, "identity": sshd.client_key, "ssh_config": Path("/dev/null"),
        "known_hosts": sshd.known_hosts(tmp_path / "known_hosts"), **changes,
    }  # fmt: skip
    return parse_device(changes.pop("url", sshd.url), **{k: v for k, v in options.items() if k != "url"})


def _run(jet: BuildResult, device, timeout_s: float = 60):  # type: ignore[no-untyped-def]
    from edgekit.hil import open_build, run_target

    return run_target(open_build(jet.build_dir), INT8, device, timeout_s=timeout_s, samples=64)


def _script(path: Path, body: str) -> Path:
    """A stand-in for the device's Python: a shell script around the real one."""
    path.write_text(f"#!/bin/sh\nREAL={sys.executable}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@needs_sshd
def test_host_keys_are_verified(jet: BuildResult, sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from loopback_sshd import keygen

    other = keygen(tmp_path / "impostor")
    wrong = sshd.known_hosts(tmp_path / "wrong_known_hosts", public=other)
    with pytest.raises(DeviceError, match="host key verification failed: the key differs from known_hosts"):
        _run(jet, _device(sshd, tmp_path, known_hosts=wrong))
    empty = tmp_path / "known hosts; $(touch PWNED) %d" / "known_hosts"  # ssh must not split or expand it
    empty.parent.mkdir()
    empty.write_text("")
    with pytest.raises(DeviceError, match="not in known_hosts") as err:
        _run(jet, _device(sshd, tmp_path, known_hosts=empty))
    assert "--trust-new-host" in str(err.value)
    result = _run(jet, _device(sshd, tmp_path, known_hosts=empty, trust_new_host=True))  # trusted once, explicitly
    assert result.passed and f"[127.0.0.1]:{sshd.port} {sshd.host_public}" in empty.read_text()
    with pytest.raises(DeviceError, match="host key verification failed"):  # a changed key is still refused
        _run(jet, _device(sshd, tmp_path, known_hosts=wrong, trust_new_host=True))


@needs_sshd
def test_refused_connection_and_failed_authentication_are_named(jet: BuildResult, sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from loopback_sshd import _free_port, keygen

    started = time.perf_counter()
    with pytest.raises(DeviceError, match="connection refused"):
        _run(jet, _device(sshd, tmp_path, url=f"ssh://{sshd.user}@127.0.0.1:{_free_port()}"))
    keygen(tmp_path / "stranger")
    with pytest.raises(DeviceError, match=r"authentication failed: .*Permission denied \(publickey\)"):
        _run(jet, _device(sshd, tmp_path, identity=tmp_path / "stranger"))
    assert time.perf_counter() - started < 30


@needs_sshd
def test_a_remote_without_edgekit_is_named(jet: BuildResult, sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bare = shutil.which("python3", path="/usr/bin")
    if bare is None or subprocess.run([bare, "-c", "import edgekit"], capture_output=True, cwd="/").returncode == 0:
        pytest.skip("needs a system python3 without edgekit at /usr/bin/python3")
    with pytest.raises(DeviceError, match="edgekit is not installed for the Python that runs on ssh://") as err:
        _run(jet, _device(sshd, tmp_path, python=bare))
    assert "pip install edgekit" in str(err.value)


@needs_sshd
def test_a_run_killed_midway_and_a_slow_device_end_in_clear_errors(jet: BuildResult, sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = set(Path("/tmp").glob("edgekit-hil.*"))
    # the device's process dies by SIGKILL (the OOM killer, a watchdog) 50 ms into the run
    killed = _script(tmp_path / "killed-python", 'case "$*" in *device_run*) "$REAL" "$@" & sleep 0.05; kill -9 $!; '
                     'wait $!; exit $?;; esac\nexec "$REAL" "$@"')  # fmt: skip
    with pytest.raises(DeviceError, match="was killed"):
        _run(jet, _device(sshd, tmp_path, python=str(killed)))
    slow = _script(tmp_path / "slow-python", 'case "$*" in *device_run*) exec sleep 60;; esac\nexec "$REAL" "$@"')
    started = time.perf_counter()
    with pytest.raises(DeviceError, match=r"did not finish within 3 s|was killed"):
        _run(jet, _device(sshd, tmp_path, python=str(slow)), timeout_s=3)
    assert time.perf_counter() - started < 3 + 5 + 15  # the run's limit, ssh's grace, mktemp/upload/cleanup
    assert set(Path("/tmp").glob("edgekit-hil.*")) == before  # cleaned up after both
    assert (jet.build_dir / "targets" / INT8 / "model.ort.onnx").is_file()  # nothing lost on this side


@needs_sshd
def test_paths_with_spaces_and_shell_metacharacters_stay_arguments(jet: BuildResult, sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    odd = tmp_path / "my build; $(touch PWNED) `touch PWNED2` 'q\""
    odd.mkdir()
    build = odd / "jet"
    shutil.copytree(jet.build_dir, build)
    python_dir = tmp_path / "py thon; $(touch PWNED3)"
    python_dir.mkdir()
    _script(python_dir / "python", 'exec "$REAL" "$@"')
    from edgekit.hil import open_build, run_target

    result = run_target(open_build(build), INT8, _device(sshd, tmp_path, python=str(python_dir / "python")),
                        samples=32)  # fmt: skip
    assert result.passed
    for home in (Path.home(), tmp_path, odd, Path.cwd()):
        assert not list(home.glob("PWNED*")), home


def test_results_from_a_device_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    """Tar members outside the result folder, links and pickles are refused; nothing is extracted."""
    import io
    import tarfile

    from edgekit.hil import safe_extract

    def archive(*members: tarfile.TarInfo, data: bytes = b"x") -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for member in members:
                member.size = len(data) if member.isfile() else 0
                tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
        return buffer.getvalue()

    ok = tarfile.TarInfo("./outputs.npy")
    escape = tarfile.TarInfo("../escaped.txt")
    link = tarfile.TarInfo("./device.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for bad, message in ((archive(ok, escape), "outside its result folder"), (archive(ok, link), "not a plain file")):
        dest = tmp_path / "dest"
        dest.mkdir()
        with pytest.raises(InputError, match=message):
            safe_extract(bad, dest)
        assert not list(dest.iterdir()) and not (tmp_path / "escaped.txt").exists()
        shutil.rmtree(dest)
    with pytest.raises(InputError, match="corrupt"):
        safe_extract(b"not a tar stream at all" * 30, tmp_path)
    # a pickled outputs.npy is refused by the reader (np.load without pickle)
    from edgekit.hil.check import _read_result

    result = tmp_path / "result"
    result.mkdir()
    np.save(result / "outputs.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    (result / "device.json").write_text(json.dumps({}))
    with pytest.raises(InputError, match="missing or corrupt"):
        _read_result(result, 1, (5,))


def test_the_device_side_runs_without_torch(jet: BuildResult, tmp_path: Path) -> None:
    """What a remote needs is edgekit's runtime part: the device runner imports neither torch nor scikit-learn."""
    from edgekit.hil.check import _write_job
    from edgekit.pipeline.reopen import open_build

    job = tmp_path / "job"
    job.mkdir()
    _write_job(open_build(jet.build_dir), INT8, 16, job)
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['sklearn'] = None; sys.modules['brevitas'] = None\n"
        "from edgekit.hil.device_run import main; sys.exit(main([sys.argv[1]]))"
    )
    run = subprocess.run([sys.executable, "-c", code, str(job)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert np.load(job / "result" / "outputs.npy").shape == (16, 5)


def test_without_the_train_extra_compile_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from edgekit.cli.main import main; sys.exit(main(['compile', 'jet_tagger', '--tiny', '--out', sys.argv[1]]))"
    )
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, run.stderr
    assert "edgekit compile needs the training part (torch is not installed)" in run.stderr
    assert "pip install 'edgekit[train]'" in run.stderr and "Traceback" not in run.stderr
