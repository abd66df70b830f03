"""Models compiled as they are, checked before any work: ONNX and QONNX files (which targets take them, and
which are held exact to qonnx's run of the file) and brevitas networks with their own quantizers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgekit.core.artifacts import ModelSource
from edgekit.core.config import Layer, Settings, merge_settings
from edgekit.core.errors import ConfigError
from edgekit.core.progress import say
from edgekit.core.schema import to_plain
from edgekit.model.torch_model import instantiate
from edgekit.pipeline.planning import TargetPlan

__all__ = ["brevitas_layers", "check_brevitas_model", "check_onnx_file"]


def check_onnx_file(
    quant_nodes: int, settings: Settings, plans: list[TargetPlan], inexact: tuple[str, ...] = ()
) -> list[TargetPlan]:
    """An ONNX file is compiled as it is, for the targets that compile its kind of graph; others are refused.

    A float file goes to the float ONNX targets, a QONNX file to the FPGA targets, which are then held to
    exactness against qonnx's run of the file (the plans returned carry that gate).
    """
    if settings.quant.enabled:
        raise ConfigError(
            "an ONNX file is compiled as it is: --quant quantizes a PyTorch model, and this file has none",
            hint="drop --quant (a file with QuantizeLinear/DequantizeLinear nodes runs as it is on cpu-onnxruntime), "
            "or compile the PyTorch model with --quant",
        )
    if settings.prune.method != "none":
        raise ConfigError(
            "an ONNX file is compiled as it is: --prune fine-tunes a PyTorch model, and this file has none",
            hint="prune the PyTorch model (edgekit compile mynets:build --prune 0.8), or drop --prune",
        )
    for plan in plans:
        name = plan.profile.name
        if quant_nodes:  # QONNX: what hls4ml and the RTL path read; nothing else runs Quant nodes
            if plan.profile.family != "fpga":
                raise ConfigError(
                    f"{name}: a QONNX file (Quant nodes) is compiled for the FPGA targets only; {name} cannot run "
                    "Quant nodes",
                    hint="build it for fpga-xcvu13p, fpga-xczu7ev-stream or fpga-xcvu13p-rtl; for a CPU or GPU "
                    "target export the model as QCDQ (QuantizeLinear/DequantizeLinear) or float ONNX",
                )
            _refuse_inexact(f"{name} cannot compute this QONNX file exactly", inexact)
            continue
        if plan.profile.family == "fpga":
            raise ConfigError(
                f"{name}: a float ONNX file is not compiled for FPGA targets: they take a quantized graph (a QONNX "
                "file, or a PyTorch model with --quant) or a float PyTorch model (hls4ml's PyTorch frontend)",
                hint="export the model as QONNX (brevitas' export_qonnx with power-of-two scales), or compile the "
                "PyTorch model for the FPGA target; the file builds for cpu-onnxruntime and the gpu-tensorrt targets",
            )
        if plan.family is not None:  # an INT8 target: it runs edgekit's own QCDQ export
            raise ConfigError(
                f"{name} runs the INT8 graph edgekit exports from a quantized PyTorch model; an ONNX file has none",
                hint="compile the file for cpu-onnxruntime (a QCDQ file runs there as it is), or the PyTorch model "
                f"with --quant int8 for {name}",
            )
        if plan.backend is not None and plan.backend.float_graph == "torch":
            raise ConfigError(
                f"{name} compiles the PyTorch model itself (torch.export); an ONNX file has none",
                hint="use cpu-onnxruntime (or a gpu-tensorrt target) for the file, or compile the PyTorch model",
            )

    if not quant_nodes:
        return plans
    return _held_exact(plans, plans, "a QONNX file: exact against qonnx's run of it")


def _refuse_inexact(what: str, problems: tuple[str, ...]) -> None:
    """Refuse, naming the first problems, a graph the fixed-point targets cannot compute exactly."""
    if not problems:
        return
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    raise ConfigError(
        f"{what}: {shown}",
        hint="use power-of-two scales (brevitas' *FixedPoint quantizers, e.g. Int8WeightPerTensorFixedPoint, "
        "Int8ActPerTensorFixedPoint), zero points 0, ROUND, and quantized biases (bias_quant=Int32Bias)",
    )


def _held_exact(plans: list[TargetPlan], chosen: list[TargetPlan], why: str) -> list[TargetPlan]:
    """``chosen`` plans gated exact against the build's reference (a file's run, a brevitas model's forward)."""
    gates = {"max_abs_diff_vs_float": 0.0, "max_abs_diff_vs_quantized": None}  # the reference is not a twin
    exact = Layer(why, {"gates": gates})
    return [
        replace(p, settings=merge_settings([Layer("target", to_plain(p.settings)), exact]), family=None)
        if p in chosen
        else p
        for p in plans
    ]


def brevitas_layers(model: Any) -> list[str]:
    """The model's layers that are already brevitas quantized layers (``QuantLinear 'fc1'``)."""
    return [
        f"{type(m).__name__} {name!r}"
        for name, m in model.named_modules()
        if name and type(m).__module__.startswith("brevitas.nn")
    ]


def check_brevitas_model(
    source: ModelSource, settings: Settings, plans: list[TargetPlan], input_shape: tuple[int, ...]
) -> list[TargetPlan]:
    """A model of brevitas layers is taken as the quantized model it is, for the targets that can take it.

    The FPGA targets compile its QONNX export and are held exact to its own forward (the returned plans carry
    that gate); the float ONNX targets build its fake-quantization graph. ``--quant`` (it is quantized
    already), pruning, the INT8 targets and the Inductor targets are refused with the reason, and so is a
    quantizer fixed point cannot compute exactly (from an export of the untrained model), before any work.
    """
    found = brevitas_layers(instantiate(source))
    if not found:
        return plans
    shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
    what = f"the model is already quantized with brevitas ({shown})"
    if settings.quant.enabled:
        raise ConfigError(
            f"{what}: --quant would quantize it again",
            hint="drop --quant: its own quantizers are used as they are (edgekit quantizes float networks)",
        )
    if settings.prune.method != "none":
        raise ConfigError(f"{what}: pruning a brevitas model is not supported", hint="prune the float network")
    for plan in plans:
        name = plan.profile.name
        if plan.family is not None and plan.backend is not None and not plan.backend.brevitas_int8:
            raise ConfigError(
                f"{what}: {name} is not taken for a brevitas model yet; its own quantizers go to the FPGA targets "
                "(QONNX), cpu-onnxruntime-int8 (QCDQ) and the float ONNX targets",
                hint="build it for fpga-xcvu13p, fpga-xcvu13p-rtl or cpu-onnxruntime-int8",
            )
        torch_only = plan.backend is not None and plan.backend.float_graph == "torch"
        if torch_only and plan.profile.family != "fpga":
            raise ConfigError(
                f"{what}: {name} compiles float PyTorch models (torch.export)", hint="use cpu-onnxruntime"
            )
    exacting = [p for p in plans if p.profile.family == "fpga" or p.family is not None]
    if exacting:
        from edgekit.stages.export_brevitas import untrained_quant_problems

        int8 = any(p.family == "int8" for p in exacting)
        problems = untrained_quant_problems(source, input_shape, int8)
        _refuse_inexact(f"{what}: {exacting[0].profile.name} cannot compute its quantizers exactly", problems)
    say(f"  note: {what}: its own quantizers are used as they are")
    return _held_exact(plans, exacting, "a brevitas model: exact against its own forward")
