"""hls4ml's conversion of a model into an HLS model: the QONNX (bit-exact) path, the float PyTorch path,
and a tracing conversion for naming the first layer that departs from brevitas.

Also what edgekit adds to hls4ml 1.3.0 while it converts: ONNX handlers for Clip and HardSigmoid, which its
ONNX reader lacks, and a lookup that lets its distributed-arithmetic pass find a layer's producer on graphs
from ONNX. The config (:func:`qonnx_config`) takes the target's strategy and reuse factor and the types of
:mod:`edgekit.backends.hls4ml.precision`.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.hls4ml.graph_prep import (
    check_activation_scales,
    check_resize,
    clips_as_attributes,
    depthwise_convs,
    inputs_per_output,
    name_reshape_outputs,
)
from edgekit.backends.hls4ml.options import Hls4mlOptions
from edgekit.backends.hls4ml.precision import (
    AVERAGE_POOL_PRECISION,
    float_types,
    input_precision,
    set_table_types,
    table_configs,
)
from edgekit.backends.hls4ml.project import PROJECT
from edgekit.core.errors import BackendUnavailable, ConfigError
from edgekit.core.schema import build
from edgekit.core.targets import TargetProfile
from edgekit.model.activation_table import HARD_SIGMOID_SLOPE, HARD_SIGMOID_SLOPE_BITS, HLS4ML_CLAMP_NOTE, HLS4ML_CLAMPS

__all__ = ["from_qonnx", "from_torch", "import_hls4ml", "qonnx_config", "trace_worker"]


def import_hls4ml() -> Any:
    """hls4ml, with edgekit's ONNX handlers registered; BackendUnavailable where it is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import hls4ml
    except ImportError as err:
        raise BackendUnavailable("hls4ml is not installed", hint="pip install 'edgekit[fpga]' (hls4ml 1.3.0)") from err
    from hls4ml.converters.onnx_to_hls import get_supported_onnx_layers, register_onnx_layer_handler

    if "Clip" not in get_supported_onnx_layers():
        register_onnx_layer_handler("Clip", _parse_clip)
    if "HardSigmoid" not in get_supported_onnx_layers():  # hls4ml 1.3.0's ONNX reader has none
        register_onnx_layer_handler("HardSigmoid", _parse_hard_sigmoid)
    return hls4ml


def _parse_hard_sigmoid(node: Any, input_names: list[str], input_shapes: Any, graph: Any) -> dict[str, Any]:
    """torch's hard sigmoid (checked by ``table_specs``) as hls4ml's hard_sigmoid: slope * x + shift, clipped to
    [0, 1], with the slope 1/6 rounded to HARD_SIGMOID_SLOPE_BITS fraction bits, in a type that holds it exactly."""
    from hls4ml.model.types import FixedPrecisionType

    return {
        "name": node.name,
        "class_name": "HardActivation",
        "activation": "hard_sigmoid",
        "inputs": input_names[:1],
        "outputs": list(node.output),
        "slope": float(HARD_SIGMOID_SLOPE),  # dyadic: its decimal form reads back as the same value in C++
        "shift": 0.5,
        "slope_prec": FixedPrecisionType(width=HARD_SIGMOID_SLOPE_BITS, integer=0, signed=False),
    }


def _parse_clip(node: Any, input_names: list[str], input_shapes: Any, graph: Any) -> dict[str, Any]:
    """hls4ml's ONNX reader has no Clip: edgekit's clamps with bounds it has a kernel for (attributes, set by
    ``clips_as_attributes``) become relu1, relu6 or hard_tanh."""
    attributes = {a.name: float(a.f) for a in node.attribute}
    bounds = (attributes.get("min"), attributes.get("max"))
    if bounds not in HLS4ML_CLAMPS:
        raise ConfigError(
            f"node {node.name}: hls4ml has no kernel for a clamp to {bounds} ({HLS4ML_CLAMP_NOTE})",
            hint="use one of those bounds, or a CPU target for this model",
        )
    return {"name": node.name, "inputs": input_names[:1], "outputs": list(node.output), **HLS4ML_CLAMPS[bounds]}


@contextlib.contextmanager
def _layers_by_tensor_name() -> Iterator[None]:
    """Let hls4ml 1.3's distributed-arithmetic pass find a layer's producer on graphs from ONNX.

    Its ``get_input_layers`` looks each input up as a layer name, but a layer converted from ONNX names its
    inputs by tensor (``Quant_0_out0``, made by layer ``Quant_0_act``), so the pass fails an assertion on
    every QONNX model. While hls4ml converts, the pass resolves a tensor name to the layer that writes it
    and falls back to hls4ml's own lookup; nothing else changes.
    """
    import hls4ml.backends.vivado.passes.distributed_arithmetic as passes

    original = passes.get_input_layers

    def producers(layer: Any) -> list[Any]:
        graph = layer.model.graph
        found = []
        for name in layer.inputs:
            writers = [graph[name]] if name in graph else [node for node in graph.values() if name in node.outputs]
            if not writers:
                return list(original(layer))
            found.append(writers[0])
        return found

    passes.get_input_layers = producers
    try:
        yield
    finally:
        passes.get_input_layers = original


