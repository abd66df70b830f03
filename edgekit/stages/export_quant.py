"""Stage: a quantized model exported as QCDQ ONNX and QONNX, each executed and compared with brevitas.

* QCDQ (QuantizeLinear / Clip / DequantizeLinear), dynamic batch: what TensorRT and
  ONNX Runtime consume.
* QONNX (``Quant`` nodes), as brevitas writes it, and a cleaned copy for hls4ml and
  FINN: qonnx cleanup, channels-last with a channels-last input, Gemm -> MatMul.

Each graph is checked (onnx checker or qonnx shape inference) and run by qonnx's
executor on the golden inputs; with power-of-two scales any difference from
brevitas' forward is a bug in the export chain and fails the stage.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from edgekit.core.artifacts import ExportedGraph, FloatModel, QuantExport, QuantizedModel
from edgekit.core.config import ExportSettings
from edgekit.core.errors import ToolchainError
from edgekit.core.metrics import max_abs_diff
from edgekit.core.progress import say
from edgekit.model.activation_table import TableSpec, mismatch, table_specs
from edgekit.model.brevitas_model import load_quant_model
from edgekit.model.qonnx_graph import clean_for_fpga, execute_graph

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    # qonnx's executor runs each standard node as a one-node ONNX Runtime model stamped opset 1, and
    # ONNX Runtime warns about that for every node; the results are compared with brevitas below.
    import onnxruntime
    from brevitas.export import export_onnx_qcdq, export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    onnxruntime.set_default_logger_severity(3)

__all__ = ["QUANT_EXPORTER", "export_quantized"]

INPUT_NAME, OUTPUT_NAME = "input", "logits"
QUANT_EXPORTER = "brevitas export_onnx_qcdq / export_qonnx (TorchScript, dynamo=False), qonnx cleanup"
QCDQ_MAX_BITS = 8
CHECK_SAMPLES = 4096  # enough for the ">= 1000 held-out samples" exactness claim, quick in qonnx's executor


def _quiet_export(fn: Any, *args: Any, **kwargs: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            fn(*args, **kwargs)
        finally:
            logging.disable(level)


def export_quantized(
    quantized: QuantizedModel,
    quant_root: Path,
    float_model: FloatModel,
    float_root: Path,
    cfg: ExportSettings,
    out_dir: Path,
) -> QuantExport:
    model: nn.Module = load_quant_model(quantized, quant_root, float_model, float_root)
    example = torch.zeros((1, *float_model.input_shape), dtype=torch.float32)
    golden = np.load(float_root / float_model.golden_inputs)[:CHECK_SAMPLES]
    reference = np.load(quant_root / quantized.golden_quant_outputs)[:CHECK_SAMPLES]
    spatial = len(float_model.input_shape) > 1
    # QCDQ carries 8-bit integers at most (QuantizeLinear's int8/uint8): wider models export QONNX only,
    # which is what the fixed-point (FPGA) targets compile anyway.
    widest = max(max(lp.weight_bits or 0, lp.activation_bits) for lp in quantized.plan.layers)
    with_qcdq = widest <= QCDQ_MAX_BITS
    if not with_qcdq:
        say(f"  {quantized.family}: {widest}-bit layers have no QCDQ form (at most {QCDQ_MAX_BITS} bits): QONNX only")
    try:
        if with_qcdq:
            _export_qcdq(model, example, out_dir, cfg)
        _quiet_export(export_qonnx, model, example, export_path=str(out_dir / "model.qonnx.onnx"), dynamo=False)
        raw = cleanup_model(ModelWrapper(str(out_dir / "model.qonnx.onnx")))
        clean = clean_for_fpga(out_dir / "model.qonnx.onnx", out_dir / "model.qonnx.clean.onnx", spatial)
    except (RuntimeError, ValueError, onnx.checker.ValidationError) as err:
        raise ToolchainError(
            f"exporting the {quantized.family} quantized model failed: {str(err).splitlines()[0]}",
            hint="a layer may have no QCDQ/QONNX form; the error names the operator",
        ) from err

    if quantized.plan.scale_type == "power_of_two":
        _check_tables(raw)
    channels_last = np.moveaxis(golden, 1, -1) if spatial else golden
    diffs = {"qonnx": _max_diff(execute_graph(raw, golden, "QONNX"), reference)}
    try:
        diffs["qonnx-clean"] = _max_diff(
            execute_graph(clean, np.ascontiguousarray(channels_last), "clean QONNX"), reference
        )
    except ToolchainError as err:
        if quantized.family == "fixed":  # the FPGA targets compile the clean graph
            raise
        # the INT8 targets run the QCDQ graph: the clean one (the FPGA's form) is left out
        (out_dir / "model.qonnx.clean.onnx").unlink(missing_ok=True)
        clean = None
        say(
            f"  note: {quantized.family}: no clean QONNX graph (the FPGA form; no target here needs it): " + err.message
        )
    if with_qcdq:
        qcdq = ModelWrapper(str(out_dir / "model.qcdq.onnx"))
        diffs = {"qcdq": _max_diff(execute_graph(qcdq, golden, "QCDQ"), reference), **diffs}
    if quantized.plan.scale_type == "power_of_two" and any(d != 0.0 for d in diffs.values()):
        raise ToolchainError(
            f"an exported graph of the {quantized.family} model does not compute what brevitas computes "
            f"(max abs difference per format on {len(golden)} samples: {diffs})",
            hint="with power-of-two scales every format must be exact; this is an exporter bug, please report it",
        )
    graphs = (
        *((ExportedGraph("model.qcdq.onnx", "qcdq", INPUT_NAME, OUTPUT_NAME, cfg.opset, QUANT_EXPORTER),)
          if with_qcdq else ()),
        _graph_of(raw, "model.qonnx.onnx", "qonnx", cfg.opset),
        *((_graph_of(clean, "model.qonnx.clean.onnx", "qonnx-clean", cfg.opset),) if clean is not None else ()),
    )  # fmt: skip
    return QuantExport(quantized.family, graphs, diffs, len(golden))


def _ort_function(op: str, x: np.ndarray, constants: tuple[float, ...] = (), **attributes: float) -> np.ndarray:
    """ONNX Runtime's float32 kernel for one unary op, as the QCDQ graph runs it (Dequantize -> op -> Quantize);
    ``constants`` are its further inputs (a Clip's bounds)."""
    names = [f"c{i}" for i in range(len(constants))]
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node(op, ["x", *names], ["y"], **attributes)],  # type: ignore[arg-type]
        "table",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None])],
        [onnx.numpy_helper.from_array(np.array(c, dtype=np.float32), n) for n, c in zip(names, constants, strict=True)],
    )  # fmt: skip
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def _torch_function(spec: TableSpec) -> Callable[[torch.Tensor], torch.Tensor]:
    if spec.function == "LeakyRelu":
        return lambda t: torch.nn.functional.leaky_relu(t, spec.alpha)
    if spec.function == "Clip":
        return lambda t: torch.clamp(t, spec.low, spec.high)
    if spec.function == "HardSigmoid":
        return torch.nn.functional.hardsigmoid
    return {"Sigmoid": torch.sigmoid, "Tanh": torch.tanh}[spec.function]


