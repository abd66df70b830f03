"""GPU targets on a CPU machine: cpu-inductor end to end, the graphs TensorRT would take, every unavailable path."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest

HAS_CUDA = torch.cuda.is_available()
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("model", ["jet_tagger", "lenet_digits"])
def test_cpu_inductor_compiles_and_matches_the_float_model(model: str, tmp_path: Path) -> None:
    result = compile_model(CompileRequest(model, ("cpu-inductor",), out=tmp_path / "b", tiny=True))
    (target,) = result.report.targets
    assert target.status == "ok", target.reason
    assert target.max_abs_diff_vs_float <= 1e-4 and target.top1_agreement == 1.0
    assert all(g.passed for g in target.gates if g.name != "max_metric_drop_vs_float")
    info = result.manifest["artifacts"]["compiled"]["cpu-inductor"]["info"]
    assert info["device"] == "cpu" and info["self_check_max_abs_diff_vs_eager"] <= 1e-4
    folder = result.build_dir / "targets" / "cpu-inductor"
    assert (folder / "model.pt2").is_file() and "export" in (folder / "inductor.log").read_text()
    assert "AOTInductor package" in target.runner and target.latency[0].clock.startswith("wall clock")
    assert "## AOTInductor: cpu-inductor" in (result.build_dir / "report.md").read_text()


@pytest.fixture(scope="module")
def jet_int8(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    out = tmp_path_factory.mktemp("jet_int8")
    return compile_model(CompileRequest("jet_tagger", ("cpu-onnxruntime-int8",), out=out, tiny=True, quant="int8"))


@pytest.fixture(scope="module")
def lenet_int8(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    out = tmp_path_factory.mktemp("lenet_int8")
    return compile_model(CompileRequest("lenet_digits", ("cpu-onnxruntime-int8",), out=out, tiny=True, quant="int8"))


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {model.graph.input[0].name: x})[0])


@pytest.mark.parametrize("build_name", ["jet_int8", "lenet_int8"])
def test_qcdq_graphs_pass_tensorrts_explicit_quantization_rules(
    build_name: str, request: pytest.FixtureRequest
) -> None:
    from edgekit.backends.tensorrt.graph import explicit_quantization_problems, prepare_qdq

    build: BuildResult = request.getfixturevalue(build_name)
    qcdq = onnx.load(str(build.build_dir / "export-int8" / "model.qcdq.onnx"))
    # As brevitas writes it, TensorRT would refuse the INT32 bias dequantization ...
    assert any("INT32 dequantization" in p for p in explicit_quantization_problems(qcdq))
    prepared = prepare_qdq(qcdq)
    # ... the prepared graph follows every rule: Q/DQ pairs, 8-bit, symmetric, per-channel weights only
    assert explicit_quantization_problems(prepared) == []
    onnx.checker.check_model(prepared, full_check=True)
    kinds = [n.op_type for n in prepared.graph.node]
    assert "Clip" not in kinds and kinds.count("QuantizeLinear") == kinds.count("DequantizeLinear")
    x = np.load(build.build_dir / "float" / "golden_inputs.npy")
    golden = np.load(build.build_dir / "quant-int8" / "golden_quant_outputs.npy")
    assert np.array_equal(_run(prepared, x), golden)  # bit for bit what brevitas computes


def test_planted_quantization_problems_are_named(jet_int8: BuildResult) -> None:
    from onnx import numpy_helper

    from edgekit.backends.tensorrt.graph import explicit_quantization_problems, prepare_qdq

    prepared = prepare_qdq(onnx.load(str(jet_int8.build_dir / "export-int8" / "model.qcdq.onnx")))
    activation_q = next(n for n in prepared.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "input")
    zero = next(i for i in prepared.graph.initializer if i.name == activation_q.input[2])
    zero.CopyFrom(numpy_helper.from_array(np.array(3, dtype=np.int8), zero.name))  # asymmetric
    problems = explicit_quantization_problems(prepared)
    assert any("non-zero zero point; TensorRT's quantization is symmetric" in p for p in problems)


def test_half_precision_graphs_for_tensorrt(tmp_path: Path, jet_int8: BuildResult, lenet_int8: BuildResult) -> None:
    from edgekit.backends.tensorrt.backend import _graph_for, build_settings
    from edgekit.core.errors import ConfigError
    from edgekit.core.targets import load_target

    for build, shape in ((jet_int8, (16,)), (lenet_int8, (1, 8, 8))):
        source = build.build_dir / "export" / "model.onnx"
        settings = build_settings(load_target("gpu-tensorrt-fp16"), shape)
        out = tmp_path / build.manifest["model"]["name"]
        out.mkdir()
        path = _graph_for(settings, source, out)  # checked with onnxruntime against the fp32 graph inside
        half = onnx.load(str(path))
        assert {i.data_type for i in half.graph.initializer} <= {onnx.TensorProto.FLOAT16, onnx.TensorProto.INT64}
        x = np.load(build.build_dir / "float" / "golden_inputs.npy")
        floats = np.load(build.build_dir / "float" / "golden_float_outputs.npy")
        assert np.mean(np.argmax(_run(half, x), 1) == np.argmax(floats, 1)) >= 0.99
    lenet_bf16 = replace(build_settings(load_target("gpu-tensorrt-fp16"), (1, 8, 8)), graph="bfloat16")
    with pytest.raises(ConfigError, match="the bfloat16 graph is not valid ONNX"):
        _graph_for(lenet_bf16, lenet_int8.build_dir / "export" / "model.onnx", tmp_path)  # Conv takes no bf16 here


def test_bfloat16_rounds_to_nearest_even() -> None:
    from edgekit.backends.tensorrt.graph import _half_tensor

    values = np.array([1.0, 1.00390625, 1.01171875, -2.5, 3.0e38], dtype=np.float32)
    bits = np.frombuffer(_half_tensor(values, "w", onnx.TensorProto.BFLOAT16).raw_data, dtype=np.uint16)
    back = (bits.astype(np.uint32) << 16).view(np.float32)
    # 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even is 1; 1 + 3 * 2^-8 rounds up to 1 + 2^-6
    assert back.tolist()[:4] == [1.0, 1.0, 1.015625, -2.5] and np.isfinite(back[4])


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: the missing-device path cannot be shown")
def test_gpu_targets_without_a_gpu_are_unavailable_with_the_reason(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = cli(
        "compile", "jet_tagger", "--tiny", "-t", "gpu-inductor", "-t", "cpu-onnxruntime", "--out", str(tmp_path / "b")
    )
    assert run.returncode == 3, run.stderr
    assert "gpu-inductor: unavailable: no CUDA device: torch" in run.stdout and "sees no GPU" in run.stdout
    assert any((tmp_path / "b" / "targets" / "cpu-onnxruntime").glob("*.onnx"))  # the other target was built
    listed = {r["name"]: r for r in cli("targets", "--json").json()}
    assert not listed["gpu-inductor"]["available"] and "no CUDA device" in listed["gpu-inductor"]["reason"]
    reason = listed["gpu-tensorrt-int8"]["reason"]
    assert reason.startswith("tensorrt is not installed" if not HAS_TENSORRT else "no CUDA device")


def test_inductor_refuses_a_batch_outside_its_range_and_a_corrupt_package(tmp_path: Path, profile_variant) -> None:  # type: ignore[no-untyped-def]
    from edgekit.backends.inductor import InductorBackend
    from edgekit.core.artifacts import CompiledArtifact
    from edgekit.core.errors import InputError
    from edgekit.core.schema import build
    from edgekit.core.targets import load_target

    small = profile_variant("cpu-inductor", "cpu-inductor-small", tmp_path, {"max_batch = 4096": "max_batch = 8"})
    overrides = ("latency.batch_sizes=[1,8]", "validation.batch_size=8")
    result = compile_model(
        CompileRequest("jet_tagger", (str(small),), out=tmp_path / "b", tiny=True, overrides=overrides)
    )
    assert result.report.targets[0].status == "ok", result.report.targets[0].reason
    artifact = build(CompiledArtifact, result.manifest["artifacts"]["compiled"]["cpu-inductor-small"])
    package = result.build_dir / "targets" / "cpu-inductor-small" / "model.pt2"
    runner = InductorBackend().load(artifact, package, load_target(str(small)))
    with pytest.raises(InputError, match=r"batch of 9 is outside the package's dynamic batch range 1\.\.8"):
        runner.run(np.zeros((9, 16), dtype=np.float32))
    corrupt = tmp_path / "corrupt.pt2"
    corrupt.write_bytes(b"PK\x03\x04 not really a package")
    with pytest.raises(InputError, match="cannot be loaded as an AOTInductor package"):
        InductorBackend().load(artifact, corrupt, load_target(str(small)))


def test_a_crash_inside_aotinductor_is_a_toolchain_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model kills its process while torch.export traces it: the build worker dies, the caller does not."""
    monkeypatch.syspath_prepend(str(FIXTURES))  # crash_on_export.py
    result = compile_model(
        CompileRequest(
            "crash_on_export:build",
            ("cpu-inductor", "cpu-onnxruntime"),
            out=tmp_path / "b",
            recipe="jet_tagger",
            tiny=True,
        )
    )
    inductor, ort_target = result.report.targets
    assert (
        inductor.status == "failed"
        and "AOTInductor (export, compile and first load of the package) crashed its worker process" in inductor.reason
    )
    assert "inductor.log" in inductor.reason and result.exit_code == 4
    assert ort_target.status == "ok"  # and this process, which the worker's crash did not take down
    assert not (result.build_dir / "targets" / "cpu-inductor").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs an NVIDIA GPU with CUDA torch (none on this machine)")
