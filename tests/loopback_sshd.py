"""A throwaway OpenSSH server on 127.0.0.1 for the hardware-in-the-loop tests (Debian's openssh-server).

Its own host key, client key, authorized_keys and config in a temporary folder; a free port; started in
the foreground and stopped with every session it opened (commands a killed client leaves behind included).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["Sshd", "keygen", "loopback_sshd", "sshd_binary"]


def sshd_binary() -> str | None:
    return shutil.which("sshd", path=f"/usr/sbin:/usr/local/sbin:{os.environ.get('PATH', '')}")


def keygen(path: Path) -> str:
    """A new unencrypted ed25519 key at ``path``; returns its public half, ``ssh-ed25519 AAAA...``."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)  # fmt: skip
    kind, blob = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {blob}"


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    folder: Path
    client_key: Path
    host_public: str

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def known_hosts(self, path: Path, public: str | None = None) -> Path:
        """A known_hosts file trusting this server's key (or ``public``, another one)."""
        path.write_text(f"[127.0.0.1]:{self.port} {public or self.host_public}\n")
        return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _session_pids(port: int) -> set[int]:
    """Processes sshd started for connections to ``port`` (their SSH_CONNECTION ends in '127.0.0.1 PORT')."""
    suffix = f" 127.0.0.1 {port}".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
                if any(v.startswith(b"SSH_CONNECTION=") and v.endswith(suffix) for v in env):
                    found.add(int(entry))
    return found - {os.getpid()}


@contextlib.contextmanager
def loopback_sshd(folder: Path, timeout_s: float = 10.0) -> Iterator[Sshd]:
    sshd = sshd_binary()
    assert sshd is not None, "sshd is not installed (apt-get install openssh-server)"
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    host_public = keygen(folder / "host_ed25519")
    (folder / "authorized_keys").write_text(keygen(folder / "client_ed25519") + "\n")
    user = pwd.getpwuid(os.getuid()).pw_name
    for _ in range(5):  # the free port may be taken between the probe and sshd's bind
        port = _free_port()
        config = folder / "sshd_config"
        config.write_text(
            "\n".join([
                "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {folder / 'host_ed25519'}",
                f"PidFile {folder / 'sshd.pid'}", f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                f"AllowUsers {user}", "PubkeyAuthentication yes", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                "PermitRootLogin prohibit-password", "PrintMotd no", "PrintLastLog no", "X11Forwarding no",
                "MaxStartups 100", "LogLevel INFO", "",
            ])
        )  # fmt: skip
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        lines: list[str] = []
        ready = threading.Event()
        log = (folder / "sshd.log").open("wb")

        def pump(proc: subprocess.Popen[bytes], log: BinaryIO, lines: list[str], ready: threading.Event) -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:  # keep reading so sshd never blocks on a full pipe
                log.write(raw)
                log.flush()
                lines.append(raw.decode(errors="replace"))
                if b"Server listening on" in raw:
                    ready.set()
            ready.set()

        thread = threading.Thread(target=pump, args=(proc, log, lines, ready), daemon=True)
        thread.start()
        ready.wait(timeout_s)
        if proc.poll() is None and any("Server listening on" in line for line in lines):
            break
        proc.kill()
        proc.wait()
        thread.join(timeout=5)
        log.close()
        if not any("Address already in use" in line for line in lines):
            raise RuntimeError("sshd did not start:\n" + "".join(lines))
    else:
        raise RuntimeError("no free port for sshd after 5 tries")
    try:
        yield Sshd(port, user, folder, folder / "client_ed25519", host_public)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        proc.kill()
        for pid in _session_pids(port):  # sessions and commands outlive the listener: end them too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        thread.join(timeout=5)  # sshd's last lines, then the log
        log.close()
