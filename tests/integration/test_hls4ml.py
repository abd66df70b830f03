"""The FPGA target through hls4ml: HLS project, g++ emulation, bit-exact with brevitas, clear failures."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

pytest.importorskip("hls4ml", reason="FPGA tests need the fpga extra: pip install 'edgekit[fpga]'")
if shutil.which("g++") is None:
    pytest.skip("hls4ml's emulation needs g++ (apt-get install g++)", allow_module_level=True)


@pytest.fixture(scope="module")
def jet_fpga(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The issue's example at tiny size: w6a8, 75% pruned, VU13P, io_parallel, >= 1000 held-out jets."""
    return compile_model(
        CompileRequest(
            "jet_tagger",
            ("fpga-xcvu13p",),
            out=tmp_path_factory.mktemp("jet_fpga"),
            tiny=True,
            quant="w6a8",
            prune="0.75",
            overrides=("data_options.n_samples=6000", "prune.steps=2", "prune.finetune_epochs=1"),
        )
    )


def test_emulation_equals_brevitas_exactly(jet_fpga: BuildResult) -> None:
    (fpga,) = jet_fpga.report.targets
    assert fpga.status == "ok", fpga.reason
    assert fpga.n_samples >= 1000
    assert fpga.max_abs_diff_vs_quantized == 0.0 and fpga.exact_match_vs_quantized == 1.0
    quantized = next(r for r in jet_fpga.report.extra_references if r.quant_family == "fixed")
    assert fpga.accuracy == quantized.accuracy
    exact = next(g for g in fpga.gates if g.name == "max_abs_diff_vs_quantized")
    assert exact.passed and exact.threshold == 0.0


