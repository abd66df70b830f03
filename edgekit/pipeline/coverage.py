"""Which layers each target family takes under ``--quant``: the table ``edgekit ops`` prints.

Each row is one layer as a user writes it, with a tiny example model. Each quantized column is what the
check before any training decides (``edgekit.pipeline.planning``): ``exact`` (taken, and held to bit-exactness
against brevitas by the build's gates and by the tests named in ``evidence``), ``host`` (a softmax head the
host applies to exact logits), or ``refused`` with the reason the check gives. The float column is the
float targets (ONNX Runtime, Inductor), which take any model torch can export. ``tests/unit/test_coverage.py``
runs the check on every row and column, so the table and the check cannot drift apart.

Checks that need the trained model (hls4ml's table ranges, a Resize's shape) happen at compile; the notes
say which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["COLUMNS", "OPS", "Op", "example", "pre_check"]

# column -> (representative target, --quant value)
COLUMNS: dict[str, tuple[str, str]] = {
    "int8": ("cpu-onnxruntime-int8", "w8a8"),
    "hls4ml": ("fpga-xcvu13p", "w8a8"),  # io_parallel; fpga-xczu7ev-stream (io_stream) is planned the same way
    "rtl": ("fpga-xcvu13p-rtl", "w8a8"),
}
HEADERS = {"int8": "INT8 (onnxruntime)", "hls4ml": "hls4ml (FPGA)", "rtl": "RTL (FPGA)"}


class _Lambda(nn.Module):
    def __init__(self, body: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.body = body
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.fn(self.body(x))
        return y


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc1(x))
        y: torch.Tensor = self.fc2(h) + h
        return y


class _Recurrent(nn.Module):
    def __init__(self, cell: type[nn.LSTM] | type[nn.GRU]) -> None:
        super().__init__()
        self.rnn = cell(4, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        y: torch.Tensor = self.fc(out[:, -1])
        return y


class _Cat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 4)
        self.b = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], dim=1)


class _CatMaps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((F.relu(self.a(x)), F.relu(self.b(x))), 1)


class _Mul(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 4)
        self.b = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.a(x) * torch.sigmoid(self.b(x))
        return y


def _conv(*layers: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), *layers)


@dataclass(frozen=True)
class Op:
    name: str
    forms: str  # what a user writes
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    status: dict[str, str]  # column -> "exact", "host" or "refused"
    reasons: dict[str, str] = field(default_factory=dict)  # column -> a fragment of the check's message
    evidence: str = ""  # the tests that hold the exact columns to bit-exactness
    notes: str = ""


ALL = {"int8": "exact", "hls4ml": "exact", "rtl": "exact"}
NONE = {"int8": "refused", "hls4ml": "refused", "rtl": "refused"}
NO_RTL = {"int8": "exact", "hls4ml": "exact", "rtl": "refused"}
INT8_ONLY = {"int8": "exact", "hls4ml": "refused", "rtl": "refused"}

OPS: tuple[Op, ...] = (
    Op("Linear", "nn.Linear", lambda: nn.Sequential(nn.Linear(8, 4)), (8,), ALL,
       evidence="tests/integration/test_quantize.py, test_rtl.py"),
    Op("Conv1d, Conv2d", "nn.Conv1d, nn.Conv2d (stride, padding)", lambda: _conv(nn.Conv2d(4, 4, 3, padding=1)),
       (1, 8, 8), ALL, evidence="tests/integration/test_quantize.py, test_rtl.py"),
    Op("ReLU", "nn.ReLU, F.relu, torch.relu", lambda: _Lambda(nn.Linear(8, 4), F.relu), (8,), ALL,
       evidence="every quantized test"),
    Op("BatchNorm after Conv/Linear", "nn.BatchNorm1d/2d (folded into the layer before)",
       lambda: _conv(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)), (1, 8, 8), ALL,
       evidence="tests/integration/test_quantize.py"),
    Op("BatchNorm elsewhere", "a BatchNorm that follows no Conv/Linear",
       lambda: nn.Sequential(nn.BatchNorm1d(8), nn.Linear(8, 4)), (8,), NONE,
       {c: "BatchNorm that does not follow a Conv/Linear" for c in COLUMNS}),
    Op("residual add", "a + b, torch.add", _Residual, (8,), ALL, evidence="tests/integration/test_quantize.py"),
    Op("reshapes", "Flatten, torch.flatten(x, 1), x.view(x.size(0), -1), x.reshape(x.shape[0], -1)",
       lambda: _Lambda(nn.Conv2d(1, 2, 3), lambda x: x.view(x.size(0), -1)), (1, 4, 4), ALL,
       evidence="tests/integration/test_field_layers.py, tests/unit/test_quant_graph.py"),
    Op("Dropout, Identity", "nn.Dropout(1d/2d), F.dropout, nn.Identity (pass through)",
       lambda: nn.Sequential(nn.Linear(8, 4), nn.Dropout(0.1), nn.Identity()), (8,), ALL,
       evidence="tests/integration/test_field_layers.py"),
    Op("MaxPool2d", "nn.MaxPool2d, F.max_pool2d", lambda: _conv(nn.MaxPool2d(2)), (1, 8, 8), ALL,
       evidence="tests/integration/test_quantize.py (lenet_digits)"),
    Op("1-D pooling", "nn.MaxPool1d, F.max_pool1d, AvgPool1d (2^k window)",
       lambda: nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2)), (2, 16),
       {"int8": "exact", "hls4ml": "refused", "rtl": "exact"}, {"hls4ml": "cannot build it"},
       evidence="tests/integration/test_quantize.py (INT8), test_rtl.py (MaxPool1d, AvgPool1d)"),
    Op("average pooling, 2^k window", "AvgPool2d, F.avg_pool2d, AdaptiveAvgPool2d(1), x.mean((2, 3))",
       lambda: _conv(nn.AvgPool2d(2)), (1, 8, 8), ALL,
       evidence="tests/integration/test_field_layers.py (kws_cnn), test_rtl.py (resnet8)"),
    Op("average pooling, other windows", "e.g. AvgPool2d(3), a global mean over 25x5", lambda: _conv(nn.AvgPool2d(3)),
       (1, 9, 9), NONE, {c: "9 is not a power of two" for c in COLUMNS},
       notes="a mean over a count that is not a power of two rounds differently on every target"),
    Op("depthwise Conv", "nn.Conv2d(C, C, k, groups=C)", lambda: _conv(nn.Conv2d(4, 4, 3, padding=1, groups=4)),
       (1, 8, 8), NO_RTL, {"rtl": "the RTL path has no grouped convolution"},
       evidence="tests/integration/test_field_layers.py (kws_cnn)",
       notes="hls4ml builds it with its latency kernel (its resource kernel transposed the weights)"),
    Op("grouped Conv", "nn.Conv2d(C, C, k, groups=g), 1 < g < C",
       lambda: _conv(nn.Conv2d(4, 4, 3, padding=1, groups=2)), (1, 8, 8), INT8_ONLY,
       {"hls4ml": "not depthwise", "rtl": "the RTL path has no grouped convolution"}),
    Op("ConvTranspose1d/2d", "nn.ConvTranspose2d (decoders)", lambda: _conv(nn.ConvTranspose2d(4, 1, 2, stride=2)),
       (1, 4, 4), INT8_ONLY, {"hls4ml": "has no ConvTranspose", "rtl": "has no ConvTranspose"},
       evidence="tests/integration/test_field_layers.py (hit_autoencoder)",
       notes="for the FPGA: nn.Upsample(scale_factor=2) and a Conv, or keep it on the host (quant.deploy_until)"),
    Op("Upsample, nearest", "nn.Upsample(scale_factor=k), whole k", lambda: _conv(nn.Upsample(scale_factor=2)),
       (1, 4, 4), NO_RTL, {"rtl": "the RTL path has no Resize"},
       evidence="tests/integration/test_field_layers.py (hit_autoencoder)",
       notes="hls4ml: square maps with one factor (checked at compile)"),
    Op("Upsample, other modes", "bilinear, fractional factors",
       lambda: _conv(nn.Upsample(scale_factor=2, mode="bilinear")), (1, 4, 4), NONE,
       {c: "only mode='nearest' by whole scale factors" for c in COLUMNS}),
    Op("sigmoid, tanh", "nn.Sigmoid, nn.Tanh, torch.sigmoid, x.tanh() (table activations)",
       lambda: _Lambda(nn.Linear(8, 4), torch.sigmoid), (8,), NO_RTL,
       {"rtl": "the RTL path has no table activation"},
       evidence="tests/integration/test_field_layers.py (tanh_tagger), tests/unit/test_activation_table.py",
       notes="hls4ml: every table entry checked at compile; a mismatch stops the build"),
    Op("LeakyReLU", "nn.LeakyReLU, F.leaky_relu, any slope in [0, 1) (table activations)",
       lambda: nn.Sequential(nn.Linear(8, 4), nn.LeakyReLU()), (8,), NO_RTL,
       {"rtl": "the RTL path has no table activation"},
       evidence="tests/integration/test_field_layers.py (leaky_tagger), tests/unit/test_activation_table.py",
       notes="hls4ml computes slope * x with the float32 slope held exactly (its type sized at compile)"),
    Op("hard sigmoid", "nn.Hardsigmoid, F.hardsigmoid (torch's x / 6 + 1/2, clipped)",
       lambda: nn.Sequential(nn.Linear(8, 4), nn.Hardsigmoid()), (8,), NO_RTL,
       {"rtl": "the RTL path has no table activation"},
       evidence="tests/integration/test_field_layers.py (hardsigmoid_tagger), tests/unit/test_activation_table.py",
       notes="hls4ml's hard_sigmoid with the slope in 32 fraction bits, every input code checked at compile; "
       "refused there when its input stays within about +-0.5 (x / 6 + 1/2 on rounding ties)"),
    Op("hard swish", "nn.Hardswish, F.hardswish (x * hardsigmoid(x), MobileNetV3)",
       lambda: nn.Sequential(nn.Linear(8, 4), nn.Hardswish()), (8,), NO_RTL,
       {"rtl": "the RTL path has no table activation"},
       evidence="tests/integration/test_field_layers.py (hardsigmoid_tagger variant=hardswish, hardswish_cnn)",
       notes="quantized as a hard sigmoid and a product; hls4ml: flat features only (on feature maps a product "
       "of maps, INT8 only)"),
    Op("Hardtanh, clamp(-1, 1)", "nn.Hardtanh(), F.hardtanh, torch.clamp(x, -1, 1), x.clamp(-1, 1)",
       lambda: nn.Sequential(nn.Linear(8, 4), nn.Hardtanh()), (8,), NO_RTL,
       {"rtl": "the RTL path has no table activation"},
       evidence="tests/integration/test_field_layers.py (clamp_tagger), tests/unit/test_activation_table.py",
       notes="hls4ml's hard_tanh, io_parallel and io_stream"),
    Op("ReLU6, clamp(0, 1)", "nn.ReLU6, F.relu6, nn.Hardtanh(0, 6), torch.clamp(x, 0, 1)",
       lambda: nn.Sequential(nn.Linear(8, 4), nn.ReLU6()), (8,), NO_RTL,
       {"rtl": "the RTL path has no table activation"},
       evidence="tests/integration/test_field_layers.py (clamp_tagger)",
       notes="hls4ml's relu6 and relu1: io_parallel only (hls4ml 1.3.0 has no io_stream kernel for them)"),
    Op("clamp, other bounds", "e.g. torch.clamp(x, -2, 2), nn.Hardtanh(-3, 3)",
       lambda: _Lambda(nn.Linear(8, 4), lambda x: torch.clamp(x, -2.0, 2.0)), (8,), INT8_ONLY,
       {"hls4ml": "hls4ml has no kernel for it", "rtl": "the RTL path has no table activation"},
       evidence="tests/integration/test_field_layers.py (clamp_tagger, variant=wide)"),
    Op("softmax head", "F.softmax(x, dim=1), nn.Softmax(dim=1), nn.LogSoftmax as forward()'s last step",
       lambda: nn.Sequential(nn.Linear(8, 4), nn.Softmax(dim=1)), (8,), {c: "host" for c in COLUMNS},
       evidence="tests/integration/test_field_layers.py (tanh_tagger, head=softmax)",
       notes="the artifacts output exact logits; edgekit applies the softmax on the host"),
    Op("softmax elsewhere", "a softmax inside the model or over another axis",
       lambda: _Lambda(nn.Linear(8, 4), lambda x: F.softmax(x, dim=0)), (8,), NONE,
       {c: "no exact quantized softmax yet" for c in COLUMNS}),
    Op("LSTM, GRU", "nn.LSTM, nn.GRU (batch_first)", lambda: _Recurrent(nn.LSTM), (6, 4), NONE,
       {c: "recurrent layers have no quantized form" for c in COLUMNS},
       notes="the float FPGA path refuses them too (bench/probe_hls4ml_recurrent.py)"),
    Op("torch.cat of features", "torch.cat([a, b], dim=1) of flat tensors", _Cat, (8,), NO_RTL,
       {"rtl": "the RTL path has no concatenation"},
       evidence="tests/integration/test_field_layers.py (branch_tagger)",
       notes="the operands re-quantized by one quantizer, so the join only moves codes"),
    Op("torch.cat of feature maps", "torch.cat((a, b), 1) of conv outputs", _CatMaps, (1, 8, 8), INT8_ONLY,
       {"hls4ml": "channels-last conversion leaves the join between transposes",
        "rtl": "the RTL path has no concatenation"},
       evidence="tests/integration/test_field_layers.py (catnets)"),
    Op("element-wise multiply", "a * b, torch.mul(a, b) of two tensors (gates: a * sigmoid(b))", _Mul, (8,),
       NO_RTL, {"rtl": "the RTL path has no multiplier of two activations"},
       evidence="tests/integration/test_field_layers.py (gated_tagger), tests/unit/test_onnxruntime_int8.py",
       notes="each operand re-quantized, the product of codes exact (operands up to 12 bits), rounded once; "
       "hls4ml: flat operands of one shape (products of feature maps and broadcast gates, as in "
       "squeeze-and-excitation, are INT8 only)"),
    Op("other activations", "GELU, SiLU, Mish, ...",
       lambda: nn.Sequential(nn.Linear(8, 4), nn.GELU()), (8,), NONE,
       {c: "cannot quantize: 1 (GELU)" for c in COLUMNS}, notes="not yet"),
)  # fmt: skip


def example(op: str) -> nn.Module:
    """The example model of the row named ``op`` (a factory edgekit's model loader can call)."""
    return next(o for o in OPS if o.name == op).build()


def pre_check(op: Op, column: str) -> str | None:
    """What edgekit's check before any training says about ``op`` on ``column``'s target: None when it takes
    the model, else the refusal's message."""
    from edgekit.core.artifacts import ModelSource
    from edgekit.core.config import merge_settings, quant_shorthand
    from edgekit.core.errors import ConfigError
    from edgekit.pipeline.planning import check_recurrent, plan_quantization_for, plan_target

    target, quant = COLUMNS[column]
    layers = [quant_shorthand(quant)]
    settings = merge_settings(layers)
    source = ModelSource("module", __name__, "example", {"op": op.name})
    plans = [plan_target(target, layers, settings.quant.enabled)]
    try:
        plan_quantization_for(source, settings, plans, op.input_shape)
        check_recurrent(source, plans)
    except ConfigError as err:
        return err.message
    return None


def rows() -> list[list[str]]:
    """The table as text cells: layer, the float targets, one verdict per quantized column."""
    return [[op.name, "float", *(op.status[c] for c in COLUMNS)] for op in OPS]


def details() -> list[str]:
    """One line per row with a refusal or a note: why, and where."""
    lines = []
    for op in OPS:
        why: dict[str, list[str]] = {}
        for column, reason in op.reasons.items():
            why.setdefault(reason, []).append(HEADERS[column].split(" (")[0])
        parts = [f"{reason} ({', '.join(columns)})" for reason, columns in why.items()]
        parts += [op.notes] if op.notes else []
        if parts:
            lines.append(f"- {op.name}: {'; '.join(parts)}")
    return lines
