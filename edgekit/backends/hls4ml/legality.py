"""What hls4ml 1.3.0 cannot build exactly from a quantized model, named per layer before any work.

Most are limits of the QONNX path: qonnx's channels-last conversion, hls4ml's ONNX reader and its kernels.
"""

from __future__ import annotations

from edgekit.backends.base import ModelFacts
from edgekit.core.precision import QuantPlan, transposed_conv_problems
from edgekit.core.targets import TargetProfile
from edgekit.model.activation_table import HLS4ML_CLAMP_NOTE, HLS4ML_CLAMPS, HLS4ML_STREAM_CLAMPS

__all__ = ["quant_problems"]


def quant_problems(plan: QuantPlan, model: ModelFacts, target: TargetProfile) -> list[str]:
    """The deployed layers hls4ml cannot build (a depthwise convolution, a depth multiplier of 1, is the only
    grouping it takes), each with what to do instead."""
    info = model.graph
    problems = transposed_conv_problems(plan, "hls4ml 1.3.0's ONNX reader")
    problems += [
        f"{name}: a torch.cat of feature maps: qonnx's channels-last conversion leaves "
        "the join between transposes, which hls4ml cannot build; join flat features (after a flatten), or "
        "use the INT8 target"
        for name in model.ours(info.concat_maps)
    ]
    if info.input_users and len(model.input_shape) > 1:
        problems.append(
            f"the model's input feeds {len(info.input_users)} layers "
            f"({', '.join(info.input_users)}): qonnx's channels-last conversion then leaves a transpose "
            "before the input quantizer, which hls4ml cannot read; start the model with one layer that "
            "the branches share (a stem convolution), or use the INT8 target"
        )
    problems += [
        f"{name}: a product of feature maps (a * b of rank > 2, nn.Hardswish on a "
        "convolution's output): qonnx's channels-last conversion leaves a transpose on one operand, and "
        "the clean graph does not run; multiply flat features (after a flatten), or use the INT8 target"
        for name in model.ours(info.product_maps)
    ]
    problems += [
        f"{name}: a product of tensors of different shapes (broadcast, like a * s of "
        "shape (N, C, 1, 1)): hls4ml's Merge multiplies tensors of one shape; use the INT8 target"
        for name in model.ours(info.broadcast_products - info.product_maps)
    ]
    problems += [
        f"{name}: a grouped convolution that is not depthwise: hls4ml builds only "
        "groups == in_channels == out_channels (use a depthwise convolution and a 1x1 one)"
        for name in model.ours(info.grouped - info.depthwise)
    ]
    problems += [
        f"{name}: a 1-D pooling: hls4ml 1.3.0's ONNX reader cannot build it (its "
        "Pooling1D handler leaves pad_left unset and reads channels and width swapped); pool in 2-D over "
        "a (C, 1, W) map, or use the INT8 or RTL target"
        for name in model.ours(info.pools_1d)
    ]
    stream = target.fpga is not None and target.fpga.io_type == "io_stream"
    kernels = HLS4ML_STREAM_CLAMPS if stream else tuple(HLS4ML_CLAMPS)
    problems += [
        f"{name}: a clamp to [{low:g}, {high:g}]: hls4ml has no "
        f"{'io_stream ' if stream else ''}kernel for it ({HLS4ML_CLAMP_NOTE}); use one of those bounds, or "
        "the INT8 target"
        for name, low, high in info.clamps
        if model.ours(frozenset({name})) and (low, high) not in kernels
    ]
    return problems
