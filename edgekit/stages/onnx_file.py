"""An ONNX file as the model: ``edgekit compile model.onnx --recipe R`` (or ``--data FILE``).

The file is taken as it is: no training, no re-export. Its reference is onnxruntime's run of the file itself
on the held-out inputs (the golden vectors), and every target that compiles from a float ONNX graph is built
from it and validated against that run. A batch axis fixed at 1 (common in files exported for one sample at a
time) is made dynamic when the graph then still runs on batches, and refused with the reason when it does not.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.artifacts import ExportedGraph, FloatModel, ModelSource
from edgekit.core.errors import InputError, ToolchainError
from edgekit.core.fixed_formats import inexact_quant_nodes
from edgekit.core.jsonio import write_json
from edgekit.core.metrics import task_metric
from edgekit.core.progress import say
from edgekit.core.runner import RunnerBase
from edgekit.model.data import Dataset
from edgekit.model.zoo import ModelSpec

__all__ = [
    "OnnxFile",
    "OnnxFileRunner",
    "check_batches",
    "export_from_file",
    "inspect_file",
    "reference_from_file",
]

MODEL_FILE = "model.onnx"
CLEAN_FILE = "model.qonnx.clean.onnx"
CLEAN_CHECK_SAMPLES = 2048
BATCH = "batch"


@dataclass(frozen=True)
class OnnxFile:
    """What edgekit reads off an ONNX file before any work."""

    path: str
    sha256: str
    input_name: str
    output_name: str
    input_shape: tuple[int, ...]  # one sample's, without the batch axis
    opset: int
    n_parameters: int
    quant_nodes: int  # QONNX Quant / BipolarQuant nodes
    qdq_nodes: int  # QuantizeLinear / DequantizeLinear
    # Quant nodes the FPGA targets cannot compute exactly: "name: why" (a float scale, a zero point, a rounding)
    inexact_quant: tuple[str, ...] = ()


def _load(path: Path) -> Any:
    import onnx

    if not path.is_file():
        raise InputError(f"ONNX file {path} does not exist", hint=f"relative paths are taken from {Path.cwd()}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises DecodeError, ValidationError and others for a file that is not ONNX
        raise InputError(
            f"{path} is not a valid ONNX model: {type(err).__name__}: {str(err).strip().splitlines()[0][:200]}",
            hint="check that the file is complete (not truncated) and was written by an ONNX exporter",
        ) from err
    return model


def _dims(value_info: Any) -> list[int | str]:
    return [
        d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in value_info.type.tensor_type.shape.dim
    ]


def inspect_file(path: Path) -> OnnxFile:
    """The file's one input and output, its sample shape and what kind of graph it is (refused: several inputs)."""
    model = _load(path)
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InputError(
            f"{path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); edgekit compiles models with one",
            hint="export the model with one input tensor (stack the features), or wrap it",
        )
    dims = _dims(inputs[0])
    if len(dims) < 2 or any(not isinstance(d, int) or d < 1 for d in dims[1:]):
        raise InputError(
            f"{path}: input {inputs[0].name!r} has shape {dims}; edgekit needs a batch axis and fixed sample sizes",
            hint="export with a shape like (batch, 16) or (batch, 1, 28, 28)",
        )
    if len(graph.output) > 1:
        say(f"  note: {path.name} has {len(graph.output)} outputs; edgekit validates the first, {graph.output[0].name}")
    ops = [n.op_type for n in graph.node]
    inexact = inexact_quant_nodes(graph)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    n_parameters = int(sum(int(np.prod(i.dims)) for i in graph.initializer))
    return OnnxFile(
        path=str(path.resolve()),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        input_name=inputs[0].name,
        output_name=graph.output[0].name,
        input_shape=tuple(int(d) for d in dims[1:]),
        opset=int(opset),
        n_parameters=n_parameters,
        quant_nodes=sum(op in ("Quant", "BipolarQuant", "Trunc") for op in ops),
        qdq_nodes=sum(op in ("QuantizeLinear", "DequantizeLinear") for op in ops),
        inexact_quant=inexact,
    )


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # errors reach the user as one message, not onnxruntime's log lines
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for operators it lacks
        raise InputError(
            f"onnxruntime cannot run {path}: {str(err).strip().splitlines()[0][:300]}",
            hint="the file uses an operator or type onnxruntime's CPU provider lacks; it is the reference, so it "
            "must run there",
        ) from err