def test_the_input_port_is_the_quantized_width_and_rounds_ties_like_brevitas(jet_fpga: BuildResult) -> None:
    """Planted: every input on a rounding tie of the 8-bit input quantizer, or past its range."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from edgekit.backends.hls4ml.emulator import EmulatorPool

    info = jet_fpga.manifest["artifacts"]["compiled"]["fpga-xcvu13p"]["info"]
    assert info["input_precision"] == "fixed<8,4,RND_CONV,SAT>"  # w6a8: 8-bit input in steps of 2^-4
    defines = (jet_fpga.build_dir / "targets/fpga-xcvu13p/hls4ml_prj/firmware/defines.h").read_text()
    assert "typedef ap_fixed<8,4,AP_RND_CONV,AP_SAT,0> input_t;" in defines
    rng = np.random.default_rng(3)
    ties = (rng.integers(-140, 140, size=(64, 16)) + 0.5) / 16  # halfway between two steps, some out of range
    ties[0, :4] = [1e6, -1e6, 7.96875, -8.03125]  # far out; the ties just inside and outside the range
    x = ties.astype(np.float32)
    model = ModelWrapper(str(jet_fpga.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    name, out = model.graph.input[0].name, model.graph.output[0].name
    expected = np.concatenate([execute_onnx(model, {name: x[i : i + 1]})[out] for i in range(len(x))])
    artifact = jet_fpga.manifest["artifacts"]["compiled"]["fpga-xcvu13p"]
    library = jet_fpga.build_dir / "targets" / "fpga-xcvu13p" / artifact["path"]
    pool = EmulatorPool(library, info["project"], info["n_inputs"], info["n_outputs"], workers=1)
    try:
        got = pool.run(x)
    finally:
        pool.close()
    assert np.array_equal(got.astype(np.float32), expected.astype(np.float32))


def test_hls_project_is_complete_and_configured(jet_fpga: BuildResult) -> None:
    target_dir = jet_fpga.build_dir / "targets" / "fpga-xcvu13p"
    project = target_dir / "hls4ml_prj"
    info = jet_fpga.manifest["artifacts"]["compiled"]["fpga-xcvu13p"]["info"]
    assert info["project"] == "jet_tagger"  # named after the model (export.top_name overrides it)
    for rel in ("firmware/jet_tagger.cpp", "firmware/parameters.h", "build_prj.tcl", "hls4ml_config.yml"):
        assert (project / rel).is_file(), rel
    # the ports at the quantized widths: the input quantizer's type, the last layer's exact accumulator out
    header = (project / "firmware" / "jet_tagger.h").read_text()
    assert "input_t global_in[16]" in header and "result_t layer" in header
    defines = (project / "firmware" / "defines.h").read_text()
    out_type = re.search(r"typedef ap_fixed<(\d+),(\d+)> result_t;", defines)
    assert out_type is not None and int(out_type.group(1)) <= 24, "the output is the accumulator, not 32+ bits"
    config = (project / "hls4ml_config.yml").read_text()
    assert "xcvu13p-flga2577-2-e" in config and "ClockPeriod: 5" in config and "io_parallel" in config
    assert (target_dir / "build_lib.log").is_file()
    assert info["input_precision"].startswith("fixed<") and ",RND_CONV,SAT>" in info["input_precision"]
    assert info["precisions"], "the report lists hls4ml's fixed-point type per layer"


def test_estimates_count_the_pruned_weights(jet_fpga: BuildResult) -> None:
    est = jet_fpga.manifest["artifacts"]["compiled"]["fpga-xcvu13p"]["info"]["estimate"]
    dense = [layer for layer in est["layers"] if layer["kind"] == "dense"]
    weights = sum(layer["shape"][0] * layer["shape"][1] for layer in jet_fpga.manifest["pruning"]["after"]["layers"])
    multipliers = sum(layer["multipliers"] for layer in dense)
    assert len(dense) == 3 and multipliers <= 0.3 * weights  # 75% pruned: the zeros cost nothing
    assert est["latency_cycles"] > 0 and est["latency_ns"] == est["latency_cycles"] * 5.0
    assert 0 < est["utilization"]["lut"] < 1
    report = (jet_fpga.build_dir / "report.md").read_text()
    assert "## FPGA estimates: fpga-xcvu13p" in report and "**Estimates**" in report


def test_a_planted_fault_is_localized_to_its_layer(jet_fpga: BuildResult, tmp_path: Path, plant_fc2_fault) -> None:  # type: ignore[no-untyped-def]
    """Perturb one layer's weights in the graph the FPGA target compiles; the trace names that layer."""
    from edgekit.backends.hls4ml.backend import Hls4mlBackend
    from edgekit.core.artifacts import ExportedGraph, FloatModel, QuantizedModel
    from edgekit.core.schema import build
    from edgekit.core.targets import load_target
    from edgekit.model.brevitas_model import load_quant_model
    from edgekit.model.localize import first_divergence, torch_trace

    root = jet_fpga.build_dir
    planted = plant_fc2_fault(root / "export-fixed" / "model.qonnx.clean.onnx", tmp_path / "planted.onnx")

    x = np.load(root / "pruned" / "golden_inputs.npy")[:32]
    target = Hls4mlBackend().trace(planted, load_target("fpga-xcvu13p"), x)
    base = build(FloatModel, jet_fpga.manifest["artifacts"]["pruned"])
    quantized = build(QuantizedModel, jet_fpga.manifest["artifacts"]["quantized"]["fixed"])
    reference = torch_trace(load_quant_model(quantized, root / "quant-fixed", base, root / "pruned"), x)
    found = first_divergence(reference, target)
    assert found is not None and found.reference_layer == "fc2" and found.kind == "weighted"
    # The pipeline's step that runs when an FPGA target is not exact says the same in the report.
    from edgekit.pipeline.verify import localize

    (result,) = jet_fpga.report.targets
    planted_graph = ExportedGraph("planted.onnx", "qonnx-clean", "input", "logits", 17, "test")
    located = localize(
        result, load_target("fpga-xcvu13p"), planted_graph, planted, quantized, root, base, root / "pruned", x
    )
    assert located.divergence.startswith("first diverging layer: fc2 (target layer Dense_MatMul_1")
    # ... and the unperturbed graph traces exactly like brevitas, layer by layer.
    clean = Hls4mlBackend().trace(root / "export-fixed" / "model.qonnx.clean.onnx", load_target("fpga-xcvu13p"), x)
    assert first_divergence(reference, clean) is None