@pytest.mark.parametrize("model", ["jet_tagger", "lenet_digits"])
def test_gpu_inductor_on_a_real_gpu(model: str, tmp_path: Path) -> None:
    result = compile_model(CompileRequest(model, ("gpu-inductor",), out=tmp_path / "b", tiny=True))
    (target,) = result.report.targets
    assert target.status == "ok" and target.max_abs_diff_vs_float <= 1e-3
    assert target.latency[0].clock.startswith("CUDA events around the forward only")


def _tensorrt_skip_reason() -> str:
    from edgekit.backends.tensorrt.backend import TensorRTBackend

    reason = TensorRTBackend().unavailable_reason()  # the same words the CLI and edgekit targets print
    return reason or "TensorRT needs an NVIDIA GPU with CUDA torch (none on this machine)"


@pytest.mark.tensorrt
@pytest.mark.skipif(not (HAS_TENSORRT and HAS_CUDA), reason=_tensorrt_skip_reason())
@pytest.mark.parametrize("model", ["jet_tagger", "lenet_digits"])
def test_tensorrt_engines_fp16_and_int8(model: str, tmp_path: Path) -> None:
    fp16 = compile_model(CompileRequest(model, ("gpu-tensorrt-fp16",), out=tmp_path / "fp16", tiny=True))
    int8 = compile_model(CompileRequest(model, ("gpu-tensorrt-int8",), out=tmp_path / "int8", tiny=True, quant="int8"))
    for result in (fp16, int8):
        (target,) = result.report.targets
        assert target.status == "ok", target.reason
        assert all(g.passed for g in target.gates if g.name != "max_metric_drop_vs_float")
        info = next(iter(result.manifest["artifacts"]["compiled"].values()))["info"]
        assert info["layers"]["count"] > 0 and any((result.build_dir / "targets").rglob("timing.cache"))
    (int8_target,) = int8.report.targets
    # What TensorRT INT8 must meet is the int8 format's gate: exact with brevitas (power-of-two scales make
    # the integer sums and every rescale exact), as the QCDQ graph is on ONNX Runtime
    assert int8_target.max_abs_diff_vs_quantized == 0.0
    assert any(g.name == "max_abs_diff_vs_quantized" and g.threshold == 0.0 and g.passed for g in int8_target.gates)
    assert int8_target.latency[0].clock.startswith("CUDA events around execute_async_v3 only")
