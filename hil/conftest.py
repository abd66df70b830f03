"""Hardware-in-the-loop test scripts: a build's compiled targets run on a device, held to its golden vectors.

    pytest hil --device local --build build/jet_tagger
    pytest hil --device ssh://lab@edgebox:2222 --remote-python /opt/edgekit/bin/python --build build/jet_tagger

One test per target checks every sample against the reference the target was built to match, and one test
per target and gate applies the build's gates to the device's numbers (latency measured on the device).
The summary at the end lists mismatching samples and the device's p50/p99 per batch size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgekit.core.errors import EdgekitError
from edgekit.hil import HilResult, hil_targets, open_build, parse_device, run_target


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgekit hardware in the loop")
    group.addoption("--build", help="the build directory to replay (edgekit compile --out)")
    group.addoption("--device", default="local", help="local, or ssh://[user@]host[:port] (default: local)")
    group.addoption("--target", action="append", default=[], help="only this target (repeatable; default: all)")
    group.addoption("--remote-python", help="the Python on the device that has edgekit (default: python3)")
    group.addoption("--identity", help="SSH private key (default: your ssh config and agent)")
    group.addoption("--known-hosts", help="known_hosts file to verify the device's host key against")
    group.addoption("--ssh-config", help="ssh_config file to use instead of ~/.ssh/config")
    group.addoption("--trust-new-host", action="store_true", help="accept a host key never seen before (once)")
    group.addoption("--hil-timeout", type=float, default=300.0, help="seconds for one target's run (default 300)")
    group.addoption("--samples", type=int, help="replay only the first N golden samples")


class Session:
    """The build, the device and each target's result, run once per target and shared by its tests."""

    def __init__(self, config: pytest.Config) -> None:
        build = config.getoption("--build")
        if not build:
            raise pytest.UsageError("pass --build BUILD_DIR (a folder written by edgekit compile)")
        self.config = config
        try:
            self.build = open_build(Path(build))
            self.targets = hil_targets(self.build, tuple(config.getoption("--target")))
        except EdgekitError as err:
            raise pytest.UsageError(str(err)) from err
        self.results: dict[str, HilResult | EdgekitError] = {}

    def _path(self, option: str) -> Path | None:
        value = self.config.getoption(option)
        return Path(value) if value else None

    def result(self, target: str) -> HilResult:
        if target not in self.results:
            try:
                device = parse_device(
                    self.config.getoption("--device"),
                    python=self.config.getoption("--remote-python"),
                    identity=self._path("--identity"),
                    known_hosts=self._path("--known-hosts"),
                    trust_new_host=self.config.getoption("--trust-new-host"),
                    ssh_config=self._path("--ssh-config"),
                )
                self.results[target] = run_target(
                    self.build, target, device, timeout_s=self.config.getoption("--hil-timeout"),
                    samples=self.config.getoption("--samples"),
                )  # fmt: skip
            except EdgekitError as err:
                self.results[target] = err
        found = self.results[target]
        if isinstance(found, EdgekitError):
            pytest.fail(f"{target} on {self.config.getoption('--device')}: {found}", pytrace=False)
        return found

    def gate_names(self, target: str) -> list[str]:
        """The gates the build applied to this target (the same settings apply on the device)."""
        rows = self.build.manifest["validation"]["targets"]
        row = next((r for r in rows if r["target"] == target), None)
        return [g["name"] for g in row["gates"]] if row else []


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--build", default=None) is not None:
        config.stash[_KEY] = Session(config)


_KEY = pytest.StashKey[Session]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = metafunc.config.stash.get(_KEY, None)
    if session is None:
        if "target" in metafunc.fixturenames:
            raise pytest.UsageError("pass --build BUILD_DIR (a folder written by edgekit compile)")
        return
    if "gate" in metafunc.fixturenames:
        pairs = [(t, g) for t in session.targets for g in session.gate_names(t)]
        metafunc.parametrize(("target", "gate"), pairs, ids=[f"{t}:{g}" for t, g in pairs])
    elif "target" in metafunc.fixturenames:
        metafunc.parametrize("target", session.targets)


@pytest.fixture(scope="session")
def hil(request: pytest.FixtureRequest) -> Session:
    return request.config.stash[_KEY]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(_KEY, None)
    if session is None or not session.results:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"edgekit hardware in the loop: {config.getoption('--device')}")
    for target, found in session.results.items():
        if isinstance(found, EdgekitError):
            write(f"{target}: ERROR: {found.message}")
            continue
        verdict = "PASS" if found.passed else "FAIL"
        write(f"{target}: {verdict} on {found.host} ({found.platform}), artifact loaded in {found.load_s:.2f} s")
        if found.modified:
            write(f"  artifact changed since compile: {', '.join(found.modified)}")
        write(f"  {found.describe_mismatches()}")
        for stat in found.result.latency:
            write(f"  batch {stat.batch_size}: p50 {stat.p50_us:.1f} us, p99 {stat.p99_us:.1f} us ({stat.clock})")
        for gate in found.result.gates:
            write(f"  {'pass' if gate.passed else 'FAIL'}: {gate.describe()}")
