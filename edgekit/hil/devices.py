"""Where a hardware-in-the-loop job runs: this machine (``local``) or an edge box over SSH (``ssh://``).

The SSH device uses the OpenSSH client (``ssh``), so ``~/.ssh/config``, agents and jump hosts work as
they do in a terminal. What keeps that path safe:

- host keys are verified against known_hosts (``StrictHostKeyChecking=yes``); a host never seen before
  is trusted only with ``trust_new_host`` (``accept-new``: a *changed* key is still refused);
- ``BatchMode=yes``: no password prompt can hang a run;
- every remote command is one ``shlex.join`` of its arguments, so no path or name reaches the remote
  shell unquoted, and the user and host of the URL cannot start with ``-`` (no option injection);
- each run works in its own ``mktemp -d`` folder on the remote, removed afterwards, also after a failure;
- the remote command runs under ``timeout``, so a run the host gives up on does not linger on the device;
- results come back as a tar stream checked member by member (:func:`safe_extract`), and are read as
  ``.npy`` without pickle and as JSON.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import unquote, urlsplit

from edgekit.core.errors import ConfigError, DeviceError, InputError
from edgekit.hil.device_run import RESULT_DIR

__all__ = ["Device", "LocalDevice", "SshDevice", "parse_device", "safe_extract"]

MAX_RESULT_BYTES = 1 << 30  # what a device may send back
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")  # a user or host name that cannot be an option
_REMOTE_TMP = re.compile(r"^/[A-Za-z0-9_./-]+$")


class Device(Protocol):
    name: str

    def run(self, job_dir: Path, timeout_s: float) -> Path:
        """Run the job in ``job_dir``; return the local folder holding its ``result/`` files."""
        ...


def _tail(text: str, lines: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass
class LocalDevice:
    """A subprocess on this machine, with the same Python (or ``python``) as the host by default."""

    python: str = sys.executable
    name: str = "local"

    def run(self, job_dir: Path, timeout_s: float) -> Path:
        command = [self.python, "-m", "edgekit.hil.device_run", str(job_dir)]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as err:
            raise DeviceError(
                f"the local device run did not finish within {timeout_s:g} s",
                hint="raise the timeout (--hil-timeout) or run fewer samples",
            ) from err
        except OSError as err:
            raise DeviceError(f"cannot start {self.python}: {err}") from err
        _check_run(proc.returncode, proc.stderr, "local")
        return job_dir / RESULT_DIR


def _check_run(returncode: int, stderr: str, where: str) -> None:
    if returncode == 0:
        return
    if re.search(r"No module named '?edgekit", stderr):
        raise DeviceError(
            f"edgekit is not installed for the Python that runs on {where}",
            hint="install the runtime part there: pip install edgekit (no training dependencies), "
            "or point --remote-python at a Python that has it",
        )
    if returncode < 0 or returncode in (137, 124, 143):
        raise DeviceError(
            f"the run on {where} was killed (exit status {returncode}) before it finished:\n{_tail(stderr)}"
        )
    raise DeviceError(f"the run on {where} failed (exit code {returncode}):\n{_tail(stderr)}")


@dataclass
class SshDevice:
    """An edge box reached with the OpenSSH client: ``ssh://[user@]host[:port]``."""

    host: str
    user: str | None = None
    port: int | None = None
    python: str = "python3"  # the Python on the device that has edgekit installed
    identity: Path | None = None
    known_hosts: Path | None = None
    trust_new_host: bool = False
    ssh_config: Path | None = None  # another ssh_config than ~/.ssh/config (/dev/null: none)
    connect_timeout_s: float = 10.0
    name: str = ""

    def __post_init__(self) -> None:
        for what, value in (("host", self.host), ("user", self.user)):
            if value is not None and not _SAFE_NAME.match(value):
                raise ConfigError(f"ssh device {what} {value!r} is not a plain name", hint="use ssh://user@host:port")
        if not self.name:
            self.name = f"ssh://{self.user + '@' if self.user else ''}{self.host}{f':{self.port}' if self.port else ''}"

    def _ssh(self, remote: list[str]) -> list[str]:
        args = ["ssh"] + (["-F", str(self.ssh_config)] if self.ssh_config is not None else [])
        args += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(self.connect_timeout_s))}"]
        args += ["-o", f"StrictHostKeyChecking={'accept-new' if self.trust_new_host else 'yes'}"]
        args += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR"]
        if self.known_hosts is not None:  # quoted: ssh splits the value on spaces and expands % and ~ tokens
            args += ["-o", f'UserKnownHostsFile="{_ssh_path(self.known_hosts)}"']
        if self.identity is not None:
            args += ["-o", "IdentitiesOnly=yes", "-o", f'IdentityFile="{_ssh_path(self.identity)}"']
        if self.port is not None:
            args += ["-p", str(self.port)]
        if self.user is not None:
            args += ["-l", self.user]
        return [*args, "--", self.host, shlex.join(remote)]

    def _call(self, remote: list[str], timeout_s: float, stdin: bytes | None = None, what: str = "") -> bytes:
        try:
            proc = subprocess.run(
                self._ssh(remote), input=stdin if stdin is not None else b"", capture_output=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired as err:
            raise DeviceError(
                f"{self.name}: {what or remote[0]} did not finish within {timeout_s:g} s",
                hint="raise the timeout (--hil-timeout), or check the device and the network",
            ) from err
        except FileNotFoundError as err:
            raise DeviceError("the OpenSSH client (ssh) is not on PATH", hint="apt-get install openssh-client") from err
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode == 255:
            raise self._connection_error(stderr)
        if proc.returncode != 0:
            _check_run(proc.returncode, stderr, self.name)
        return proc.stdout

    def _connection_error(self, stderr: str) -> DeviceError:
        text = stderr.strip()
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
            if re.search(r"No \S+ host key is known", text):
                return DeviceError(
                    f"{self.name}: the host key is not in known_hosts, so the host cannot be verified",
                    hint="add it (ssh-keyscan, checked out of band) or trust it once with --trust-new-host",
                )
            return DeviceError(
                f"{self.name}: host key verification failed: the key differs from known_hosts:\n{_tail(text, 3)}",
                hint="if the device was reinstalled, remove its old line from known_hosts (ssh-keygen -R); "
                "otherwise someone may be in the middle",
            )
        if "Permission denied" in text:
            return DeviceError(f"{self.name}: authentication failed: {_tail(text, 2)}", hint="check the key and user")
        if "Connection refused" in text:
            return DeviceError(f"{self.name}: connection refused", hint="is sshd running on that host and port?")
        if not text:
            return DeviceError(
                f"{self.name}: ssh ended with status 255 and no message: the remote command was killed by a signal, "
                "or the connection dropped"
            )
        return DeviceError(f"{self.name}: ssh failed: {_tail(text, 3)}")

    def run(self, job_dir: Path, timeout_s: float) -> Path:
        made = self._call(["mktemp", "-d", "-t", "edgekit-hil.XXXXXXXX"], self.connect_timeout_s + 10, what="mktemp")
        lines = made.decode(errors="replace").strip().splitlines()
        remote = lines[-1].strip() if lines else ""
        quiet = (
            "a login script that prints to stdout (.bashrc) corrupts every transfer: keep it quiet when not interactive"
        )
        if not _REMOTE_TMP.match(remote):
            raise DeviceError(f"{self.name}: mktemp printed {made[:200]!r}, not a folder name", hint=quiet)
        if len(lines) > 1:
            with contextlib.suppress(DeviceError):
                self._call(["rm", "-rf", "--", remote], self.connect_timeout_s + 10, what="cleanup")
            raise DeviceError(
                f"{self.name}: the remote shell prints {lines[0][:120]!r} before every command", hint=quiet
            )
        try:
            self._call(["tar", "-xf", "-", "-C", remote], timeout_s, stdin=_tar_folder(job_dir), what="upload")
            self._call([self.python, "-c", "import edgekit"], self.connect_timeout_s + 30, what="edgekit check")
            # TERM at the limit, KILL 2 s later; exit status 124 says the limit was hit
            seconds = str(max(1, int(timeout_s)))
            run = ["timeout", "-k", "2", seconds, self.python, "-m", "edgekit.hil.device_run", remote]
            try:
                self._call(run, timeout_s + 10, what="the run")
            except DeviceError as err:
                if "exit status 124" in err.message:
                    raise DeviceError(
                        f"{self.name}: the run did not finish within {timeout_s:g} s and was stopped on the device",
                        hint="raise the timeout (--hil-timeout) or run fewer samples (--samples)",
                    ) from err
                raise
            archive = self._call(["tar", "-cf", "-", "-C", f"{remote}/{RESULT_DIR}", "."], timeout_s, what="download")
        finally:
            with contextlib.suppress(DeviceError):  # the device is gone: the run's own error says why
                self._call(["rm", "-rf", "--", remote], self.connect_timeout_s + 10, what="cleanup")
        local = Path(tempfile.mkdtemp(prefix="edgekit-hil-result-", dir=job_dir))
        safe_extract(archive, local)
        return local


def _ssh_path(path: Path) -> str:
    """A path for an ssh option value: %-tokens escaped, to be put in double quotes."""
    text = str(path.resolve())
    if '"' in text:
        raise ConfigError(f"ssh cannot take a path with a double quote: {text}")
    return text.replace("%", "%%")


def _tar_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def safe_extract(archive: bytes, dest: Path) -> None:
    """Extract a tar stream from a device into ``dest``: plain files and folders inside ``dest`` only."""
    if len(archive) > MAX_RESULT_BYTES:
        raise InputError(f"the device sent {len(archive)} bytes back, more than {MAX_RESULT_BYTES}")
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            members = tar.getmembers()
            for member in members:
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts:
                    raise InputError(
                        f"the archive from the device holds {member.name!r}, a path outside its result folder",
                        hint="refused: the device (or the link to it) is not behaving; nothing was extracted",
                    )
                if not (member.isfile() or member.isdir()):
                    raise InputError(
                        f"the archive from the device holds {member.name!r}, which is not a plain file or folder",
                        hint="refused: links and devices are never extracted; nothing was extracted",
                    )
            tar.extractall(dest, members=members, filter="data")
    except tarfile.TarError as err:
        raise InputError(f"the archive from the device is corrupt: {err}") from err


def parse_device(
    spec: str,
    *,
    python: str | None = None,
    identity: Path | None = None,
    known_hosts: Path | None = None,
    trust_new_host: bool = False,
    ssh_config: Path | None = None,
) -> Device:
    """``local`` or ``ssh://[user@]host[:port]``."""
    if spec == "local":
        return LocalDevice(python=python or sys.executable)
    parts = urlsplit(spec)
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"device {spec!r} is neither 'local' nor ssh://[user@]host[:port]")
    if parts.password is not None:
        raise ConfigError(
            "a password in the device URL is not accepted", hint="use an SSH key (ssh-agent or --identity)"
        )
    try:
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"device {spec!r} has a bad port: {err}") from err
    if shutil.which("ssh") is None:
        raise DeviceError("the OpenSSH client (ssh) is not on PATH", hint="apt-get install openssh-client")
    return SshDevice(
        host=parts.hostname,
        user=unquote(parts.username) if parts.username else None,
        port=port,
        python=python or "python3",
        identity=identity,
        known_hosts=known_hosts,
        trust_new_host=trust_new_host,
        ssh_config=ssh_config,
    )


def job_tempdir() -> Path:
    """A private folder for a job on this machine (mode 700)."""
    path = Path(tempfile.mkdtemp(prefix="edgekit-hil-"))
    os.chmod(path, 0o700)
    return path
