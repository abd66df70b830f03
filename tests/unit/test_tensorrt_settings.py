"""The TensorRT backend without TensorRT: build settings from each profile, the unavailable path, providers, timers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgekit.backends.onnxruntime import resolve_providers
from edgekit.backends.tensorrt.backend import INSTALL_HINT, TrtBuildSettings, build_settings
from edgekit.core.config import LatencySettings
from edgekit.core.errors import BackendUnavailable, ConfigError
from edgekit.core.latency import measure_latency
from edgekit.core.targets import load_target


def test_settings_for_the_fp16_profile() -> None:
    settings = build_settings(load_target("gpu-tensorrt-fp16"), (16,))
    assert settings == TrtBuildSettings(
        graph="float16",
        strongly_typed=True,
        workspace_bytes=1024 * 2**20,
        optimization_level=3,
        sparse_weights=False,
        dla_core=None,
        gpu_fallback=False,
        input_shapes=((1, 16), (1, 16), (4096, 16)),
        timing_cache=True,
    )


def test_settings_for_the_int8_and_jetson_profiles() -> None:
    int8 = build_settings(load_target("gpu-tensorrt-int8"), (1, 8, 8))
    assert int8.graph == "qdq-int8" and int8.dla_core is None and int8.input_shapes[2] == (4096, 1, 8, 8)
    jetson = build_settings(load_target("jetson-orin-int8"), (16,))
    assert jetson.graph == "qdq-int8" and jetson.dla_core == 0 and jetson.gpu_fallback
    assert jetson.workspace_bytes == 512 * 2**20


def test_sparsity_batch_range_and_bad_combinations(tmp_path: Path) -> None:
    text = Path(load_target("gpu-tensorrt-int8").source).read_text()
    sparse = tmp_path / "sparse.toml"
    sparse.write_text(text.replace("[gpu]\n", "[gpu]\nsparsity_2_4 = true\n") + "\n[backend_options]\nopt_batch = 64\n")
    settings = build_settings(load_target(str(sparse)), (16,))
    assert settings.sparse_weights and settings.input_shapes[1] == (64, 16)

    bad = tmp_path / "bad.toml"
    bad.write_text(text + "\n[backend_options]\nmin_batch = 8\nmax_batch = 4\n")
    with pytest.raises(ConfigError, match="min_batch <= opt_batch <= max_batch"):
        build_settings(load_target(str(bad)), (16,))
    dla_fp32 = tmp_path / "dla.toml"
    dla_fp32.write_text(
        text.replace('precision = "int8"', 'precision = "fp32"').replace("[gpu]\n", "[gpu]\ndla_core = 1\n")
    )
    with pytest.raises(ConfigError, match="the DLA runs FP16 or INT8 only"):
        build_settings(load_target(str(dla_fp32)), (16,))


def test_without_tensorrt_the_backend_says_what_to_install() -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here: the unavailable path cannot be shown")
    from edgekit.backends import get_backend

    reason = get_backend("tensorrt").unavailable_reason()
    assert reason == f"tensorrt is not installed; {INSTALL_HINT}"
    assert "pip install 'edgekit[tensorrt]'" in INSTALL_HINT
    from edgekit.backends.tensorrt.backend import _trt

    with pytest.raises(BackendUnavailable) as err:
        _trt()
    assert err.value.exit_code == 3


def test_auto_providers_prefer_tensorrt_then_cuda_then_the_cpu() -> None:
    assert resolve_providers(("auto",), ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    everything = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert resolve_providers(("auto",), everything) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert resolve_providers(("CUDAExecutionProvider", "auto"), everything)[0] == "CUDAExecutionProvider"


class _DeviceTimed:
    """A runner whose device timer reports a fixed time: the protocol must use it, and its clock."""

    clock = "CUDA events (test)"
    description = "device-timed test runner"
    device_timer = True  # declared: measure_latency times calls with timed_run

    def __init__(self) -> None:
        self.calls = 0

    def run(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return x

    def timed_run(self, x: np.ndarray) -> float:
        return 7.0

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_latency_uses_a_device_timer_when_the_runner_has_one() -> None:
    cfg = LatencySettings(warmup_iters=3, min_iters=10, max_iters=10, min_time_s=0.0, max_time_s=5.0)
    runner = _DeviceTimed()
    stat = measure_latency(runner, np.zeros((4, 2), dtype=np.float32), 8, cfg)
    assert stat.p50_us == 7.0 and stat.p99_us == 7.0 and stat.iterations == 10
    assert stat.clock == "CUDA events (test)" and runner.calls == 3  # warm-up only; timed calls use the timer
    assert stat.throughput_per_s == pytest.approx(8 / 7e-6)
