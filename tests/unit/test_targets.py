"""Target profiles: every shipped one loads, and the schema rejects what it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.errors import ConfigError, InputError, UnknownNameError
from edgekit.targets import list_targets, load_target, targets_dir

REQUIRED = {
    "cpu-onnxruntime",
    "fpga-xcvu13p",
    "fpga-xczu7ev",
    "fpga-xc7z020",
    "gpu-tensorrt-fp16",
    "gpu-tensorrt-int8",
    "jetson-orin-int8",
}

GOOD = """\
schema_version = 1
name = "my-cpu"
description = "a test profile"
family = "cpu"
backend = "onnxruntime"
precision = "fp32"

[cpu]
threads = 1
"""


def test_every_required_profile_ships_and_loads() -> None:
    profiles = {p.name: p for p in list_targets()}
    assert set(profiles) >= REQUIRED
    for name, profile in profiles.items():
        assert Path(profile.source).stem == name, "file name and profile name must agree"
        assert len(profile.content_sha256) == 64


def test_fpga_profiles_carry_part_clock_and_capacities() -> None:
    vu13p = load_target("fpga-xcvu13p")
    assert vu13p.fpga is not None
    assert vu13p.fpga.clock_period_ns == 5.0  # 200 MHz
    assert vu13p.fpga.part.startswith("xcvu13p")
    assert vu13p.fpga.resources.dsp == 12288
    z7 = load_target("fpga-xc7z020")
    assert z7.fpga is not None and z7.fpga.resources.lut == 53200


def test_jetson_profile_uses_dla_with_fallback() -> None:
    orin = load_target("jetson-orin-int8")
    assert orin.gpu is not None and orin.gpu.dla_core == 0 and orin.gpu.gpu_fallback


def test_profile_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    profile = load_target(str(path))
    assert profile.name == "my-cpu" and profile.cpu is not None and profile.cpu.threads == 1


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (lambda t: t.replace("threads = 1", "threds = 1"), ConfigError, "unknown key 'threds' in [cpu]"),
        (lambda t: t + "clock_mhz = 200\n", ConfigError, "unknown key 'clock_mhz' in [cpu]"),
        (lambda t: t.replace('family = "cpu"', 'family = "tpu"'), ConfigError, "'tpu' is not allowed"),
        (lambda t: t.replace("schema_version = 1", "schema_version = 2"), ConfigError, "schema_version is 2"),
        (lambda t: t.replace("[cpu]\nthreads = 1\n", ""), ConfigError, "a cpu target needs a [cpu] table"),
        (lambda t: t + "[gpu]\narch = 'sm_90'\n", ConfigError, "cannot have a [gpu] table"),
        (lambda t: t + "[latency]\nbatch_size = [1]\n", ConfigError, "unknown key 'batch_size' in [latency]"),
        (lambda t: t.replace('name = "my-cpu"', "name = "), InputError, "is not valid TOML"),
        (lambda t: t.replace("threads = 1", "threads = -2"), ConfigError, "threads: -2 is out of range"),
    ],
)
def test_schema_errors(tmp_path: Path, edit, error: type[Exception], message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.toml"
    path.write_text(edit(GOOD))
    with pytest.raises(error) as err:
        load_target(str(path))
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_fpga_profile_without_a_part_is_rejected(tmp_path: Path) -> None:
    text = (targets_dir() / "fpga-xcvu13p.toml").read_text().replace('part = "xcvu13p-flga2577-2-e"\n', "")
    path = tmp_path / "no-part.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"missing required key\(s\) part in \[fpga\]"):
        load_target(str(path))


def test_unknown_key_lists_allowed_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace("threads = 1", "threds = 1"))
    with pytest.raises(ConfigError) as err:
        load_target(str(path))
    assert err.value.hint == "allowed keys there: isa, threads"


def test_unknown_name_lists_shipped_targets() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_target("cpu-onxruntime")
    assert "cpu-onnxruntime" in err.value.hint


def test_missing_profile_file() -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_target("no/such/profile.toml")


def test_shipped_profiles_found_from_checkout_or_package() -> None:
    assert (targets_dir() / "cpu-onnxruntime.toml").is_file()