def _run(session: Any, x: np.ndarray, batch: int) -> np.ndarray:
    name = session.get_inputs()[0].name
    try:
        parts = [session.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    except Exception as err:  # onnxruntime's Fail, InvalidArgument, ... for a graph that cannot take these inputs
        raise InputError(
            f"onnxruntime could not run the file on {min(batch, len(x))} sample(s) of shape {x.shape[1:]}: "
            f"{str(err).strip().splitlines()[0][:300]}",
            hint="check that the data fits the file's input (shape, dtype float32)",
        ) from err
    return np.concatenate(parts).astype(np.float32)


def _with_dynamic_batch(source: Path, dest: Path, sample: np.ndarray) -> None:
    """``source`` copied to ``dest`` with a dynamic batch axis; checked by running a batch of two."""
    import onnx

    model = _load(source)
    fixed = [v for v in (*model.graph.input, *model.graph.output) if v.type.tensor_type.shape.dim[:1]]
    changed = False
    for value in fixed:
        first = value.type.tensor_type.shape.dim[0]
        if not first.dim_param:
            first.ClearField("dim_value")
            first.dim_param = BATCH
            changed = True
    if not changed:
        shutil.copyfile(source, dest)
        return
    onnx.save(model, str(dest))
    try:
        batched = _run(_session(dest), sample[:2], 2)
        single = np.concatenate([_run(_session(dest), sample[i : i + 1], 1) for i in range(2)])
        if batched.shape != single.shape:
            raise ValueError(f"a batch of two gave shape {batched.shape}, two single samples {single.shape}")
    except (InputError, ValueError) as err:
        why = err.message if isinstance(err, InputError) else str(err)
        raise InputError(
            f"{source} has a batch size fixed at 1 and does not run on batches once it is made dynamic: {why}",
            hint="re-export it with a dynamic batch axis (torch.onnx.export(..., dynamic_axes={'input': {0: "
            "'batch'}}), or tf2onnx without a fixed batch); a Reshape to a fixed batch is the usual cause",
        ) from err


def check_batches(path: Path, input_shape: tuple[int, ...], folder: Path) -> None:
    """Before any work: the file runs on a batch (its batch axis made dynamic where it was fixed)."""
    _with_dynamic_batch(path, folder / MODEL_FILE, np.zeros((2, *input_shape), np.float32))


def reference_from_file(spec: ModelSpec, source: ModelSource, data: Dataset, out_dir: Path) -> FloatModel:
    """The file (batch axis dynamic), its onnxruntime outputs on the held-out inputs, and the golden vectors."""
    started = time.perf_counter()
    info = inspect_file(Path(source.location))
    if info.quant_nodes:  # QONNX: qonnx's executor runs Quant nodes (onnxruntime has no such operator)
        shutil.copyfile(source.location, out_dir / MODEL_FILE)
        outputs = _qonnx_run(out_dir / MODEL_FILE, data.x_test)
    else:
        _with_dynamic_batch(Path(source.location), out_dir / MODEL_FILE, data.x_test)
        outputs = _run(_session(out_dir / MODEL_FILE), data.x_test, 256)
    metric_name = spec.recipe.metric
    if spec.recipe.task == "classification" and (outputs.ndim != 2 or outputs.shape[1] < len(data.classes)):
        raise InputError(
            f"{Path(source.location).name} outputs shape {outputs.shape[1:]} per sample; its data has "
            f"{len(data.classes)} classes",
            hint="the file's output must hold one score per class",
        )
    if spec.recipe.task != "classification" and outputs.shape[1:] != data.y_test.shape[1:]:
        raise InputError(
            f"{Path(source.location).name} outputs shape {outputs.shape[1:]} per sample; the data's targets "
            f"have shape {data.y_test.shape[1:]}",
            hint="the file's output must have the targets' shape",
        )
    metric = task_metric(metric_name, outputs, data.y_test)
    np.save(out_dir / "golden_inputs.npy", data.x_test)
    np.save(out_dir / "golden_labels.npy", data.y_test)
    np.save(out_dir / "golden_float_outputs.npy", outputs)
    write_json(
        out_dir / "train.json", {"onnx_file": info, "held_out_" + metric_name: metric, "data_sha256": data.sha256}
    )
    wall = time.perf_counter() - started
    runtime = "qonnx's executor" if info.quant_nodes else "onnxruntime"
    say(f"  ran {Path(source.location).name} in {runtime} in {wall:.1f} s (no training): held-out {metric_name} "
        f"{metric:.4f}")  # fmt: skip
    return FloatModel(
        name=spec.name,
        source=source,
        input_shape=info.input_shape,
        classes=data.classes,
        weights=MODEL_FILE,
        golden_inputs="golden_inputs.npy",
        golden_labels="golden_labels.npy",
        golden_float_outputs="golden_float_outputs.npy",
        n_parameters=info.n_parameters,
        train_wall_s=wall,
    )


QONNX_BATCH = 512  # qonnx's executor runs a graph resized to each batch


def _qonnx_run(path: Path | Any, x: np.ndarray) -> np.ndarray:
    """qonnx's executor on ``x``, in batches (``path``: the file, or its graph already loaded)."""
    from edgekit.model.qonnx_graph import ModelWrapper, cleanup_model, execute_graph

    model = cleanup_model(ModelWrapper(str(path))) if isinstance(path, Path) else path
    parts = [execute_graph(model, x[i : i + QONNX_BATCH], "QONNX file") for i in range(0, len(x), QONNX_BATCH)]
    return np.concatenate(parts).astype(np.float32)


def _clean_qonnx(model: FloatModel, float_root: Path, out_dir: Path) -> ExportedGraph:
    """A QONNX file cleaned for hls4ml and the RTL path, checked to compute what the file computes."""
    from edgekit.model.qonnx_graph import clean_for_fpga, execute_graph

    spatial = len(model.input_shape) > 1
    clean = clean_for_fpga(float_root / model.weights, out_dir / CLEAN_FILE, spatial)
    golden = np.load(float_root / model.golden_inputs)[:CLEAN_CHECK_SAMPLES]
    expected = np.load(float_root / model.golden_float_outputs)[:CLEAN_CHECK_SAMPLES]
    got = execute_graph(clean, np.ascontiguousarray(np.moveaxis(golden, 1, -1) if spatial else golden), "clean QONNX")
    if got.shape != expected.shape or np.abs(got - expected).max() != 0:
        raise ToolchainError(
            f"the cleaned copy of {Path(model.source.location).name} (channels last, Gemm as MatMul) does not compute "
            f"what the file computes on {len(golden)} held-out samples",
            hint="a graph form qonnx's cleanup changes; please report it with the file",
        )
    graph = clean.graph
    return ExportedGraph(
        path=CLEAN_FILE,
        format="qonnx-clean",
        input_name=graph.input[0].name,
        output_name=graph.output[0].name,
        opset=inspect_file(float_root / model.weights).opset,
        exporter=f"the user's QONNX file ({Path(model.source.location).name}), qonnx cleanup",
    )


def export_from_file(model: FloatModel, float_root: Path, out_dir: Path) -> ExportedGraph:
    """The file as the exported graph its targets compile (a copy: stages own their folders).

    A QONNX file is cleaned for the FPGA targets (the form hls4ml and the RTL path read), and the clean copy
    is checked against qonnx's run of the file.
    """
    shutil.copyfile(float_root / model.weights, out_dir / MODEL_FILE)
    info = inspect_file(out_dir / MODEL_FILE)
    if info.quant_nodes:
        return _clean_qonnx(model, float_root, out_dir)
    return ExportedGraph(
        path=MODEL_FILE,
        format="onnx-float",
        input_name=info.input_name,
        output_name=info.output_name,
        opset=info.opset,
        exporter=f"the user's file ({Path(model.source.location).name}), taken as it is",
    )


class OnnxFileRunner(RunnerBase):
    """The reference of an ONNX file: onnxruntime's CPU run of the file itself (qonnx's executor for QONNX)."""

    clock = "wall clock (time.perf_counter_ns), host CPU"

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        self._qonnx = inspect_file(path).quant_nodes > 0
        if self._qonnx:
            import qonnx

            from edgekit.model.qonnx_graph import ModelWrapper, cleanup_model

            self._graph = cleanup_model(ModelWrapper(str(path)))
            self._session = None
            self.description = f"qonnx {getattr(qonnx, '__version__', '')} executor run of the file itself".replace(
                "  ", " "
            )
            return
        self._session = _session(path)
        self._name = self._session.get_inputs()[0].name
        self.description = f"onnxruntime {ort.__version__} (CPU) run of the file itself"

    def run(self, x: np.ndarray) -> np.ndarray:
        if self._qonnx:
            return _qonnx_run(self._graph, x)
        assert self._session is not None
        return np.asarray(self._session.run(None, {self._name: x})[0], dtype=np.float32)

    def synchronize(self) -> None:
        """onnxruntime's CPU calls return when the work is done."""

    def close(self) -> None:
        self._session = None
