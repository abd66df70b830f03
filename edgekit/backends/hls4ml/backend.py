"""hls4ml backend: the only module that imports hls4ml.

Takes the cleaned QONNX export of a fixed-point quantized model, writes an HLS
project for the target part (Vitis or Vivado HLS, clock, io type, strategy,
reuse factor from the profile), builds hls4ml's bit-accurate C++ emulation with
g++ through edgekit's tool runner (log file, timeout, checked exit code), and
runs it in worker processes (:mod:`edgekit.backends.hls4ml.emulator`).

hls4ml reads the precision of every quantized layer from the QONNX ``Quant``
nodes; edgekit sets the one it cannot infer: the input layer, which casts the
float input before the first ``Quant`` node rounds it. hls4ml's default there
(``fixed<16,6>``, truncating) rounds twice and differs from brevitas; edgekit
gives the input port the input quantizer's own type with brevitas' rounding
(``ap_fixed<8,4,AP_RND_CONV,AP_SAT>`` for 8 bits in steps of 2^-4: half to even,
saturating), so the firmware's port is the quantized width and the conversion
of a float into it is the quantizer. A quantizer no such type can express
(several scales, a zero point, another rounding) gets a wide port instead:
enough fraction bits to hold every float32 value that matters for its rounding
(its scale's bits plus 24), saturating.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.base import BackendBase, RunnerBase
from edgekit.backends.hls4ml.emulator import EmulatorPool
from edgekit.backends.hls4ml.estimate import LayerFacts, estimate
from edgekit.backends.native_pool import without_main_script
from edgekit.core import provenance
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph
from edgekit.core.errors import BackendUnavailable, ConfigError, ToolchainError
from edgekit.core.lifetime import worker_pool
from edgekit.core.schema import build, to_plain
from edgekit.core.targets import TargetProfile
from edgekit.core.tools import available_cpus, run_tool
from edgekit.model.activation_table import (
    COMPUTED,
    HARD_SIGMOID_SLOPE,
    HARD_SIGMOID_SLOPE_BITS,
    HLS4ML_CLAMP_NOTE,
    HLS4ML_CLAMPS,
    clip_bounds,
    hls4ml_codes,
    hls4ml_layer_config,
    mismatch,
    table_specs,
)

__all__ = ["Hls4mlBackend", "Hls4mlOptions", "size_problems"]

PROJECT = "myproject"
PROJECT_DIR = "hls4ml_prj"
BUILD_TIMEOUT_S = 900.0
# io_parallel convolutions copy each output position's input window element by element, one C++ statement per
# (output position, kernel position, input channel) of every Conv (hls4ml's generated fill_buffer functions),
# and g++ compiles all of them. Measured on a 2-core x86_64 machine (g++ 12, -O3): the full-size DS-CNN's
# 164,864 copies compiled in 335 s (W8A8) and 376 s (W6A8); the full-size ResNet-8's 494,592 did not finish
# within 900 s. 250,000 keeps a build within BUILD_TIMEOUT_S; io_stream (line buffers) has no such statements.
MAX_WINDOW_COPIES = 250_000
INPUT_INTEGER_BITS = 16


_MODEL_COMPILE = "-c firmware/${PROJECT}.cpp -o ${PROJECT}.o\n"
_BRIDGE_COMPILE = "-c ${PROJECT}_bridge.cpp -o ${PROJECT}_bridge.o\n"


WEIGHTS_HEADER = "edgekit_weights_dir.h"
# WEIGHTS_DIR for hls4ml's load_weights_from_txt, as an expression: the folder of the shared library this code
# is linked into (found with dladdr), plus /weights; hls4ml's own default is the build folder's absolute path.
_WEIGHTS_DIR_CPP = """// Written by edgekit: the emulation library finds firmware/weights beside itself, wherever it is.
#pragma once
#include <dlfcn.h>
#include <string>
static inline std::string edgekit_weights_dir() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void *>(&edgekit_weights_dir), &info) != 0 && info.dli_fname != nullptr) {
        const std::string library(info.dli_fname);
        const std::string::size_type slash = library.rfind('/');
        if (slash != std::string::npos) return library.substr(0, slash) + "/weights";
    }
    return "weights";
}
"""


def portable_config(project: Path, final_project: Path, model_file: str) -> None:
    """Rewrite ``hls4ml_config.yml`` so hls4ml's ``link_existing_project`` (a safe YAML loader) reads it.

    hls4ml 1.3.0 writes the source model itself into the file as a pickled Python object (a qonnx
    ModelWrapper, or the torch module), and the folder it wrote to (edgekit's staging folder) as
    ``OutputDir``. The model becomes the name of its file beside the project (``model_file``), the folder the
    project's final absolute path; any other value YAML cannot write plainly becomes its plain equivalent.
    """
    import yaml

    path = project / "hls4ml_config.yml"
    config = yaml.unsafe_load(path.read_text())  # edgekit's own file, written a moment ago by hls4ml
    for key in ("OnnxModel", "PyTorchModel", "KerasModel"):
        if key in config:
            config[key] = model_file
    config["OutputDir"] = str(final_project)
    path.write_text(yaml.safe_dump(_plain(config), sort_keys=True))


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python numbers and lists, tuples as lists, other objects by name."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return f"<{type(value).__module__}.{type(value).__name__}>"


def _final_folder(out_dir: Path) -> Path:
    """The folder a staged target folder (``.NAME.tmp-XXXX``, see edgekit.core.builddir) is renamed to."""
    name = out_dir.name
    if name.startswith(".") and ".tmp-" in name:
        return out_dir.parent / name[1:].rsplit(".tmp-", 1)[0]
    return out_dir


def _compile_side_by_side(script: str) -> str:
    """build_lib.sh with the model and the bridge compiled at once (the model's g++ takes most of the time);
    a script in another form is returned as it is."""
    if script.count(_MODEL_COMPILE) != 1 or script.count(_BRIDGE_COMPILE) != 1:
        return script
    script = script.replace(
        _MODEL_COMPILE,
        _MODEL_COMPILE.rstrip("\n") + " &\nmodel_compile=$!\ntrap 'kill \"$model_compile\" 2>/dev/null || true' EXIT\n",
    )
    return script.replace(_BRIDGE_COMPILE, _BRIDGE_COMPILE + 'wait "$model_compile"\ntrap - EXIT\n')


@dataclass(frozen=True)
class Hls4mlOptions:
    """``[backend_options]`` of an hls4ml target."""

    emulation_workers: int = field(default=0, metadata={"min": 0})  # 0: one per core
    float_width_bits: int = field(default=18, metadata={"min": 4, "max": 64})  # float path: total bits per type
    build_timeout_s: float = field(default=BUILD_TIMEOUT_S, metadata={"min": 1.0})  # the emulation's g++ build
    max_window_copies: int = field(default=MAX_WINDOW_COPIES, metadata={"min": 1})  # io_parallel only, see above


def _check_distributed_arithmetic(target: TargetProfile) -> None:
    """hls4ml 1.3's ``distributed_arithmetic`` strategy: da4ml writes each layer's constant multiplications."""
    assert target.fpga is not None
    if importlib.util.find_spec("da4ml") is None:
        raise BackendUnavailable(
            f"{target.source}: strategy 'distributed_arithmetic' needs da4ml (hls4ml calls it to write each layer)",
            hint="pip install 'edgekit[rtl]' (da4ml 0.6.0), or use strategy = \"latency\"",
        )
    if target.fpga.reuse_factor != 1:
        raise ConfigError(
            f"{target.source}: strategy 'distributed_arithmetic' builds every multiplication in logic, once: "
            f"reuse_factor must be 1, not {target.fpga.reuse_factor}",
            hint='set reuse_factor = 1, or strategy = "resource" to share multipliers',
        )


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


def size_problems(target: TargetProfile, copies: list[tuple[str, int]]) -> list[str]:
    """Why an io_parallel ``target`` refuses a model of these (convolution, window copies) before building."""
    assert target.fpga is not None
    options = build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
    total = sum(count for _, count in copies)
    if target.fpga.io_type != "io_parallel" or total <= options.max_window_copies:
        return []
    layer, largest = max(copies, key=lambda item: item[1])
    return [
        f"{target.name}: hls4ml's io_parallel convolutions copy every input window element by element, one C++ "
        f"statement per output position, kernel position and input channel, and this model's convolutions make "
        f"{total:,} of them (the most in layer {layer}: {largest:,}); g++ compiles every one, and the target "
        f"builds up to {options.max_window_copies:,} (backend_options.max_window_copies; the default, "
        f"{MAX_WINDOW_COPIES:,}, compiles within the default build limit of {BUILD_TIMEOUT_S:g} s on 2 cores)"
    ]


def _hls4ml() -> Any:
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
    ``_clips_as_attributes``) become relu1, relu6 or hard_tanh."""
    attributes = {a.name: float(a.f) for a in node.attribute}
    bounds = (attributes.get("min"), attributes.get("max"))
    if bounds not in HLS4ML_CLAMPS:
        raise ConfigError(
            f"node {node.name}: hls4ml has no kernel for a clamp to {bounds} ({HLS4ML_CLAMP_NOTE})",
            hint="use one of those bounds, or a CPU target for this model",
        )
    return {"name": node.name, "inputs": input_names[:1], "outputs": list(node.output), **HLS4ML_CLAMPS[bounds]}


def _clips_as_attributes(model: Any) -> None:
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


def _input_precision(model: Any) -> str:
    """ap_fixed type for the input layer: exact for every float32 the input quantizer can round differently."""
    graph = model.graph
    source = graph.input[0].name
    quant = next((n for n in graph.node if n.op_type == "Quant" and n.input[0] == source), None)
    if quant is None:
        raise ConfigError(
            "the clean QONNX graph does not start with the input's Quant node (a node before it, often a transpose "
            "the channels-last conversion could not absorb)",
            hint="start the model with one layer its branches share (a stem convolution), or use the INT8 target",
        )
    port = _quantized_port(model, quant)
    if port is not None:
        return port
    scale = float(np.max(model.get_initializer(quant.input[1])))
    fraction_bits = max(0, -math.floor(math.log2(scale))) + 24
    return f"fixed<{INPUT_INTEGER_BITS + fraction_bits},{INPUT_INTEGER_BITS},TRN,SAT>"


def _quantized_port(model: Any, quant: Any) -> str | None:
    """The input quantizer's own type, rounding like brevitas (half to even, saturating), where one exists.

    With one power-of-two scale, a zero point of 0 and ROUND, the conversion of a float into this type at the
    port is the quantizer itself, so the design's input is the quantized width (``ap_fixed<8,4>`` for an 8-bit
    input with steps of 2^-4) and the ``Quant`` layer after it changes nothing. None: the wide fallback.
    """
    scale = model.get_initializer(quant.input[1])
    zero_point = model.get_initializer(quant.input[2])
    bits = model.get_initializer(quant.input[3])
    attributes = {a.name: a for a in quant.attribute}
    rounding = attributes["rounding_mode"].s.decode() if "rounding_mode" in attributes else "ROUND"
    signed = bool(attributes["signed"].i) if "signed" in attributes else True
    narrow = bool(attributes["narrow"].i) if "narrow" in attributes else False
    if scale is None or zero_point is None or bits is None or np.size(scale) != 1 or np.any(zero_point != 0):
        return None
    exponent = math.log2(float(np.max(scale)))
    width = int(np.max(bits))
    if rounding != "ROUND" or exponent != round(exponent) or width < 2 or (narrow and not signed):
        return None
    integer = width + round(exponent)
    if integer < 1:
        return None
    overflow = "SAT_SYM" if narrow else "SAT"
    return f"{'' if signed else 'u'}fixed<{width},{integer},RND_CONV,{overflow}>"


# Exact while the pooling input's fraction bits plus log2(window) stay within 20 (8-bit activations with up to
# 12 fraction bits and windows up to 256 values); beyond that the exactness gate reports the difference.
AVERAGE_POOL_PRECISION = "fixed<40,20,TRN,WRAP>"


def _table_configs(model: Any) -> dict[str, dict[str, Any]]:
    """Table size and types per sigmoid/tanh layer, each checked entry by entry against edgekit's table.

    hls4ml fills its table from float math on a fixed grid over [-8, 8) (tanh [-4, 4)) and clamps the index:
    with one entry per input step and the output type as table type, entry i is f(x_i) rounded once. Inputs
    outside the grid clamp to its edge, which is exact only if the output saturates there: the check finds it.
    """
    try:
        specs = table_specs(model)
        configs = {name: hls4ml_layer_config(spec) for name, spec in specs.items()}
    except ValueError as err:
        raise ConfigError(f"hls4ml cannot compute this table activation exactly: {err}") from err
    for name, spec in specs.items():
        for codes in hls4ml_codes(spec):
            problem = mismatch(spec, codes, f"{name}: hls4ml's table")
            if problem and spec.function == "HardSigmoid":
                raise ConfigError(
                    f"{problem}: its input step 2**{spec.in_exponent} is no coarser than its output step "
                    f"2**{spec.out_exponent}, so x / 6 + 1/2 lands exactly on rounding ties, which brevitas rounds to "
                    "even and hls4ml's slope (1/6 in fixed point) cannot",
                    hint="it happens when the hard sigmoid's input stays within about +-0.5; use the INT8 target "
                    "(cpu-onnxruntime-int8) or a float target for this model",
                )
            if problem:
                raise ConfigError(
                    problem,
                    hint="hls4ml clamps inputs beyond its table range ([-8, 8) sigmoid, [-4, 4) tanh), which is exact "
                    "only where the output quantizer saturates; use a CPU target for this model",
                )
    return configs


def _set_table_types(hls_model: Any, model: Any) -> None:
    """Give each sigmoid/tanh layer its table type after conversion; check its result type is the table's.

    hls4ml 1.3.0 reads TableSize from the layer config but not the table precision (the layer keeps its
    default fixed<18,8,TRN,WRAP>, which truncates f(x) before the result rounds it again).
    """
    for name, spec in table_specs(model).items():
        layer = hls_model.graph.get(name)
        if layer is None:
            raise ToolchainError(f"hls4ml's model has no layer {name} for the {spec.function} of the QONNX graph")
        result = layer.get_attr("result_t").precision
        wanted = hls_model.config.backend.convert_precision_string(spec.output_type())
        if str(result) != str(wanted):
            raise ToolchainError(
                f"hls4ml gave {name} ({spec.function}) the result type {result}, not its output quantizer's {wanted}"
            )
        if spec.function == "Clip":
            continue  # hls4ml's relu_max and hard_tanh compute in their input's type: nothing rounds before result
        if spec.function == "HardSigmoid":
            slope = layer.get_attr("slope_t").precision
            if (int(slope.width), int(slope.integer), bool(slope.signed)) != (HARD_SIGMOID_SLOPE_BITS, 0, False):
                raise ToolchainError(
                    f"hls4ml gave {name} (HardSigmoid) the slope type {slope}, not ufixed<{HARD_SIGMOID_SLOPE_BITS},0>"
                )
            continue
        if spec.function in COMPUTED:
            param = layer.get_attr("param_t").precision
            wanted_param = hls_model.config.backend.convert_precision_string(spec.alpha_type())
            if str(param) != str(wanted_param):
                raise ToolchainError(
                    f"hls4ml gave {name} ({spec.function}) the slope type {param}, not {wanted_param}, which holds "
                    f"its slope {spec.alpha!r} exactly"
                )
            continue
        layer.get_attr("table_t").precision = result  # already in the backend's type classes


SMALLEST_ACTIVATION_SCALE = 2.0**-24  # an activation quantizer finer than this saw (almost) only zeros


def _check_activation_scales(model: Any) -> None:
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


def _inputs_per_output(model: Any) -> dict[str, int]:
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


def _depthwise_convs(model: Any) -> list[str]:
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


def _check_resize(model: Any) -> None:
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


def _name_reshape_outputs(model: Any) -> None:
    """io_stream: name each Reshape/Flatten output after its node.

    hls4ml 1.3.0's stream repacking looks a Reshape's output type up by the layer's name, and its ONNX
    reader names outputs after the tensors: a reshape to a feature map (or at the output) fails with a
    KeyError. Only names change; hls4ml reads the model from memory, the file keeps its names.
    """
    for node in model.graph.node:
        if node.op_type in ("Reshape", "Flatten") and node.output[0] != node.name:
            model.rename_tensor(node.output[0], node.name)


class HlsEmulatorRunner(RunnerBase):
    clock = "wall clock of the C++ emulation on the host CPU (not FPGA latency: see the estimates)"

    def __init__(self, pool: EmulatorPool, channels_last: bool, n_out: int, description: str) -> None:
        self._pool = pool
        self._channels_last = channels_last
        self._n_out = n_out
        self.description = description

    def run(self, x: np.ndarray) -> np.ndarray:
        if self._channels_last and x.ndim > 2:
            x = np.moveaxis(x, 1, -1)
        out = self._pool.run(x.reshape(len(x), -1))
        return out.astype(np.float32).reshape(len(x), self._n_out)

    def synchronize(self) -> None:
        """Each run returns when the workers have answered."""

    def close(self) -> None:
        self._pool.close()


class Hls4mlBackend(BackendBase):
    name = "hls4ml"
    traces_graph = True  # a tracing copy of the emulation, built in a worker process

    def unavailable_reason(self) -> str | None:
        try:
            _hls4ml()
        except BackendUnavailable as err:
            return f"{err.message}; {err.hint}"
        if shutil.which("g++") is None:
            return "g++ is not on PATH: hls4ml's emulation is C++ (apt-get install g++)"
        return None

    def versions(self) -> dict[str, str]:
        # qonnx and onnx read the quantized graph; torch loads the float model (the float path); g++ builds
        return {
            **provenance.versions(("hls4ml", "qonnx", "onnx", "torch", "numpy")),
            "g++": provenance.tool_version("g++"),
        }

    def check_target(self, target: TargetProfile) -> None:
        build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
        if target.fpga is None:
            raise ConfigError(f"{target.source}: an hls4ml target needs an [fpga] table")
        if target.fpga.strategy == "distributed_arithmetic":
            _check_distributed_arithmetic(target)

    def _config(self, model: Any, target: TargetProfile) -> dict[str, Any]:
        assert target.fpga is not None
        hls4ml = _hls4ml()
        depthwise = _depthwise_convs(model)  # before hls4ml parses the graph, which fails on other groupings
        config: dict[str, Any] = hls4ml.utils.config_from_onnx_model(
            model, granularity="name", backend=target.fpga.hls_backend, default_precision="fixed<16,6>"
        )
        config["Model"]["ReuseFactor"] = target.fpga.reuse_factor
        config["Model"]["Strategy"] = target.fpga.strategy.capitalize()
        for layer in config["LayerName"].values():
            if "ReuseFactor" in layer:
                layer["ReuseFactor"] = target.fpga.reuse_factor
        if target.fpga.strategy == "resource":
            for name, inputs in _inputs_per_output(model).items():
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
        config["LayerName"]["global_in"]["Precision"]["result"] = _input_precision(model)
        for name, table in _table_configs(model).items():
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

    def compile(self, graph: ExportedGraph, graph_path: Path, target: TargetProfile, out_dir: Path) -> CompiledArtifact:
        if graph.format not in ("qonnx-clean", "torch-float"):
            raise ConfigError(
                f"{target.name} compiles a cleaned QONNX graph or a float torch model, not {graph.format}"
            )
        assert target.fpga is not None
        hls4ml = _hls4ml()
        project = out_dir / PROJECT_DIR
        top = graph.top_name or PROJECT  # the project, its top function and files: firmware/<top>.cpp
        common = {
            "output_dir": str(project),
            "project_name": top,
            "backend": target.fpga.hls_backend,
            "io_type": target.fpga.io_type,
            "part": target.fpga.part,
            "clock_period": target.fpga.clock_period_ns,
        }
        try:
            # hls4ml prints every layer it converts; keep that in a log, not in the user's (--json) stdout.
            with (
                warnings.catch_warnings(),
                (out_dir / "hls4ml_convert.log").open("w") as log,
                contextlib.redirect_stdout(log),
            ):
                warnings.simplefilter("ignore")
                if graph.format == "qonnx-clean":
                    hls_model, config, extra = self._from_qonnx(graph_path, target, common)
                else:
                    hls_model, config, extra = self._from_torch(graph_path, target, common)
                hls_model.write()
            model_file = "model.qonnx.onnx" if graph.format == "qonnx-clean" else "model.pt"
            shutil.copyfile(graph_path, project / model_file)
            portable_config(project, (_final_folder(out_dir) / PROJECT_DIR).resolve(), model_file)
        except (ConfigError, ToolchainError):
            raise
        except Exception as err:  # hls4ml raises bare Exceptions for unsupported layers
            raise ToolchainError(
                f"hls4ml could not convert the model for {target.name}: {str(err).splitlines()[0][:300]}",
                hint="a layer hls4ml does not support; the message names it",
            ) from err
        options = build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
        self._build_emulator(project, out_dir / "build_lib.log", options.build_timeout_s)
        library = next(iter(sorted((project / "firmware").glob(f"{top}-*.so"))))
        n_in = int(np.prod(hls_model.get_input_variables()[0].shape))
        n_out = int(np.prod(hls_model.get_output_variables()[0].shape))
        self._smoke_test(library, top, n_in, n_out, out_dir / "build_lib.log")
        if graph.format == "torch-float":
            extra["saturated_logit_fraction"] = self._saturation(
                library, top, graph_path.parent / "calibration_inputs.npy", n_in, n_out, hls_model
            )
        info = {
            "hls4ml": hls4ml.__version__,
            "project": top,
            "path": "QONNX (bit-exact)" if graph.format == "qonnx-clean" else "PyTorch frontend (float)",
            "hls_backend": target.fpga.hls_backend,
            "part": target.fpga.part,
            "clock_period_ns": target.fpga.clock_period_ns,
            "io_type": target.fpga.io_type,
            "strategy": target.fpga.strategy,
            "reuse_factor": target.fpga.reuse_factor,
            "input_precision": _input_type(config),
            "n_inputs": n_in,
            "n_outputs": n_out,
            "precisions": _layer_precisions(hls_model),
            "estimate": to_plain(estimate(_layer_facts(hls_model), target.fpga)),
            **extra,
        }
        return CompiledArtifact(
            target=target.name,
            backend=self.name,
            path=str(library.relative_to(out_dir)),
            input_name=graph.input_name,
            output_name=graph.output_name,
            info=info,
        )

    def _from_qonnx(
        self, path: Path, target: TargetProfile, common: dict[str, Any]
    ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        from qonnx.core.modelwrapper import ModelWrapper

        model = ModelWrapper(str(path))
        _check_activation_scales(model)
        _check_resize(model)
        assert target.fpga is not None
        if target.fpga.io_type == "io_stream":
            _name_reshape_outputs(model)
        _clips_as_attributes(model)
        config = self._config(model, target)
        with _layers_by_tensor_name():
            hls_model = _hls4ml().converters.convert_from_onnx_model(model, hls_config=config, **common)
        _set_table_types(hls_model, model)
        channels_last = len(model.get_tensor_shape(model.graph.input[0].name)) > 2
        return hls_model, config, {"channels_last_input": channels_last}

    def _from_torch(
        self, path: Path, target: TargetProfile, common: dict[str, Any]
    ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """The float path: hls4ml's PyTorch frontend with fixed-point types sized from activation ranges."""
        import json

        from edgekit.core.artifacts import ModelSource
        from edgekit.model.torch_model import load_module

        assert target.fpga is not None
        options = build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
        profile = json.loads((path.parent / "profile.json").read_text())
        model = load_module(build(ModelSource, profile["source"]), path)
        hls4ml = _hls4ml()
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
        chosen = _float_types(config, model, profile, options.float_width_bits)
        with _layers_by_tensor_name():
            hls_model = hls4ml.converters.convert_from_pytorch_model(model, hls_config=config, **common)
        return hls_model, config, {"channels_last_input": False, "range_profile": chosen}

    @staticmethod
    def _saturation(library: Path, top: str, inputs_path: Path, n_in: int, n_out: int, hls_model: Any) -> float:
        """The fraction of emulated logits on calibration data that sit at the output type's limits."""
        result = hls_model.get_output_variables()[0].type.precision
        integer, width = int(result.integer), int(result.width)
        largest = 2.0 ** (integer - 1) - 2.0 ** (integer - width)
        x = np.load(inputs_path)
        pool = EmulatorPool(library, top, n_in, n_out)
        try:
            y = pool.run(x.reshape(len(x), -1))
        finally:
            pool.close()
        return float(np.mean(np.abs(y) >= largest))

    @staticmethod
    def _build_emulator(project: Path, log: Path, timeout_s: float) -> None:
        script = project / "build_lib.sh"
        text = script.read_text()
        absolute = 'WEIGHTS_DIR="\\"${BASEDIR}/firmware/weights\\""'
        if absolute not in text:
            raise ToolchainError(f"{script} is not in the form edgekit knows (hls4ml 1.3.0)", log_path=log)
        # The weights folder found at run time beside the library itself, so the build can move and the
        # library runs from any working directory (edgekit's workers, hls4ml's own predict()).
        (project / "firmware" / WEIGHTS_HEADER).write_text(_WEIGHTS_DIR_CPP)
        found_at_run_time = f'WEIGHTS_DIR=edgekit_weights_dir\\(\\)\nCFLAGS+=" -include firmware/{WEIGHTS_HEADER}"'
        text = text.replace(absolute, found_at_run_time)
        if available_cpus() > 1:
            text = _compile_side_by_side(text)
        script.write_text(text)
        try:
            run_tool(
                ["bash", "build_lib.sh"],
                cwd=project,
                timeout_s=timeout_s,
                log_path=log,
                name="the g++ build of hls4ml's emulation (build_lib.sh)",
            )
        except ToolchainError as err:
            if err.hint or "did not finish" not in err.message:
                raise
            raise ToolchainError(
                err.message,
                hint="give it longer (backend_options.build_timeout_s in a copy of the profile, -t ./my-fpga.toml), "
                "or build with io_stream (fpga-xczu7ev-stream), whose code is smaller",
                log_path=log,
            ) from err

    @staticmethod
    def _smoke_test(library: Path, top: str, n_in: int, n_out: int, log: Path) -> None:
        pool = EmulatorPool(library, top, n_in, n_out, workers=1)
        try:
            pool.run(np.zeros((1, n_in)))
        except ToolchainError as err:
            raise ToolchainError(err.message, hint=err.hint, log_path=log) from err
        finally:
            pool.close()

    def resources(self, artifact: CompiledArtifact) -> tuple[dict[str, float], str] | None:
        """The estimate's totals and latency, for the resource and latency budget gates."""
        est = artifact.info.get("estimate")
        if not est:
            return None
        keys = ("lut", "ff", "dsp", "bram_18k", "latency_ns")
        return {k: float(est[k]) for k in keys}, "estimate"

    def trace(self, graph_path: Path, target: TargetProfile, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        """Every layer's output for ``x`` (a few samples), from a tracing build made in a worker process.

        Only for the bit-exact QONNX path; used to name the first layer that departs from brevitas.
        """
        with worker_pool(1) as pool:
            with without_main_script():
                future = pool.submit(_trace_worker, str(graph_path), to_plain(target), x)
            try:
                return future.result()
            except BrokenProcessPool as err:
                raise ToolchainError("the hls4ml tracing build crashed its worker process") from err

    def load(self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile) -> HlsEmulatorRunner:
        if not artifact_path.is_file():
            raise ToolchainError(f"the emulation library {artifact_path} is missing", hint="re-run edgekit compile")
        options = build(Hls4mlOptions, target.backend_options, target.source, "backend_options")
        info = artifact.info
        top = str(info.get("project", PROJECT))  # builds before top names were hls4ml's default project
        pool = EmulatorPool(artifact_path, top, int(info["n_inputs"]), int(info["n_outputs"]),
                            workers=options.emulation_workers or None)  # fmt: skip
        description = (
            f"hls4ml {info['hls4ml']} C++ emulation ({info['hls_backend']}, {info['io_type']}, "
            f"{info['strategy']}, reuse {info['reuse_factor']}), {pool.workers} worker processes"
        )
        return HlsEmulatorRunner(pool, bool(info["channels_last_input"]), int(info["n_outputs"]), description)


def _layer_precisions(hls_model: Any) -> dict[str, dict[str, str]]:
    """The fixed-point types hls4ml chose per layer, for the report."""
    out: dict[str, dict[str, str]] = {}
    for layer in hls_model.get_layers():
        types = {}
        for name, var in getattr(layer, "types", {}).items():
            precision = getattr(var, "precision", None)
            if precision is not None:
                types[name] = str(precision)
        if types:
            out[layer.name] = types
    return out


def _width(variable: Any) -> int:
    return int(getattr(getattr(getattr(variable, "type", None), "precision", None), "width", 0) or 0)


def _shift_weights(weights: np.ndarray) -> int:
    """How many non-zero weights are plus or minus a power of two (a shift in hardware, no multiplier)."""
    magnitude = np.abs(np.asarray(weights, dtype=np.float64))
    nonzero = magnitude[magnitude > 0]
    return int(np.count_nonzero(np.exp2(np.round(np.log2(nonzero))) == nonzero))


def _adder_depth(code: str) -> int:
    """Adder levels on the longest path of a layer's distributed-arithmetic graph.

    da4ml writes each operation of the graph as one C++ line ending in ``// <latency>``, the operation's depth
    in adder levels (hls4ml asks for it with ``print_latency``); the deepest line is the graph's depth.
    """
    depths = [float(m) for m in re.findall(r"//\s*(\d+(?:\.\d+)?)\s*$", code, flags=re.MULTILINE)]
    return math.ceil(max(depths, default=0.0))


def _layer_facts(hls_model: Any) -> list[LayerFacts]:
    """What the estimate needs from each layer of the hls4ml model graph."""
    facts = []
    for layer in hls_model.get_layers():
        cls = type(layer).__name__.lower()
        weight = getattr(layer, "weights", {}).get("weight")
        da_cost = layer.get_attr("da_kernel_cost")
        if da_cost is not None:
            # distributed arithmetic: the weights live in da4ml's adder graph, not as an array
            conv = "conv" in cls
            n_in, n_out = int(layer.get_attr("n_in") or 0), int(layer.get_attr("n_out") or 0)
            if conv:
                n_out = int(layer.get_attr("n_filt") or 0)
                n_in = int(layer.get_attr("n_chan") or 0) * int(layer.get_attr("filt_height") or 1)
                n_in *= int(layer.get_attr("filt_width") or 1)
            passes = int(layer.get_attr("out_height") or 1) * int(layer.get_attr("out_width") or 1) if conv else 1
            facts.append(
                LayerFacts(
                    name=layer.name,
                    kind="conv" if conv else "dense",
                    nonzero_weights=n_in * n_out,
                    input_bits=_width(layer.get_input_variable()),
                    accumulator_bits=_width(layer.get_output_variable()),
                    outputs_per_pass=n_out,
                    passes=passes,
                    da_lut=float(da_cost),
                    da_depth=_adder_depth(str(layer.get_attr("da_codegen") or "")),
                )
            )
        elif weight is not None and ("dense" in cls or "conv" in cls):
            conv = "conv" in cls
            filters = int(layer.get_attr("n_filt") or 0) if conv else int(layer.get_attr("n_out") or 0)
            passes = int(layer.get_attr("out_height") or 1) * int(layer.get_attr("out_width") or 1) if conv else 1
            facts.append(
                LayerFacts(
                    name=layer.name,
                    kind="conv" if conv else "dense",
                    weights=int(weight.data.size),
                    nonzero_weights=int(np.count_nonzero(weight.data)),
                    weight_bits=_width(weight),
                    input_bits=_width(layer.get_input_variable()),
                    accumulator_bits=_width(layer.get_output_variable()),
                    outputs_per_pass=filters,
                    passes=passes,
                    reuse_factor=int(layer.get_attr("reuse_factor") or 1),
                    shift_weights=_shift_weights(weight.data),
                )
            )
        elif "activation" in cls or "relu" in cls:
            facts.append(LayerFacts(layer.name, "activation"))
        elif "pool" in cls:
            facts.append(LayerFacts(layer.name, "pooling"))
    return facts


def _fixed(max_abs: float, width: int, headroom: int) -> str:
    """A rounding, saturating signed type whose integer bits hold ``max_abs`` with ``headroom`` doubling(s) spare."""
    integer = max(1, math.ceil(math.log2(max(max_abs, 2.0**-8))) + 1 + headroom)
    return f"fixed<{width},{min(integer, width)},RND,SAT>"


def _float_types(config: dict[str, Any], model: Any, profile: dict[str, Any], width: int) -> dict[str, dict[str, str]]:
    """Set result, weight, bias and accumulator types per layer from measured ranges; returns what was set.

    hls4ml names its layers after the torch.fx nodes (``encoder_0`` runs module ``encoder.0``, ``relu_1`` is
    the second ``F.relu``), which is how the profile recorded the ranges; its first layer is the input,
    whatever the ``forward`` argument is called.
    """
    modules = dict(model.named_modules())
    ranges: dict[str, float] = profile["ranges"]
    targets: dict[str, str] = profile.get("modules", {})
    input_layer = next(iter(config["LayerName"]))
    chosen: dict[str, dict[str, str]] = {}
    for name, layer in config["LayerName"].items():
        precision = layer.setdefault("Precision", {})
        key = "input" if name == input_layer else name
        if key in ranges:
            precision["result"] = _fixed(ranges[key], width, headroom=1)
            if precision.get("accum") == "auto":  # pooling sums before it divides
                precision["accum"] = _fixed(ranges[key], width + 14, headroom=2)
        module = modules.get(targets.get(name, name))
        weight = getattr(module, "weight", None)
        if weight is not None and "weight" in precision:
            precision["weight"] = _fixed(float(weight.detach().abs().max()), width, headroom=0)
            bias = getattr(module, "bias", None)
            if bias is not None:
                precision["bias"] = _fixed(float(bias.detach().abs().max()), width, headroom=0)
            precision["accum"] = _fixed(ranges.get(name, 1.0), width + 14, headroom=2)
        chosen[name] = {k: str(v) for k, v in precision.items() if k != "table"}
    return chosen


def _input_type(config: dict[str, Any]) -> str:
    """The input layer's type: hls4ml's first layer (``global_in`` from QONNX, the forward argument from torch)."""
    layer: dict[str, Any] = next(iter(config["LayerName"].values()), {})
    return str(layer.get("Precision", {}).get("result", ""))


def _trace_worker(graph_path: str, target_plain: dict[str, Any], x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """In a worker process: convert again with tracing on every layer, build, and trace ``x``."""
    from qonnx.core.modelwrapper import ModelWrapper

    target = build(TargetProfile, target_plain)
    assert target.fpga is not None
    hls4ml = _hls4ml()
    model = ModelWrapper(graph_path)
    if target.fpga.io_type == "io_stream":
        _name_reshape_outputs(model)
    _clips_as_attributes(model)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = Hls4mlBackend()._config(model, target)
        for layer in config["LayerName"].values():
            layer["Trace"] = True
        hls_model = hls4ml.converters.convert_from_onnx_model(
            model, output_dir=tmp, project_name=PROJECT, hls_config=config, backend=target.fpga.hls_backend,
            io_type=target.fpga.io_type, part=target.fpga.part, clock_period=target.fpga.clock_period_ns,
        )  # fmt: skip
        _set_table_types(hls_model, model)
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
