"""The ONNX graphs a TensorRT engine is built from, prepared and checked without TensorRT.

TensorRT 11 builds strongly typed networks only (its FP16/BF16/INT8 builder flags
are gone, and TensorRT 10.12 deprecated them): the precision of every tensor
comes from the graph. So edgekit hands it

* the float graph as exported (FP32),
* the float graph with its weights and arithmetic in half precision (FP16, BF16),
  fp32 at the input and output, converted here, or
* the QCDQ graph (INT8), rewritten into the explicit-quantization form TensorRT
  documents: a QuantizeLinear/DequantizeLinear pair on float weights (per output
  channel) and on activations (per tensor), zero points 0, and the bias in fp32.

Each rewrite is run with onnxruntime against the graph it came from (exact for
INT8; within half-precision rounding for FP16), and :func:`explicit_quantization_problems`
applies the rules TensorRT checks for explicit quantization, so a graph that
TensorRT would reject is caught on any machine. This module imports onnx and
numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["explicit_quantization_problems", "prepare_qdq", "to_half_precision"]

WEIGHTED = {"Conv": 1, "Gemm": 1, "MatMul": 1, "ConvTranspose": 1}  # op -> input index of the weights


def _consts(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    found = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _dequantize(values: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * values.ndim
    if scale.ndim == 1 and values.ndim > 0:
        shape[axis] = -1
    q = values.astype(np.float64) - zero.astype(np.float64).reshape(shape)
    return (q * scale.astype(np.float64).reshape(shape)).astype(np.float32)


def prepare_qdq(model: Any) -> Any:
    """The QCDQ export in TensorRT's explicit-quantization form (a new model; the input is not changed).

    brevitas writes weights as int8 constants -> Clip -> DequantizeLinear and the bias as an int32 constant ->
    DequantizeLinear. TensorRT takes neither Clip on INT8 nor INT32 dequantization: the clip is folded, the
    weights become float constants with a Q/DQ pair (the same integers come out of the QuantizeLinear), and
    the bias becomes a float constant.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    consts = _consts(model)
    graph = model.graph
    new_nodes, new_inits = [], []
    folded: dict[str, np.ndarray] = {}  # int tensors computed from constants (clipped weights)
    for node in graph.node:
        if node.op_type == "Clip" and all(i in consts or i in folded for i in node.input if i):
            operands = [folded.get(i, consts.get(i)) for i in node.input]
            data = operands[0]
            assert data is not None
            low = operands[1] if len(operands) > 1 else None
            high = operands[2] if len(operands) > 2 else None
            folded[node.output[0]] = np.clip(data, low, high).astype(data.dtype)
            continue
        source = node.input[0] if node.input else ""
        if node.op_type == "DequantizeLinear" and (source in consts or source in folded):
            found = folded.get(source, consts.get(source))
            assert found is not None
            values = found
            scale, zero = consts[node.input[1]], consts.get(node.input[2], np.zeros((), values.dtype))
            axis = int(_attr(node, "axis", 1))
            real = _dequantize(values, scale, zero, axis)
            if values.dtype == np.int8 and np.all(zero == 0):  # a weight: float constant -> Q -> DQ
                weight_name = f"{node.output[0]}__float"
                new_inits.append(numpy_helper.from_array(real, weight_name))
                quantized = f"{node.output[0]}__q"
                q_attrs: dict[str, Any] = {"axis": axis} if scale.ndim == 1 else {}
                params = [node.input[1], node.input[2]]
                new_nodes.append(
                    helper.make_node("QuantizeLinear", [weight_name, *params], [quantized], f"{node.name}_weight_q",
                                     **q_attrs)
                )  # fmt: skip
                new_nodes.append(
                    helper.make_node("DequantizeLinear", [quantized, *params], [node.output[0]], node.name, **q_attrs)
                )
            else:  # the int32 bias, or anything else constant: a float constant
                new_inits.append(numpy_helper.from_array(real, node.output[0]))
            continue
        new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


