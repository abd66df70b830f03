"""QONNX graphs shared by the stages that read them: run on a batch by qonnx's executor, cleaned for the FPGA.

Used by the quantized export (edgekit's own brevitas models) and by a QONNX file taken as it is.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx

from edgekit.core.errors import ToolchainError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import onnxruntime
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.custom_op.channels_last.max_pool import MaxPool_v1
    from qonnx.custom_op.registry import add_op_to_domain
    from qonnx.transformation import channels_last
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.transformation.general import SortGraph
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import get_by_name
    from qonnx.util.cleanup import cleanup_model

    onnxruntime.set_default_logger_severity(3)

__all__ = ["ModelWrapper", "clean_for_fpga", "cleanup_model", "execute_graph", "with_batch"]

CHANNELS_LAST = "qonnx.custom_op.channels_last"
AVERAGE_POOL_OPSET = 11  # pads, ceil_mode and count_include_pad as torch exports them


class AveragePool_v1(MaxPool_v1):  # type: ignore[misc]  # qonnx reads an op's type and version from its class name
    """A channels-last AveragePool: qonnx wraps Conv, MaxPool and BatchNormalization, and hls4ml takes a
    pooling only in that domain. Same attributes and shapes as MaxPool; run by ONNX Runtime channels first."""

    _channelsLast_node_types: ClassVar[list[str]] = ["AveragePool"]

    def execute_node(self, context: Any, graph: Any) -> None:
        # qonnx runs the wrapped node at its own opset (1), which ONNX Runtime has no AveragePool kernel for.
        self.onnx_opset_version: int = max(int(self.onnx_opset_version), AVERAGE_POOL_OPSET)
        super().execute_node(context, graph)


# qonnx lists the operators it converts once, at import, from its registry: add AveragePool to both.
add_op_to_domain(CHANNELS_LAST, AveragePool_v1)
if "AveragePool" not in channels_last._channelsLast_node_types:
    channels_last._channelsLast_node_types.append("AveragePool")


def with_batch(model: ModelWrapper, batch: int) -> ModelWrapper:
    """A copy in which every tensor computed from the input has a batch of ``batch`` (exported with 1)."""
    copy = ModelWrapper(onnx.ModelProto.FromString(model.model.SerializeToString())).transform(InferShapes())
    graph = copy.graph
    activations = {graph.input[0].name}
    for node in graph.node:  # nodes are in topological order
        if any(name in activations for name in node.input):
            activations.update(node.output)
    for value in (*graph.input, *graph.output, *graph.value_info):
        tensor = value.type.tensor_type
        # Shape arithmetic (x.size(0) -> Gather -> Reshape) is integer-typed and keeps its own shape.
        if value.name in activations and tensor.elem_type == onnx.TensorProto.FLOAT and tensor.shape.dim:
            dim = tensor.shape.dim[0]
            dim.ClearField("dim_param")
            dim.dim_value = batch
    return copy


def execute_graph(model: ModelWrapper, x: np.ndarray, what: str) -> np.ndarray:
    sized = with_batch(model, len(x))
    try:
        with warnings.catch_warnings():
            # qonnx compares each node's output shape with the (batch-resized) value_info and warns on
            # reshapes; the values themselves are compared with brevitas' below.
            warnings.filterwarnings("ignore", message="Output shapes disagree")
            out = execute_onnx(sized, {sized.graph.input[0].name: x})
    except Exception as err:  # qonnx and onnxruntime raise their own types
        raise ToolchainError(
            f"the exported {what} graph does not run on a batch of {len(x)}: {str(err).splitlines()[0][:300]}",
            hint="a batch size baked into the graph is the usual cause: reshape with x.view(-1, ...) or "
            "torch.flatten(x, 1) instead of x.view(x.size(0), ...)",
        ) from err
    return np.asarray(out[sized.graph.output[0].name])


def _resize_channels_last(model: ModelWrapper) -> ModelWrapper:
    """Each Resize (a nearest Upsample) moved behind the Transpose to channels last that follows it.

    qonnx's channels-last conversion leaves Resize channels first; hls4ml reads a Resize channels last
    and wants its RoI input as a constant (it drops it), not the empty name brevitas writes. Nearest
    resizing by whole factors commutes with the transpose (its scales are permuted with it).
    """
    for node in list(model.graph.node):
        users = model.find_consumers(node.output[0]) if node.op_type == "Resize" else None
        if not users or len(users) != 1 or users[0].op_type != "Transpose" or len(node.input) != 3:
            continue
        transpose, scales = users[0], model.get_initializer(node.input[2])
        perm = list(get_by_name(transpose.attribute, "perm").ints)
        stale = model.get_tensor_valueinfo(node.output[0])
        if stale is not None:
            model.graph.value_info.remove(stale)
        moved = model.make_new_valueinfo_name()
        source, result = node.input[0], transpose.output[0]
        transpose.input[0], transpose.output[0] = source, moved
        node.input[0], node.output[0] = moved, result
        model.set_initializer(node.input[2], np.asarray(scales)[perm].astype(np.float32))
        model.set_initializer(f"{node.name}_roi", np.zeros(1, dtype=np.float32))  # ignored: not tf_crop_and_resize
        node.input[1] = f"{node.name}_roi"
    return cleanup_model(model.transform(SortGraph()))


def clean_for_fpga(path: Path, out: Path, channels_first_input: bool) -> ModelWrapper:
    model = cleanup_model(ModelWrapper(str(path)))
    if channels_first_input:
        with warnings.catch_warnings():
            # A Transpose before a Flatten stays where qonnx cannot absorb it (the graph is checked below).
            warnings.filterwarnings("ignore", message="Could not absorb transpose")
            model = model.transform(ConvertToChannelsLastAndClean(make_input_channels_last=True))
        model = _resize_channels_last(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GemmToMatMul warns about opsets newer than 9; its result is checked below
        model = cleanup_model(model.transform(GemmToMatMul()))
    model.save(str(out))
    return model
