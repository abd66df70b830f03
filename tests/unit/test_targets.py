"""Target profiles: every shipped one loads, and the schema rejects what it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.core.errors import ConfigError, InputError, UnknownNameError
from edgekit.core.targets import list_targets, load_target, targets_dir

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


def test_set_changes_a_profiles_tables_checked_like_the_file() -> None:
    """--set fpga.clock_period_ns=4 and --set backend_options.* reach the profile, strictly, and its hash."""
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    base = load_target("fpga-xcvu13p")
    flags = ("fpga.clock_period_ns=4", "train.epochs=1", "targets.fpga-xcvu13p.backend_options.build_timeout_s=60")
    plan = plan_build(CompileRequest("jet_tagger", ("fpga-xcvu13p", "cpu-onnxruntime"), tiny=True, quant="w6a8",
                                     overrides=flags))  # fmt: skip
    fpga, cpu = (p.profile for p in plan.plans)
    assert fpga.fpga is not None and fpga.fpga.clock_period_ns == 4.0 and fpga.fpga.part == base.fpga.part  # type: ignore[union-attr]
    assert fpga.overrides == {"fpga": {"clock_period_ns": 4}, "backend_options": {"build_timeout_s": 60}}
    assert dict(fpga.backend_options)["build_timeout_s"] == 60
    assert fpga.content_sha256 != base.content_sha256 and "with --set fpga.clock_period_ns" in fpga.source
    assert cpu.fpga is None and "fpga" not in cpu.overrides  # a table of another family is left out
    assert plan.settings.train.epochs == 1  # the other --set flags are settings as before
    one = plan_build(CompileRequest("jet_tagger", ("fpga-xcvu13p", "fpga-xcvu13p-rtl"), tiny=True, quant="w6a8",
                                    overrides=('targets."fpga-xcvu13p".fpga.reuse_factor=4',)))  # fmt: skip
    hls, rtl = (p.profile for p in one.plans)
    assert hls.fpga.reuse_factor == 4 and rtl.fpga.reuse_factor == 1 and not rtl.overrides  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("fpga.clock_period=4",), "unknown key 'clock_period' in \\[fpga\\]"),
        (("fpga.clock_period_ns=0.1",), "clock_period_ns"),
        (("gpu.arch=sm_90",), "none of the targets \\(fpga-xcvu13p\\) has a \\[gpu\\] table"),
        (("targets.fpga-xczu7ev.fpga.reuse_factor=2",), "fpga-xczu7ev is not a target of this build"),
        (("targets.fpga-xcvu13p.quant.weight_bits=2",), "has no table 'quant'"),
        (("backend_options.no_such_option=1",), "unknown key 'no_such_option' in \\[backend_options\\]"),
    ],
)
def test_a_profile_set_no_target_can_take_is_refused(flags: tuple[str, ...], message: str) -> None:
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    with pytest.raises(ConfigError, match=message) as err:
        plan_build(CompileRequest("jet_tagger", ("fpga-xcvu13p",), tiny=True, quant="w6a8", overrides=flags))
    assert err.value.exit_code == 2 and err.value.hint