def explicit_quantization_problems(model: Any) -> list[str]:
    """What TensorRT's explicit quantization would refuse or compute differently, one line per problem.

    Rules: every QuantizeLinear feeds DequantizeLinear nodes with the same scale and zero point; zero points are
    INT8 zeros (symmetric); scales are finite and positive; activations have one scale per tensor; weights may
    have one scale per output channel, along axis 0 (Conv, Gemm with transB=1) or 1 (MatMul, Gemm without
    transB); nothing but a DequantizeLinear consumes quantized INT8 tensors; no INT32 dequantization.
    """
    consts = _consts(model)
    graph = model.graph
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    problems: list[str] = []
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        label = f"{node.op_type} {node.name or node.output[0]}"
        scale = consts.get(node.input[1])
        zero = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None:
            problems.append(f"{label}: the scale is not a constant")
            continue
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            problems.append(f"{label}: scales must be finite and positive")
        if zero is None or zero.dtype != np.int8:
            kind = "missing" if zero is None else str(zero.dtype)
            problems.append(f"{label}: the zero point is {kind}, TensorRT quantizes to INT8 only")
        elif np.any(zero != 0):
            problems.append(f"{label}: non-zero zero point; TensorRT's quantization is symmetric")
        per_channel = scale.ndim == 1 and scale.size > 1
        source = node.input[0]
        on_weights = source in consts or any(
            p.output[0] == source and p.op_type == "QuantizeLinear" and p.input[0] in consts for p in graph.node
        )
        if per_channel and not on_weights:
            problems.append(f"{label}: per-channel scales on an activation; TensorRT takes them on weights only")
        if per_channel and on_weights:
            axis = int(_attr(node, "axis", 1))
            for user in consumers.get(node.output[0], []):
                wanted = _weight_axis(user)
                if node.op_type == "DequantizeLinear" and wanted is not None and axis != wanted:
                    problems.append(f"{label}: per-channel axis {axis}, {user.op_type} {user.name} needs axis {wanted}")
        if node.op_type == "QuantizeLinear":
            users = consumers.get(node.output[0], [])
            for user in users:
                if user.op_type != "DequantizeLinear":
                    problems.append(f"{label}: its INT8 output feeds {user.op_type}, not a DequantizeLinear")
                elif consts.get(user.input[1]) is not None and not np.array_equal(consts[user.input[1]], scale):
                    problems.append(f"{label}: the DequantizeLinear after it has another scale")
        if node.op_type == "DequantizeLinear" and source in consts and consts[source].dtype == np.int32:
            problems.append(f"{label}: INT32 dequantization (a quantized bias); TensorRT needs the bias in float")
    if not any(n.op_type == "QuantizeLinear" for n in graph.node):
        problems.append("the graph has no QuantizeLinear: nothing would run in INT8")
    return problems


def _weight_axis(user: Any) -> int | None:
    if user.op_type == "Conv":
        return 0
    if user.op_type == "Gemm":
        return 0 if _attr(user, "transB", 0) else 1
    if user.op_type == "MatMul":
        return 1
    return None


def to_half_precision(model: Any, dtype: str) -> Any:
    """The float graph computing in ``float16`` or ``bfloat16``; fp32 stays at the input and output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    target = {"float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}[dtype]
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(_half_tensor(numpy_helper.to_array(init), init.name, target))
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                    a.t.CopyFrom(_half_tensor(numpy_helper.to_array(a.t), a.t.name, target))
        if node.op_type == "Cast" and _attr(node, "to", 0) == TensorProto.FLOAT:
            for a in node.attribute:
                if a.name == "to":
                    a.i = target
    cast_in, cast_out = [], []
    for value in graph.input:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            half = f"{value.name}__half"
            for node in graph.node:
                node.input[:] = [half if i == value.name else i for i in node.input]
            cast_in.append(helper.make_node("Cast", [value.name], [half], to=target, name=f"{value.name}_to_half"))
    for value in graph.output:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            half = f"{value.name}__half"
            for node in graph.node:
                node.output[:] = [half if o == value.name else o for o in node.output]
            cast_out.append(helper.make_node("Cast", [half], [value.name], to=TensorProto.FLOAT,
                                             name=f"{value.name}_to_float"))  # fmt: skip
    nodes = [*cast_in, *graph.node, *cast_out]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return model


def _half_tensor(values: np.ndarray, name: str, target: int) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    if target == TensorProto.FLOAT16:
        return numpy_helper.from_array(values.astype(np.float16), name)
    bits = values.astype(np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
    tensor = helper.make_tensor(name, TensorProto.BFLOAT16, values.shape, rounded.tobytes(), raw=True)
    return tensor
