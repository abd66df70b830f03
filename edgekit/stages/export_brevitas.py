"""A model of brevitas layers, taken as the quantized model it is: exported as QONNX for the FPGA targets.

Its quantizers are its own (edgekit builds no twin): it is trained as it is (quantization-aware, since its
layers quantize in the forward), exported with brevitas' ``export_qonnx``, cleaned for hls4ml and the RTL path,
and both graphs are run by qonnx's executor and compared with the model's own forward, which is the reference
every FPGA target is held exact to. Before any work, an export of the untrained model says whether fixed point
can compute it exactly (power-of-two scales, zero points 0, ``ROUND``, quantized biases).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.core.artifacts import ExportedGraph, FloatModel, ModelSource
from edgekit.core.errors import ToolchainError
from edgekit.model.torch_model import instantiate, load_float_model

__all__ = ["EXPORTER", "export_brevitas_qcdq", "export_brevitas_qonnx", "untrained_quant_problems"]

EXPORTER = "brevitas export_qonnx (TorchScript, dynamo=False) of the model's own quantizers, qonnx cleanup"
RAW, CLEAN, QCDQ = "model.qonnx.onnx", "model.qonnx.clean.onnx", "model.qcdq.onnx"
CHECK_SAMPLES = 2048


def _export(model: Any, input_shape: tuple[int, ...], path: Path, qcdq: bool = False) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from brevitas.export import export_onnx_qcdq, export_qonnx

        level = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            example = torch.zeros((1, *input_shape))
            if qcdq:  # dynamic batch: what ONNX Runtime (and TensorRT) run
                axes = {"input": {0: "batch"}, "output": {0: "batch"}}
                export_onnx_qcdq(model.eval(), example, export_path=str(path), dynamo=False, input_names=["input"],
                                 output_names=["output"], dynamic_axes=axes)  # fmt: skip
            else:
                export_qonnx(model.eval(), example, export_path=str(path), dynamo=False)
        except Exception as err:  # brevitas and the TorchScript exporter raise many types
            raise ToolchainError(
                f"brevitas could not export the model as QONNX: {type(err).__name__}: {str(err).splitlines()[0][:300]}",
                hint="a layer or quantizer without a QONNX form; the error names it",
            ) from err
        finally:
            logging.disable(level)


QCDQ_MAX_BITS = 8  # QuantizeLinear's int8 / uint8


def untrained_quant_problems(source: ModelSource, input_shape: tuple[int, ...], int8: bool) -> tuple[str, ...]:
    """What the targets cannot compute exactly in this model's quantizers, from an export of it untrained.

    The FPGA targets need fixed point (power-of-two scales, zero points 0, ``ROUND``, quantized biases); an
    INT8 target also needs every quantizer at most 8 bits wide (``int8``).
    """
    import onnx
    from onnx import numpy_helper

    from edgekit.core.fixed_formats import inexact_quant_nodes

    model = instantiate(source)
    try:
        with torch.no_grad():  # brevitas sizes runtime-statistics scales on a first forward
            model.train()(torch.randn((8, *input_shape)))
    except Exception as err:  # the user's forward, on inputs of the recipe's shape
        from edgekit.model.zoo import user_error

        raise user_error(err, f"the model's forward on inputs of shape {input_shape} (recipe input_shape)") from err
    with tempfile.TemporaryDirectory(prefix="edgekit-brevitas-") as folder:
        path = Path(folder) / RAW
        _export(model, input_shape, path)
        graph = onnx.load(str(path)).graph
    problems = list(inexact_quant_nodes(graph))
    if int8:
        constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        biases = {n.input[2] for n in graph.node if n.op_type in ("Gemm", "Conv") and len(n.input) > 2}
        for node in graph.node:  # a bias is an int32 in QCDQ: only weights and activations are held to 8 bits
            if node.op_type != "Quant" or len(node.input) < 4 or node.output[0] in biases:
                continue
            width = constants.get(node.input[3])
            if width is not None and float(np.max(width)) > QCDQ_MAX_BITS:
                problems.append(f"{node.name}: {int(np.max(width))} bits (an INT8 target takes at most 8)")
    return tuple(problems)


def export_brevitas_qcdq(model: FloatModel, float_root: Path, out_dir: Path) -> ExportedGraph:
    """The trained brevitas model as QCDQ ONNX (dynamic batch), checked against the model's own forward."""
    from edgekit.model.qonnx_graph import ModelWrapper, execute_graph

    module = load_float_model(model, float_root)
    _export(module, tuple(model.input_shape), out_dir / QCDQ, qcdq=True)
    golden = np.load(float_root / model.golden_inputs)[:CHECK_SAMPLES]
    expected = np.load(float_root / model.golden_float_outputs)[:CHECK_SAMPLES]
    _same(execute_graph(ModelWrapper(str(out_dir / QCDQ)), golden, "QCDQ"), expected, "QCDQ", len(golden))
    return ExportedGraph(path=QCDQ, format="qcdq", input_name="input", output_name="output", opset=0, exporter=EXPORTER)


def _same(got: np.ndarray, expected: np.ndarray, what: str, n: int) -> None:
    if got.shape != expected.shape or float(np.abs(got - expected).max()) != 0.0:
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
        raise ToolchainError(
            f"the exported {what} graph does not compute what the brevitas model computes (max abs "
            f"difference {diff:.3g} on {n} held-out samples)",
            hint="with power-of-two scales the export is exact for edgekit's own models; a quantizer of this "
            "model exports differently from how it runs (please report it with the model)",
        )


def export_brevitas_qonnx(model: FloatModel, float_root: Path, out_dir: Path) -> ExportedGraph:
    """The trained brevitas model as QONNX and its clean copy, both checked against the model's own forward."""
    from edgekit.model.qonnx_graph import ModelWrapper, clean_for_fpga, cleanup_model, execute_graph

    module = load_float_model(model, float_root)
    spatial = len(model.input_shape) > 1
    _export(module, tuple(model.input_shape), out_dir / RAW)
    raw = cleanup_model(ModelWrapper(str(out_dir / RAW)))
    clean = clean_for_fpga(out_dir / RAW, out_dir / CLEAN, spatial)
    golden = np.load(float_root / model.golden_inputs)[:CHECK_SAMPLES]
    expected = np.load(float_root / model.golden_float_outputs)[:CHECK_SAMPLES]
    layout = np.ascontiguousarray(np.moveaxis(golden, 1, -1)) if spatial else golden
    for graph, x, what in ((raw, golden, "QONNX"), (clean, layout, "clean QONNX")):
        _same(execute_graph(graph, x, what), expected, what, len(golden))
    return ExportedGraph(
        path=CLEAN,
        format="qonnx-clean",
        input_name=clean.graph.input[0].name,
        output_name=clean.graph.output[0].name,
        opset=int(next((o.version for o in clean.model.opset_import if o.domain in ("", "ai.onnx")), 0)),
        exporter=EXPORTER,
    )
