"""Target profiles: one TOML file per piece of hardware, with a strict schema.

Profiles ship inside the wheel (``edgekit/_targets``, a link to the checkout's
top-level ``targets/``) and any TOML path can be given instead of a name.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from edgekit.core.config import Layer, Settings
from edgekit.core.errors import ConfigError, InputError, UnknownNameError
from edgekit.core.schema import build, check_table, deep_merge, to_plain

__all__ = [
    "PROFILE_TABLES",
    "TARGET_SCHEMA_VERSION",
    "TargetProfile",
    "list_targets",
    "load_target",
    "split_profile_overrides",
    "targets_dir",
    "with_overrides",
]

TARGET_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class CpuSpec:
    threads: int = field(default=0, metadata={"min": 0})  # 0: every core the runtime sees
    isa: str = "x86_64"


@dataclass(frozen=True)
class GpuSpec:
    arch: str = "any"  # e.g. sm_90, or "orin" for Jetson
    workspace_mib: int = field(default=1024, metadata={"min": 1})
    sparsity_2_4: bool = False
    builder_optimization_level: int = field(default=3, metadata={"min": 0, "max": 5})
    dla_core: int | None = field(default=None, metadata={"min": 0})
    gpu_fallback: bool = True


@dataclass(frozen=True)
class FpgaResources:
    """Capacities of the part, for utilization figures."""

    lut: int = field(metadata={"min": 1})
    ff: int = field(metadata={"min": 1})
    dsp: int = field(metadata={"min": 0})
    bram_18k: int = field(metadata={"min": 0})
    uram: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class FpgaSpec:
    part: str
    clock_period_ns: float = field(metadata={"min": 0.5, "max": 100.0})
    resources: FpgaResources
    board: str = ""
    hls_backend: Literal["Vitis", "Vivado"] = "Vitis"
    io_type: Literal["io_parallel", "io_stream"] = "io_parallel"
    strategy: Literal["latency", "resource", "distributed_arithmetic"] = "latency"
    reuse_factor: int = field(default=1, metadata={"min": 1})


@dataclass(frozen=True)
class TargetProfile:
    """A target's hardware profile, from one TOML file (``targets/``): family, backend, precision, part, clock.

    >>> import edgekit
    >>> edgekit.load_target("cpu-onnxruntime-int8").precision
    'int8'
    """

    schema_version: int
    name: str
    description: str
    family: Literal["cpu", "gpu", "fpga"]
    backend: str
    precision: Literal["fp32", "fp16", "bf16", "int8", "fixed"]
    cpu: CpuSpec | None = None
    gpu: GpuSpec | None = None
    fpga: FpgaSpec | None = None
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    # Settings sections (latency, validation, gates) this hardware changes; checked as a layer.
    latency: Mapping[str, Any] = field(default_factory=dict)
    validation: Mapping[str, Any] = field(default_factory=dict)
    gates: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    content_sha256: str = ""
    overrides: Mapping[str, Any] = field(default_factory=dict)  # what --set changed in the profile file

    def settings_layer(self) -> Layer:
        table = {k: dict(getattr(self, k)) for k in ("latency", "validation", "gates") if getattr(self, k)}
        return Layer(self.source, table)


def targets_dir() -> Path:
    """The shipped profiles: inside the installed package, else the checkout's ``targets/``."""
    packaged = Path(str(resources.files("edgekit") / "_targets"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "targets"


def _shipped() -> dict[str, Path]:
    return {p.stem: p for p in sorted(targets_dir().glob("*.toml"))}


def list_targets() -> list[TargetProfile]:
    """Every shipped target profile (``edgekit targets``).

    >>> import edgekit
    >>> "fpga-xcvu13p" in [t.name for t in edgekit.list_targets()]
    True
    """
    return [load_target(str(path)) for path in _shipped().values()]


def load_target(name_or_path: str) -> TargetProfile:
    """A shipped profile by name, or a profile TOML by path.

    >>> import edgekit
    >>> profile = edgekit.load_target("fpga-xcvu13p")
    >>> profile.family, profile.backend
    ('fpga', 'hls4ml')
    """
    looks_like_path = name_or_path.endswith(".toml") or "/" in name_or_path
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(
                f"target profile file {path} does not exist",
                hint=f"relative paths are taken from the current folder, {Path.cwd()}",
            )
    else:
        shipped = _shipped()
        if name_or_path not in shipped:
            raise UnknownNameError(
                f"unknown target {name_or_path!r}",
                hint=f"shipped targets: {', '.join(shipped)} (see edgekit targets), or a path to a profile TOML",
            )
        path = shipped[name_or_path]
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(
            f"target profile {path} is not valid TOML: {err}", hint="fix the TOML at the line and column named"
        ) from err
    source = str(path)
    version = data.get("schema_version")
    if version != TARGET_SCHEMA_VERSION:
        raise ConfigError(
            f"{source}: schema_version is {version!r}; this edgekit reads version {TARGET_SCHEMA_VERSION}",
            hint="set schema_version = 1, or upgrade edgekit for newer profiles",
        )
    for reserved in ("source", "content_sha256", "overrides"):
        if reserved in data:
            raise ConfigError(f"{source}: {reserved!r} is set by edgekit", hint="remove it from the profile")
    profile = build(TargetProfile, data, source)
    family_section = {"cpu": profile.cpu, "gpu": profile.gpu, "fpga": profile.fpga}
    if family_section[profile.family] is None:
        raise ConfigError(
            f"{source}: a {profile.family} target needs a [{profile.family}] table",
            hint="copy one from a shipped profile: edgekit targets NAME prints it",
        )
    extra = [f for f, spec in family_section.items() if spec is not None and f != profile.family]
    if extra:
        raise ConfigError(
            f"{source}: a {profile.family} target cannot have a [{extra[0]}] table",
            hint=f"remove [{extra[0]}], or set family = {extra[0]!r}",
        )
    layer = profile.settings_layer()
    check_table(Settings, layer.table, source)
    digest = hashlib.sha256(raw).hexdigest()
    return replace(profile, source=source, content_sha256=digest)


# The profile's own tables a --set flag may change (--set fpga.clock_period_ns=4); its latency, validation and
# gates sections are settings and merge with the recipe's. ``targets.NAME.*`` changes one target only.
PROFILE_TABLES = ("fpga", "gpu", "cpu", "backend_options")


def split_profile_overrides(table: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A --set table as (settings, overrides of every target, overrides per target name).

    >>> split_profile_overrides({"train": {"epochs": 2}, "fpga": {"clock_period_ns": 4},
    ...                          "targets": {"fpga-xcvu13p": {"fpga": {"reuse_factor": 4}}}})
    ({'train': {'epochs': 2}}, {'fpga': {'clock_period_ns': 4}}, {'fpga-xcvu13p': {'fpga': {'reuse_factor': 4}}})
    """
    settings = {k: v for k, v in table.items() if k not in (*PROFILE_TABLES, "targets")}
    every = {k: v for k, v in table.items() if k in PROFILE_TABLES}
    per_target = table.get("targets", {})
    if not isinstance(per_target, Mapping) or not all(isinstance(v, Mapping) for v in per_target.values()):
        raise ConfigError(
            "--set targets.NAME.TABLE.KEY=VALUE changes one target's profile: targets takes target names",
            hint="e.g. --set targets.fpga-xcvu13p.fpga.reuse_factor=4",
        )
    for name, tables in per_target.items():
        unknown = sorted(set(tables) - set(PROFILE_TABLES))
        if unknown:
            raise ConfigError(
                f"--set targets.{name}.{unknown[0]}: a target's profile has no table {unknown[0]!r} to change",
                hint=f"profile tables --set can change: {', '.join(PROFILE_TABLES)}",
            )
    return settings, every, {str(k): dict(v) for k, v in per_target.items()}


def with_overrides(profile: TargetProfile, overrides: Mapping[str, Any]) -> TargetProfile:
    """``profile`` with tables changed from the command line, checked like the file (unknown keys refused).

    Tables of another family (``gpu`` on an FPGA target) are left out; the content hash covers the
    changes, so a build with them is cached apart from one without.
    """
    applicable = {k: v for k, v in overrides.items() if k == "backend_options" or getattr(profile, k) is not None}
    if not applicable:
        return profile
    plain = {k: v for k, v in to_plain(profile).items() if k not in ("source", "content_sha256", "overrides")}
    shown = ", ".join(f"{k}.{name}" for k, table in applicable.items() for name in table)
    source = f"{profile.source} with --set {shown}"
    changed = build(TargetProfile, deep_merge(plain, applicable), source)
    merged = deep_merge(dict(profile.overrides), applicable)
    digest = hashlib.sha256((profile.content_sha256 + json.dumps(merged, sort_keys=True)).encode()).hexdigest()
    return replace(changed, source=source, content_sha256=digest, overrides=merged)