def _check_tables(model: ModelWrapper) -> None:
    """Every table activation, over all its input codes, in torch's and ONNX Runtime's float32 = edgekit's table.

    Each kernel has a vectorized body and a scalar tail that may differ by an ulp, so both are evaluated
    (the whole code range at once, and one value at a time); a 1-ulp difference flips a rounding only
    when f(x) lies within an ulp of a rounding boundary, which this finds if it happens.
    """
    try:
        specs = table_specs(model)
    except ValueError as err:
        raise ToolchainError(f"a table activation has an unexpected QONNX form: {err}") from err
    for name, spec in specs.items():
        x = spec.inputs()
        fn = _torch_function(spec)
        attributes = {"alpha": spec.alpha} if spec.function in ("LeakyRelu", "HardSigmoid") else {}
        constants = (spec.low, spec.high) if spec.function == "Clip" else ()
        ort = [_ort_function(spec.function, x[i : i + 1], constants, **attributes) for i in range(len(x))]
        evaluations = {
            "torch (vectorized)": fn(torch.from_numpy(x)).numpy(),
            "torch (scalar)": np.array([float(fn(torch.tensor(v))) for v in x]),
            "onnxruntime (vectorized)": _ort_function(spec.function, x, constants, **attributes),
            "onnxruntime (scalar)": np.concatenate(ort),
        }
        for what, y in evaluations.items():
            problem = mismatch(spec, spec.quantize(y), f"{name}: {what}")
            if problem:
                raise ToolchainError(
                    problem,
                    hint="a float32 value within an ulp of a rounding boundary; change that layer's activation bits",
                )


def _export_qcdq(model: nn.Module, example: torch.Tensor, out_dir: Path, cfg: ExportSettings) -> None:
    _quiet_export(
        export_onnx_qcdq,
        model,
        example,
        export_path=str(out_dir / "model.qcdq.onnx"),
        dynamo=False,
        opset_version=cfg.opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
    )
    onnx.checker.check_model(onnx.load(str(out_dir / "model.qcdq.onnx")), full_check=True)


def _graph_of(model: ModelWrapper, path: str, fmt: str, opset: int) -> ExportedGraph:
    return ExportedGraph(path, fmt, model.graph.input[0].name, model.graph.output[0].name, opset, QUANT_EXPORTER)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return max_abs_diff(a, b) if a.shape == b.shape else float("inf")
