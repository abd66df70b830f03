"""The cleaned QONNX graph made ready for hls4ml 1.3.0: checks and in-memory rewrites before it converts.

The checks refuse, with a message that says why, what hls4ml would build wrongly or fail on deep inside
(collapsed activation scales, grouped convolutions other than depthwise, non-square Resize); the rewrites
change only the in-memory model hls4ml reads (Clip bounds as attributes, Reshape outputs named after their
node for io_stream), never the file. ``inputs_per_output`` sizes the resource strategy's reuse factors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.core.errors import ConfigError
from edgekit.model.activation_table import clip_bounds

__all__ = [
    "SMALLEST_ACTIVATION_SCALE",
    "check_activation_scales",
    "check_resize",
    "clips_as_attributes",
    "depthwise_convs",
    "inputs_per_output",
    "name_reshape_outputs",
]


def clips_as_attributes(model: Any) -> None:
    """Each Clip's constant bounds as attributes (the opset-6 form), so hls4ml's reader sees one input and no
    stray constants. Only hls4ml reads this in-memory model; the file keeps its form."""
    import onnx

    for node in model.graph.node:
        if node.op_type != "Clip" or len(node.input) == 1:
            continue
        bounds = clip_bounds(model, node)
        constants = [name for name in node.input[1:] if name]
        del node.input[1:]
        node.attribute.extend(
            [onnx.helper.make_attribute("min", bounds["low"]), onnx.helper.make_attribute("max", bounds["high"])]
        )
        for name in constants:
            if not model.find_consumers(name):
                model.del_initializer(name)


SMALLEST_ACTIVATION_SCALE = 2.0**-24  # an activation quantizer finer than this saw (almost) only zeros


def check_activation_scales(model: Any) -> None:
    """Refuse an activation quantizer whose scale collapsed: its layer never fired on the calibration data."""
    initializers = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Quant" or node.input[0] in initializers:
            continue  # weights and biases are quantized from initializers
        scale = model.get_initializer(node.input[1])
        if scale is not None and 0 < float(np.max(scale)) < SMALLEST_ACTIVATION_SCALE:
            producer = next((n for n in model.graph.node if node.input[0] in n.output), None)
            after = f" after {producer.name} ({producer.op_type})" if producer is not None else ""
            raise ConfigError(
                f"the activation quantizer {node.name}{after} has scale {float(np.max(scale)):.3g}: that layer's "
                "output was (almost) always zero on the calibration data, so hls4ml cannot size its fixed-point types",
                hint="train longer or wider (a dead ReLU), or check the data",
            )


def inputs_per_output(model: Any) -> dict[str, int]:
    """How many products each output of a layer hls4ml builds with its dense kernel sums: MatMul/Gemm and
    1x1 (pointwise) Conv nodes. Its other convolutions compile with any reuse factor."""
    found = {}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm") or len(node.input) < 2:
            continue
        shape = model.get_tensor_shape(node.input[1])
        if not shape:
            continue
        if node.op_type == "Conv":
            # the weight is (out, in, k...) or, after the channels-last conversion, (out, k..., in): the
            # kernel_shape attribute says which sizes are the kernel's in either layout
            kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), list(shape[2:]))
            if any(k != 1 for k in kernel):
                continue
            found[node.name] = int(np.prod(shape[1:]))  # a 1x1 kernel: its inputs are the input channels
        else:
            found[node.name] = int(shape[0])
    return found


def depthwise_convs(model: Any) -> list[str]:
    """The grouped Conv nodes, each a depthwise conv hls4ml 1.3.0 can build; ConfigError for any other grouping.

    hls4ml turns a Conv with ``group == channels`` into a DepthwiseConv layer; a general grouping fails its ONNX
    parser (it takes ``group / channels`` for a depth multiplier) and a depth multiplier above 1 fails an
    assertion in its C++ (``only a depth multiplier of 1``), so edgekit refuses both up front.
    """
    names: list[str] = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if group == 1:
            continue
        channels = model.get_tensor_shape(node.input[0])[-1]  # channels last
        filters = model.get_tensor_shape(node.input[1])[0]
        if group != channels or filters != channels:
            raise ConfigError(
                f"node {node.name}: a grouped Conv with groups={group}, {channels} input and {filters} output "
                "channels; hls4ml builds only depthwise convs (groups == in_channels == out_channels)",
                hint="use groups=1, or a depthwise conv (groups == in_channels == out_channels) and a 1x1 conv",
            )
        names.append(node.name)
    return names


def check_resize(model: Any) -> None:
    """Refuse a Resize hls4ml 1.3.0 would compute wrongly: it reads height and width swapped (2D only)."""
    for node in model.graph.node:
        if node.op_type != "Resize":
            continue
        shape = model.get_tensor_shape(node.input[0])
        scales = model.get_initializer(node.input[2]) if len(node.input) > 2 else None
        square = len(shape) == 4 and shape[1] == shape[2] and scales is not None and scales[1] == scales[2]
        if not square:
            raise ConfigError(
                f"node {node.name}: hls4ml 1.3.0 upsamples only 2D maps that are square with one scale factor for "
                f"height and width (it swaps the two), this input is {shape[1:]} (channels last)",
                hint="use a square feature map and one integer scale_factor, or a CPU/GPU target",
            )


def name_reshape_outputs(model: Any) -> None:
    """io_stream: name each Reshape/Flatten output after its node.

    hls4ml 1.3.0's stream repacking looks a Reshape's output type up by the layer's name, and its ONNX
    reader names outputs after the tensors: a reshape to a feature map (or at the output) fails with a
    KeyError. Only names change; hls4ml reads the model from memory, the file keeps its names.
    """
    for node in model.graph.node:
        if node.op_type in ("Reshape", "Flatten") and node.output[0] != node.name:
            model.rename_tensor(node.output[0], node.name)
