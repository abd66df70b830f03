"""A Ray session for sweeps and searches: started (or joined) on first use, on 127.0.0.1 only, stopped at the end.

Started locally, Ray binds every interface and writes a token to the home folder unless told otherwise (the
two environment switches below, measured); its temporary folder is short-named because Ray's socket paths
must fit 107 bytes. SIGTERM becomes a KeyboardInterrupt while a session is open, so a killed sweep stops
its workers instead of leaving them behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from edgekit.core.errors import BackendUnavailable, ConfigError, ToolchainError
from edgekit.core.progress import say
from edgekit.core.tools import available_cpus

__all__ = ["RaySession"]


def _ray_init(address: str | None, workers: int, temp_dir: Path) -> Any:
    if not address:
        # Measured (TOOLCHAIN notes): these keep every port of a local Ray on 127.0.0.1 and its token out of
        # $HOME. Ray reads them when it is imported, so they are set first.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        import ray
    except ImportError as err:
        raise BackendUnavailable(
            "edgekit sweep runs on Ray, which is not installed", hint="pip install 'edgekit[sweep]'"
        ) from err
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(
                num_cpus=workers, include_dashboard=False, _temp_dir=str(temp_dir), log_to_driver=False,
                configure_logging=False, _node_ip_address="127.0.0.1",
            )  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"join the Ray cluster at {address}" if address else "start a local Ray cluster"
        raise ToolchainError(f"cannot {where}: {str(err).splitlines()[0]}", hint="check --address") from err
    return ray


class RaySession:
    """Ray, started (or joined) on first use and stopped by ``close``: one sweep, or every round of a search.

    Keeping one session for a whole search spares each round Ray's start and stop (about 3.5 s here) and lets
    the next round's points run in workers that have already imported torch, brevitas and hls4ml. While it
    is open (from the main thread), SIGTERM stops the program like Ctrl-C, so ``kill`` also stops Ray.
    """

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(
                f"--workers must be at least 1, not {workers}", hint="e.g. --workers 2 (default: every core)"
            )
        self.address = address
        self.workers = workers or available_cpus()
        self.starts = 0
        self._ray: Any = None
        self._temp_dir: Path | None = None
        self._previous_sigterm: Any = None

    def ray(self) -> Any:
        if self._ray is None:
            where = f"joining the Ray cluster at {self.address}" if self.address else (
                f"starting Ray: {self.workers} local workers on 127.0.0.1")  # fmt: skip
            say(f"[sweep] {where}")
            temp_dir = Path(tempfile.mkdtemp(prefix="ekray-"))  # short: Ray's socket paths must fit 107 bytes
            try:
                self._ray = _ray_init(self.address, self.workers, temp_dir)
            except BaseException:
                shutil.rmtree(temp_dir, ignore_errors=True)
                raise
            self._temp_dir = temp_dir
            self.starts += 1
            if threading.current_thread() is threading.main_thread():  # only there can Python set a handler
                self._previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
        return self._ray

    def close(self) -> None:
        if self._ray is not None:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._previous_sigterm = None
            self._ray.shutdown()
            self._ray = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