def qonnx_config(model: Any, target: TargetProfile) -> dict[str, Any]:
    """hls4ml's per-layer config for a QONNX model on ``target``, with edgekit's strategies and types."""
    assert target.fpga is not None
    hls4ml = import_hls4ml()
    depthwise = depthwise_convs(model)  # before hls4ml parses the graph, which fails on other groupings
    config: dict[str, Any] = hls4ml.utils.config_from_onnx_model(
        model, granularity="name", backend=target.fpga.hls_backend, default_precision="fixed<16,6>"
    )
    config["Model"]["ReuseFactor"] = target.fpga.reuse_factor
    config["Model"]["Strategy"] = target.fpga.strategy.capitalize()
    for layer in config["LayerName"].values():
        if "ReuseFactor" in layer:
            layer["ReuseFactor"] = target.fpga.reuse_factor
    if target.fpga.strategy == "resource":
        for name, inputs in inputs_per_output(model).items():
            layer = config["LayerName"].get(name, {})
            if layer.get("ReuseFactor", 0) > inputs:
                # hls4ml 1.3.0's resource kernel for a reuse factor above the layer's inputs does not compile
                # (its code names a template DenseResource_rf_gt_nin that nnet_utils spells in lower case);
                # reusing each multiplier once per input shares as much as that layer can.
                layer["ReuseFactor"] = inputs
    for name in depthwise:
        # hls4ml 1.3.0's resource strategy breaks depthwise layers: io_stream gets weights transposed as if
        # for a Conv (DepthwiseConv subclasses it, so vivado:apply_resource_strategy moves the filter axis
        # first) and computes wrong numbers; io_parallel fails an assertion. The latency kernel is exact
        # and still shares multipliers over the reuse factor.
        config["LayerName"][name]["Strategy"] = "Latency"
    config["LayerName"]["global_in"]["Precision"]["result"] = input_precision(model)
    for name, table in table_configs(model).items():
        layer = config["LayerName"][name]
        if "TableSize" in table:
            layer["TableSize"] = table["TableSize"]
        layer.setdefault("Precision", {}).update(table["Precision"])
    for node in model.graph.node:
        if node.op_type == "AveragePool" and node.name in config["LayerName"]:
            # hls4ml gives a pooling its input's type, rounding the mean before the re-quantizer that
            # follows rounds it again; the mean over a power-of-two window is exact in this wide type.
            config["LayerName"][node.name].setdefault("Precision", {})["result"] = AVERAGE_POOL_PRECISION
    return config


def from_qonnx(path: Path, target: TargetProfile, common: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The bit-exact path: the cleaned QONNX graph, checked and prepared, through hls4ml's ONNX reader."""
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(path))
    check_activation_scales(model)
    check_resize(model)
    assert target.fpga is not None
    if target.fpga.io_type == "io_stream":
        name_reshape_outputs(model)
    clips_as_attributes(model)
    config = qonnx_config(model, target)
    with _layers_by_tensor_name():
        hls_model = import_hls4ml().converters.convert_from_onnx_model(model, hls_config=config, **common)
    set_table_types(hls_model, model)
    channels_last = len(model.get_tensor_shape(model.graph.input[0].name)) > 2
    return hls_model, config, {"channels_last_input": channels_last}


def from_torch(path: Path, target: TargetProfile, common: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The float path: hls4ml's PyTorch frontend with fixed-point types sized from activation ranges."""
    import json

    from edgekit.core.artifacts import ModelSource
    from edgekit.model.torch_model import load_module

    assert target.fpga is not None
    options = build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
    profile = json.loads((path.parent / "profile.json").read_text())
    model = load_module(build(ModelSource, profile["source"]), path)
    hls4ml = import_hls4ml()
    config: dict[str, Any] = hls4ml.utils.config_from_pytorch_model(
        model,
        input_shape=tuple(profile["input_shape"]),
        granularity="name",
        backend=target.fpga.hls_backend,
        default_precision="fixed<16,6>",
        channels_last_conversion="full",
    )
    config["Model"]["ReuseFactor"] = target.fpga.reuse_factor
    config["Model"]["Strategy"] = target.fpga.strategy.capitalize()
    chosen = float_types(config, model, profile, options.float_width_bits)
    with _layers_by_tensor_name():
        hls_model = hls4ml.converters.convert_from_pytorch_model(model, hls_config=config, **common)
    return hls_model, config, {"channels_last_input": False, "range_profile": chosen}


def trace_worker(graph_path: str, target_plain: dict[str, Any], x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """In a worker process: convert again with tracing on every layer, build, and trace ``x``."""
    from qonnx.core.modelwrapper import ModelWrapper

    target = build(TargetProfile, target_plain)
    assert target.fpga is not None
    hls4ml = import_hls4ml()
    model = ModelWrapper(graph_path)
    if target.fpga.io_type == "io_stream":
        name_reshape_outputs(model)
    clips_as_attributes(model)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = qonnx_config(model, target)
        for layer in config["LayerName"].values():
            layer["Trace"] = True
        hls_model = hls4ml.converters.convert_from_onnx_model(
            model, output_dir=tmp, project_name=PROJECT, hls_config=config, backend=target.fpga.hls_backend,
            io_type=target.fpga.io_type, part=target.fpga.part, clock_period=target.fpga.clock_period_ns,
        )  # fmt: skip
        set_table_types(hls_model, model)
        _, traces = hls_model.trace(np.ascontiguousarray(x))
        layers = [(layer.name, type(layer).__name__.lower()) for layer in hls_model.get_layers()]
    found: list[tuple[str, str, np.ndarray]] = []
    for name, cls in layers:
        if name not in traces:
            continue
        if "dense" in cls or "conv" in cls:
            kind = "weighted"
        elif name.lower().startswith("relu"):
            kind = "relu"
        elif name.lower().startswith("quant") and not any(k == "input" for _, k, _ in found):
            kind = "input"
        else:
            continue
        values = np.asarray(traces[name])
        found.append((name, kind, values.reshape(len(values), -1)))
    return found