def test_emulator_runs_in_workers_after_the_build_moves(jet_fpga: BuildResult, tmp_path: Path) -> None:
    from edgekit.pipeline.reopen import validate_build

    moved = tmp_path / "moved"
    shutil.copytree(jet_fpga.build_dir, moved)
    result = validate_build(moved)
    (fpga,) = result.report.targets
    assert fpga.status == "ok" and fpga.max_abs_diff_vs_quantized == 0.0
    assert "worker processes" in fpga.runner
    # budgets from the recipe or --set: the estimate's LUTs against max_lut
    lut = fpga.resources["lut"]
    assert fpga.resource_source == "estimate" and lut > 0
    failed_before = [g.name for g in fpga.failed_gates()]
    tight = validate_build(moved, overrides=(f"gates.max_lut={lut - 1}", f"gates.max_fpga_latency_ns={1e6}"))
    (fpga,) = tight.report.targets
    assert tight.exit_code == 1 and [g.name for g in fpga.failed_gates()] == [*failed_before, "max_lut (estimate)"]
    assert next(g for g in fpga.gates if g.name.startswith("max_fpga_latency_ns")).passed
    # the default utilization gate: the design must fit the part; it names the most used resource
    fits = next(g for g in fpga.gates if g.name.startswith("max_utilization"))
    fullest = max(fpga.utilization(), key=lambda k: fpga.utilization()[k])
    assert fits.passed and fits.threshold == 1.0 and fits.name == f"max_utilization ({fullest} of the part, estimate)"
    assert fits.value == pytest.approx(fpga.resources[fullest] / fpga.capacity[fullest])
    crowded = validate_build(moved, overrides=(f"gates.max_utilization={fits.value / 2}",))
    assert crowded.exit_code == 1 and fits.name in [g.name for g in crowded.report.targets[0].failed_gates()]


def test_cached_rebuild_reuses_the_emulator(jet_fpga: BuildResult, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(jet_fpga.build_dir, root)
    again = compile_model(
        CompileRequest(
            "jet_tagger",
            ("fpga-xcvu13p",),
            out=root,
            tiny=True,
            quant="w6a8",
            prune="0.75",
            overrides=("data_options.n_samples=6000", "prune.steps=2", "prune.finetune_epochs=1"),
        )
    )
    assert all(s["cached"] for s in again.manifest["stages"] if s["name"] != "validate")


def test_lenet_io_parallel_and_io_stream_are_exact(tmp_path: Path, profile_variant) -> None:  # type: ignore[no-untyped-def]
    stream = profile_variant(
        "fpga-xcvu13p", "fpga-xcvu13p-stream", tmp_path, {'io_type = "io_parallel"': 'io_type = "io_stream"'}
    )
    result = compile_model(
        CompileRequest(
            "lenet_digits",
            ("fpga-xcvu13p", str(stream)),
            out=tmp_path / "b",
            tiny=True,
            quant="w6a8",
        )
    )
    for target in result.report.targets:
        assert target.status == "ok", target.reason
        assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0, target.target
    io_types = {a["info"]["io_type"] for a in result.manifest["artifacts"]["compiled"].values()}
    assert io_types == {"io_parallel", "io_stream"}
    golden = np.load(result.build_dir / "quant-fixed" / "golden_quant_outputs.npy")
    assert golden.shape == (result.report.targets[0].n_samples, 10)


def test_distributed_arithmetic_is_exact_on_both_io_types_and_costed_by_da4ml(tmp_path: Path, profile_variant) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("da4ml", reason="the distributed_arithmetic strategy needs da4ml: pip install 'edgekit[rtl]'")
    stream = profile_variant(
        "fpga-xczu7ev-stream",
        "fpga-xczu7ev-stream-da",
        tmp_path,
        {'strategy = "resource"': 'strategy = "distributed_arithmetic"', "reuse_factor = 16": "reuse_factor = 1"},
    )
    result = compile_model(
        CompileRequest("lenet_digits", ("fpga-xcvu13p-da", str(stream)), out=tmp_path / "b", tiny=True, quant="w6a8")
    )
    for target in result.report.targets:
        assert target.status == "ok", target.reason
        assert target.n_samples >= 1000 and target.max_abs_diff_vs_quantized == 0.0, target.target
    for name, compiled in result.manifest["artifacts"]["compiled"].items():
        est = compiled["info"]["estimate"]
        assert "da4ml" in est["method"] and est["dsp"] == 0, name
        weighted = [layer for layer in est["layers"] if layer["kind"] in ("conv", "dense")]
        assert len(weighted) == 4 and all(layer["lut"] > 0 and layer["multipliers"] == 0 for layer in weighted)
        assert est["lut"] == sum(layer["lut"] for layer in est["layers"])
    report = (result.build_dir / "report.md").read_text()
    assert "distributed_arithmetic strategy" in report and "da4ml's adder-graph LUT cost" in report


def test_distributed_arithmetic_with_a_reuse_factor_is_refused(cli, tmp_path: Path, profile_variant) -> None:  # type: ignore[no-untyped-def]
    shared = profile_variant("fpga-xcvu13p-da", "da-reuse", tmp_path, {"reuse_factor = 1": "reuse_factor = 4"})
    done = cli("compile", "jet_tagger", "--tiny", "--target", str(shared), "--out", str(tmp_path / "b"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "reuse_factor must be 1, not 4" in done.stderr


@pytest.mark.parametrize("model", ["jet_tagger", "lenet_digits"])
def test_float_path_through_the_pytorch_frontend(model: str, tmp_path: Path) -> None:
    result = compile_model(CompileRequest(model, ("fpga-xcvu13p",), out=tmp_path / "b", tiny=True))
    (fpga,) = result.report.targets
    assert fpga.status == "ok", fpga.reason
    assert fpga.quant_family == ""  # compared with the float model, not a quantized one
    assert fpga.top1_agreement >= 0.995
    info = result.manifest["artifacts"]["compiled"]["fpga-xcvu13p"]["info"]
    assert info["path"] == "PyTorch frontend (float)"
    assert info["saturated_logit_fraction"] == 0.0
    # Types come from measured ranges, rounding and saturating, not hls4ml's truncating fixed<16,6>.
    types = [t for layer in info["range_profile"].values() for t in layer.values()]
    assert types and all(t.endswith(",RND,SAT>") for t in types)
    assert (result.build_dir / "export-torch" / "profile.json").is_file()
    gates = {g.name for g in fpga.gates}
    assert {"max_abs_diff_vs_float", "min_top1_agreement"} <= gates and fpga.passed


def test_float_path_sizes_an_unscaled_input_whatever_forward_calls_it(tmp_path: Path) -> None:
    """A user's tagger: forward(self, x), its own blocks, F.relu, a pT column in GeV up to 155."""
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "unscaled_tagger"
    result = compile_model(CompileRequest(str(folder), ("fpga-xcvu13p",), out=tmp_path / "b", tiny=True))
    (fpga,) = result.report.targets
    info = result.manifest["artifacts"]["compiled"]["fpga-xcvu13p"]["info"]
    _, integer = (int(v) for v in info["input_precision"].split("<")[1].split(",")[:2])
    assert 2.0 ** (integer - 1) > 155, info["input_precision"]  # room for 155 (hls4ml's fixed<16,6> wraps at 32)
    layers = info["range_profile"]
    assert {"body_0_fc", "relu", "body_1_fc", "relu_1", "head"} <= set(layers)  # nested and functional layers
    assert layers["body_0_fc"]["weight"].endswith(",RND,SAT>")  # weights sized too, found through the fx node
    # held to the float model like any float target: agreement gates, applied and passing
    agreement = {g.name: g for g in fpga.gates if g.name in ("max_abs_diff_vs_float", "min_top1_agreement")}
    assert set(agreement) == {"max_abs_diff_vs_float", "min_top1_agreement"}
    assert all(g.passed for g in agreement.values()), fpga.gates
    assert fpga.top1_agreement >= 0.995 and fpga.max_abs_diff_vs_float < 0.05


def test_failed_gpp_build_is_a_toolchain_error_with_its_log(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "bin"
    fake.mkdir()
    gpp = fake / "g++"
    gpp.write_text("#!/bin/sh\necho 'fatal error: simulated compiler failure' >&2\nexit 1\n")
    gpp.chmod(0o755)
    out = tmp_path / "b"
    run = cli(
        "compile", "jet_tagger", "--tiny", "--quant", "w6a8", "-t", "fpga-xcvu13p", "-t", "cpu-onnxruntime",
        "--out", str(out), env={"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip
    assert run.returncode == 4, run.stderr
    assert "the g++ build of hls4ml's emulation (build_lib.sh) failed" in run.stdout
    assert "build_lib.log" in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    # Everything else was built and validated, and no half-built target folder was left.
    assert (out / "targets" / "cpu-onnxruntime").is_dir()
    assert not (out / "targets" / "fpga-xcvu13p").exists()


def test_a_gpp_build_past_its_limit_is_stopped_with_the_option_to_raise(cli, tmp_path: Path, profile_variant) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "bin"  # a compiler that never finishes, so the limit is what stops it on any machine
    fake.mkdir()
    (fake / "g++").write_text("#!/bin/sh\nsleep 120\n")
    (fake / "g++").chmod(0o755)
    slow = profile_variant(
        "fpga-xcvu13p", "slow-fpga", tmp_path, {"[gates]": "[backend_options]\nbuild_timeout_s = 1\n\n[gates]"}
    )
    run = cli(
        "compile", "jet_tagger", "--tiny", "--quant", "w6a8", "-t", str(slow), "--out", str(tmp_path / "b"),
        env={"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip
    assert run.returncode == 4, run.stderr
    assert "the g++ build of hls4ml's emulation (build_lib.sh) did not finish within 1 s" in run.stdout
    assert "backend_options.build_timeout_s" in run.stdout and "Traceback" not in run.stderr


def test_synth_without_vendor_tools_says_what_is_missing(tmp_path: Path) -> None:
    from edgekit.core.errors import BackendUnavailable

    if shutil.which("vitis-run"):
        pytest.skip("vitis-run is installed here; the missing-tool message cannot be shown")
    with pytest.raises(BackendUnavailable, match="needs vitis-run") as err:
        compile_model(
            CompileRequest("jet_tagger", ("fpga-xcvu13p",), out=tmp_path / "b", tiny=True, quant="w6a8", synth=True)
        )
    assert err.value.exit_code == 3 and not (tmp_path / "b").exists()


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_synth_stage_runs_the_tool_and_reads_its_report(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A stand-in for Vitis' vitis-run (not installable here): it checks how it was called and writes the
    # report where Vitis HLS writes it, so the stage's command, working folder, options and parsing are tested.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "vitis-run"
    tool.write_text(
        "#!/bin/sh\n"
        'test "$1 $2 $3 $4" = "--tcl build_prj.tcl --mode hls" || exit 3\n'
        "grep -q 'synth      1' build_opt.tcl || grep -q 'synth 1' build_opt.tcl || exit 4\n"
        # like Vitis HLS: the report goes under <project_name>_prj, the name project.tcl sets (the build's top)
        "top=$(sed -n 's/^set project_name \"\\(.*\\)\"$/\\1/p' project.tcl)\n"
        "mkdir -p ${top}_prj/solution1/syn/report\n"
        f"cp {FIXTURES / 'vitis_csynth.xml'} ${{top}}_prj/solution1/syn/report/${{top}}_csynth.xml\n"
        "echo 'INFO: [HLS 200-111] Finished C synthesis.'\n"
    )
    tool.chmod(0o755)
    out = tmp_path / "b"
    run = cli(
        "compile", "jet_tagger", "--tiny", "--quant", "w6a8", "-t", "fpga-xcvu13p", "--synth", "--out", str(out),
        "--json", env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    synth = manifest["artifacts"]["synthesis"]["fpga-xcvu13p"]
    assert synth["tool"] == "vitis-run" and synth["report"]["resources"]["lut"] == 43210
    assert (out / "synth" / "fpga-xcvu13p" / "synth.log").is_file()
    assert "**C synthesis** (vitis-run 2024.1, vendor report)" in (out / "report.md").read_text()
    # the compile stage's project was copied, not changed
    assert (out / "synth" / "fpga-xcvu13p" / "hls4ml_prj" / "jet_tagger_prj").is_dir()
    assert not (out / "targets" / "fpga-xcvu13p" / "hls4ml_prj" / "jet_tagger_prj").exists()


@pytest.mark.synth
def test_real_vitis_c_synthesis(tmp_path: Path) -> None:
    if shutil.which("vitis-run") is None:
        pytest.skip("needs AMD Vitis (vitis-run on PATH); not installable in this CI")
    result = compile_model(
        CompileRequest("jet_tagger", ("fpga-xcvu13p",), out=tmp_path / "b", tiny=True, quant="w6a8", synth=True)
    )
    report = result.manifest["artifacts"]["synthesis"]["fpga-xcvu13p"]["report"]
    assert report["latency_worst_cycles"] > 0 and report["resources"]["lut"] > 0


def test_a_layer_hls4ml_cannot_take_is_a_clear_toolchain_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Conv1d fed through a reshape inside the model: brevitas and QONNX take it, hls4ml 1.3.0 refuses it.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "fixtures"))  # nets1d.py
    result = compile_model(
        CompileRequest(
            "nets1d:build",
            ("fpga-xcvu13p", "cpu-onnxruntime"),
            out=tmp_path / "b",
            recipe="jet_tagger",
            tiny=True,
            quant="w6a8",
        )
    )
    fpga, cpu = result.report.targets
    assert fpga.status == "failed" and "hls4ml could not convert the model for fpga-xcvu13p" in fpga.reason
    assert result.exit_code == 4 and cpu.status == "ok"
    assert not (result.build_dir / "targets" / "fpga-xcvu13p").exists()


def test_a_collapsed_activation_scale_is_refused_by_name(jet_fpga: BuildResult, tmp_path: Path) -> None:
    """A ReLU that never fired on the calibration data leaves a ~0 scale; hls4ml would fail with an IndexError."""
    import onnx
    from onnx import numpy_helper
    from qonnx.core.modelwrapper import ModelWrapper

    from edgekit.backends.hls4ml.graph_prep import check_activation_scales
    from edgekit.core.errors import ConfigError

    model = onnx.load(str(jet_fpga.build_dir / "export-fixed" / "model.qonnx.clean.onnx"))
    check_activation_scales(ModelWrapper(model))  # the real build passes
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    quant = next(n for n in model.graph.node if n.op_type == "Quant" and n.input[0] == relu.output[0])
    scale = next(i for i in model.graph.initializer if i.name == quant.input[1])
    scale.CopyFrom(numpy_helper.from_array(np.full_like(numpy_helper.to_array(scale), 1e-10), scale.name))
    with pytest.raises(
        ConfigError, match=rf"activation quantizer {quant.name} after {relu.name} \(Relu\) has scale 1e-10"
    ):
        check_activation_scales(ModelWrapper(model))


def test_wider_than_8_bits_exports_qonnx_only_and_stays_exact(tmp_path: Path) -> None:
    """QCDQ holds 8-bit integers at most: a 12-bit model skips it and the FPGA target still matches brevitas."""
    result = compile_model(
        CompileRequest("jet_tagger", ("fpga-xcvu13p",), out=tmp_path / "b", tiny=True, quant="w12a12")
    )
    (fpga,) = result.report.targets
    assert fpga.status == "ok" and fpga.max_abs_diff_vs_quantized == 0.0
    formats = [g["format"] for g in result.manifest["artifacts"]["quant_exports"]["fixed"]["graphs"]]
    assert formats == ["qonnx", "qonnx-clean"] and not (tmp_path / "b" / "export-fixed" / "model.qcdq.onnx").exists()
    est = result.manifest["artifacts"]["compiled"]["fpga-xcvu13p"]["info"]["estimate"]
    assert est["dsp"] > 0  # 12-bit products go to DSP slices in the estimate


def test_a_relative_build_folder_works(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The emulator workers change into firmware/: the library path they load must not be relative."""
    run = cli("compile", "jet_tagger", "--tiny", "--quant", "w6a8", "--target", "fpga-xcvu13p", "--out", "b", "-q",
              cwd=tmp_path)  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    assert "crashed its worker process" not in run.stdout + run.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    (fpga,) = manifest["validation"]["targets"]
    assert fpga["status"] == "ok" and fpga["max_abs_diff_vs_quantized"] == 0.0


HLS4ML_OWN_TOOLS = """
import sys
import numpy as np
import hls4ml

model = hls4ml.converters.link_existing_project(sys.argv[1])  # a safe YAML loader reads hls4ml_config.yml
model.compile()  # hls4ml's own build_lib.sh, run where the config says the project is
np.save(sys.argv[3], model.predict(np.ascontiguousarray(np.load(sys.argv[2]), dtype=np.float64)))
"""


def test_the_hls_project_opens_in_hls4ml_itself_from_another_folder(jet_fpga: BuildResult, tmp_path: Path) -> None:
    """hls4ml's link_existing_project, compile and predict, run from elsewhere, equal brevitas bit for bit.

    Last in this module: hls4ml's compile() rebuilds the emulation library inside the build folder.
    """
    import subprocess
    import sys

    import yaml

    root = jet_fpga.build_dir
    project = root / "targets" / "fpga-xcvu13p" / "hls4ml_prj"
    config = yaml.safe_load((project / "hls4ml_config.yml").read_text())
    assert config["OutputDir"] == str(project.resolve()) and config["OnnxModel"] == "model.qonnx.onnx"
    assert (project / "model.qonnx.onnx").is_file()
    x = np.load(root / "pruned" / "golden_inputs.npy")[:300]
    expected = np.load(root / "quant-fixed" / "golden_quant_outputs.npy")[:300]
    np.save(tmp_path / "x.npy", x)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "run.py").write_text(HLS4ML_OWN_TOOLS)
    run = subprocess.run(
        [sys.executable, "run.py", str(project), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        cwd=elsewhere, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    got = np.load(tmp_path / "y.npy").reshape(expected.shape)
    assert np.array_equal(got, expected), float(np.max(np.abs(got - expected)))
