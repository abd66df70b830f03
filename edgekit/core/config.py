"""Resolved build settings and the one place they are merged.

Layers, lowest first: code defaults < target profile < model recipe (< its
``[tiny]`` table when asked for) < command-line ``--set`` flags. Each layer is
checked on its own, so an error names the file it came from, and the merge
result is built once into frozen dataclasses.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from edgekit.core.errors import ConfigError
from edgekit.core.schema import build, check_table, deep_merge

__all__ = [
    "FLOAT_ON_FIXED",
    "FORMAT_GATES",
    "ExportSettings",
    "GateSettings",
    "LatencySettings",
    "Layer",
    "LayerQuantSettings",
    "PruneSettings",
    "QuantSettings",
    "Settings",
    "SynthSettings",
    "TrainSettings",
    "ValidationSettings",
    "absolute_set_flags",
    "design_top_name",
    "flatten_layer_tables",
    "format_gates_layer",
    "merge_settings",
    "parse_set_flags",
    "prune_shorthand",
    "quant_shorthand",
    "resolve_data_paths",
]


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = field(default=20, metadata={"min": 0, "max": 10_000})
    batch_size: int = field(default=256, metadata={"min": 1})
    learning_rate: float = field(default=1e-3, metadata={"min": 0.0})
    weight_decay: float = field(default=0.0, metadata={"min": 0.0})
    optimizer: Literal["adam", "sgd"] = "adam"
    seed: int = 0
    # torch threads while training and computing golden outputs. One thread gives the same weights whatever
    # the machine's load, core count or OMP_NUM_THREADS: torch splits a sum into one part per thread, so
    # another thread count (and OpenMP's OMP_DYNAMIC, which shrinks the team when the machine is busy) adds
    # in another order. More threads are faster for large models; the weights then depend on the count.
    threads: int = field(default=1, metadata={"min": 1, "max": 1024})
    # Train on (x - mean) / std per input feature (channel of maps), then fold it into the first layer: the
    # deployed model takes the raw features (see edgekit.model.standardize).
    standardize: bool = False


@dataclass(frozen=True)
class ExportSettings:
    # The TorchScript exporter (dynamo=False) is pinned: it needs no onnxscript and it is
    # the path brevitas' QONNX/QCDQ exports take, so float and quantized graphs match in form.
    opset: int = field(default=17, metadata={"min": 13, "max": 23})
    # The FPGA design's top: the RTL targets' top module (its handshake tops add _stream and _axis) and the
    # hls4ml targets' project and top function. Empty: the model's name, made an identifier (top_name()).
    top_name: str = ""


# Names a top cannot take: words of Verilog, SystemVerilog or C++, and the files hls4ml writes beside its
# project's own (firmware/<top>.cpp would meet firmware/defines.h and parameters.h).
_RESERVED_WORDS = (
    "always and assign automatic begin bit buf byte case casex casez cell class config const default defines "
    "design disable do edge else end endcase endfunction endmodule endtask event for force forever fork function "
    "generate genvar if initial inout input int integer interface localparam logic long module nand nnet nor not "
    "or output parameter parameters posedge negedge real reg repeat return signed static string struct switch "
    "table task time tri typedef union unsigned void wait while wire xor main namespace template this"
)
RESERVED_TOP_NAMES = frozenset(_RESERVED_WORDS.split())
TOP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")


def design_top_name(export: ExportSettings, model_name: str, source: str = "merged settings") -> str:
    """The FPGA design's top: ``export.top_name`` if set (checked), else ``model_name`` made an identifier.

    >>> design_top_name(ExportSettings(), "jet-tagger v2")
    'jet_tagger_v2'
    >>> design_top_name(ExportSettings(top_name="l1_tagger"), "jet_tagger")
    'l1_tagger'
    """
    if export.top_name:
        name = export.top_name
        if not TOP_NAME.fullmatch(name) or name.lower() in RESERVED_TOP_NAMES or "__" in name:
            raise ConfigError(
                f"{source}: [export] top_name {name!r} cannot name a Verilog module and an HLS top function",
                hint="a letter, then letters, digits and single underscores, at most 63 characters, not a "
                "Verilog or C++ keyword (e.g. l1_jet_tagger)",
            )
        return name
    name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]", "_", model_name)).strip("_")[:56] or "model"
    if not name[0].isalpha():
        name = f"m_{name}"
    return f"{name}_top" if name.lower() in RESERVED_TOP_NAMES else name


@dataclass(frozen=True)
class LatencySettings:
    batch_sizes: tuple[int, ...] = field(default=(1, 1024), metadata={"min": 1})
    warmup_iters: int = field(default=20, metadata={"min": 0})
    min_iters: int = field(default=50, metadata={"min": 1})
    max_iters: int = field(default=20_000, metadata={"min": 1})
    min_time_s: float = field(default=0.3, metadata={"min": 0.0})
    max_time_s: float = field(default=3.0, metadata={"min": 0.0})


@dataclass(frozen=True)
class ValidationSettings:
    max_samples: int | None = field(default=None, metadata={"min": 1})
    batch_size: int = field(default=1024, metadata={"min": 1})


@dataclass(frozen=True)
class GateSettings:
    """Pass/fail thresholds; a gate set to nothing (absent in every layer) is not checked."""

    min_metric: float | None = None  # for metrics where higher is better (accuracy, ROC AUC, PSNR)
    max_metric: float | None = None  # for metrics where lower is better (MSE)
    # how much worse than the float reference: lower for accuracy, ROC AUC and PSNR, higher for MSE
    max_metric_drop_vs_float: float | None = 0.002
    # Agreement with the float reference: set by each target profile for its number format.
    max_abs_diff_vs_float: float | None = None
    min_top1_agreement: float | None = None
    # Agreement with the quantized (brevitas) reference, for targets that run a quantized graph.
    max_abs_diff_vs_quantized: float | None = None
    max_lsb_diff_vs_quantized: float | None = field(default=None, metadata={"min": 0.0})  # in the output's last bit
    max_latency_p50_us_batch1: float | None = field(default=None, metadata={"min": 0.0})
    # Resource and latency budgets of an FPGA target, checked against what its backend reports
    # (yosys' mapped cells for an RTL target, else the estimate); other targets have none to check.
    max_lut: float | None = field(default=None, metadata={"min": 0.0})
    max_ff: float | None = field(default=None, metadata={"min": 0.0})
    max_dsp: float | None = field(default=None, metadata={"min": 0.0})
    max_bram_18k: float | None = field(default=None, metadata={"min": 0.0})
    max_fpga_latency_ns: float | None = field(default=None, metadata={"min": 0.0})
    # The clock the placed and routed design reaches (a routed RTL target's nextpnr timing): timing met or not.
    min_fmax_mhz: float | None = field(default=None, metadata={"min": 0.0})
    # Used over available of the part, for its most used resource: over 1.0 the design does not fit.
    max_utilization: float | None = field(default=1.0, metadata={"min": 0.0})


@dataclass(frozen=True)
class LayerQuantSettings:
    """Per-layer overrides in ``[quant.layers.NAME]``; anything absent comes from ``[quant]``."""

    weight_bits: int | None = field(default=None, metadata={"min": 2, "max": 16})
    activation_bits: int | None = field(default=None, metadata={"min": 2, "max": 16})
    bias_bits: int | None = field(default=None, metadata={"min": 2, "max": 32})
    accumulator_bits: int | None = field(default=None, metadata={"min": 2, "max": 32})
    weight_scaling: Literal["per_tensor", "per_channel"] | None = None
    activation_signed: bool | None = None


@dataclass(frozen=True)
class QuantSettings:
    """Quantization: off unless ``enabled`` (``--quant w6a8`` turns it on).

    Bit widths are model-wide defaults; ``layers`` overrides them per module path.
    ``None`` means "the quantizer family's default" (fixed-point for FPGA targets,
    8-bit symmetric for INT8 targets), so the family decides, not chance.
    """

    enabled: bool = False
    weight_bits: int = field(default=8, metadata={"min": 2, "max": 16})
    activation_bits: int = field(default=8, metadata={"min": 2, "max": 16})
    input_bits: int | None = field(default=None, metadata={"min": 2, "max": 16})
    bias_bits: int | None = field(default=None, metadata={"min": 2, "max": 32})
    accumulator_bits: int | None = field(default=None, metadata={"min": 2, "max": 32})
    weight_scaling: Literal["per_tensor", "per_channel"] | None = None
    activation_signed: bool | None = None
    scale_type: Literal["power_of_two", "float"] = "power_of_two"
    # Rounding is always half to even: the only mode QuantizeLinear has, and brevitas 0.13.4's floor
    # quantizers export to QONNX with different numbers (measured), so no other mode is offered.
    weight_overflow: Literal["saturate", "saturate_symmetric"] = "saturate_symmetric"
    # "learned": QAT that also learns each output channel's weight precision under a resource term
    # (edgekit.model.learned_precision); weight_bits is then each layer's upper bound.
    method: Literal["qat", "ptq", "learned"] = "qat"
    resource_weight: float = field(default=0.5, metadata={"min": 0.0})  # the resource term's weight (learned)
    # learned: each ReLU's and the input's width learned too (in the first half of the QAT epochs)
    learn_activations: bool = True
    # learned: one fraction per output channel, or per weight (each constant of the RTL path its own width)
    learned_granularity: Literal["channel", "weight"] = "channel"
    qat_epochs: int = field(default=6, metadata={"min": 0, "max": 10_000})
    qat_learning_rate: float = field(default=1e-3, metadata={"min": 0.0})
    calibration_samples: int = field(default=2048, metadata={"min": 1})
    bias_correction: bool = True
    # A ReLU (module path) the quantized artifacts stop at: they output its values, edgekit runs the rest of
    # the quantized model on the host (an autoencoder's encoder deployed alone). "": the whole model.
    deploy_until: str = ""
    layers: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class PruneSettings:
    """Pruning: off unless ``method`` is set (``--prune 0.8``, ``--prune structured:0.5``, ``--prune 2:4``).

    ``sparsity`` is the fraction of weights (unstructured) or of channels and neurons
    (structured) removed; 2:4 is always half of every group of four. It is reached in
    ``steps`` rounds of prune -> fine-tune, each fine-tune ``finetune_epochs`` long.
    """

    method: Literal["none", "unstructured", "structured", "2:4"] = "none"
    sparsity: float = field(default=0.0, metadata={"min": 0.0, "max": 0.99})
    scope: Literal["global", "layer"] = "global"
    steps: int = field(default=4, metadata={"min": 1, "max": 50})
    finetune_epochs: int = field(default=3, metadata={"min": 0, "max": 1000})
    finetune_learning_rate: float = field(default=1e-3, metadata={"min": 0.0})
    exclude: tuple[str, ...] = ()  # layers left dense; structured pruning always keeps the output layer


@dataclass(frozen=True)
class SynthSettings:
    """Vendor C synthesis of FPGA targets (``--synth``); needs Vitis HLS or Vivado HLS on PATH."""

    enabled: bool = False
    timeout_s: int = field(default=7200, metadata={"min": 1})


@dataclass(frozen=True)
class Settings:
    """Every setting of a build, merged once: code defaults < target profile < recipe < ``--set``.

    >>> import edgekit
    >>> edgekit.Settings().train.epochs, edgekit.Settings().quant.enabled
    (20, False)
    """

    train: TrainSettings = TrainSettings()
    export: ExportSettings = ExportSettings()
    latency: LatencySettings = LatencySettings()
    validation: ValidationSettings = ValidationSettings()
    gates: GateSettings = GateSettings()
    quant: QuantSettings = QuantSettings()
    prune: PruneSettings = PruneSettings()
    synth: SynthSettings = SynthSettings()
    model_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    data_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


SETTINGS_SECTIONS = tuple(f.name for f in fields(Settings))


@dataclass(frozen=True)
class Layer:
    """One source of settings: where it came from and its (nested) table."""

    source: str
    table: Mapping[str, Any]


LAYER_FIELDS = frozenset(f.name for f in fields(LayerQuantSettings))


def flatten_layer_tables(layers: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``[quant.layers]`` keyed by full module path: ``{"encoder": {"fc1": {...}}}`` -> ``{"encoder.fc1": {...}}``.

    TOML reads ``[quant.layers.encoder.fc1]`` (unquoted) as nested tables; ``[quant.layers."encoder.fc1"]``
    is the same layer. A table holding both settings and sub-tables sets a block and layers inside it.
    """
    flat: dict[str, Any] = {}
    for name, table in layers.items():
        path = f"{prefix}{name}"
        if not isinstance(table, Mapping):
            flat[path] = table  # not a table: check_table names the problem
            continue
        own = {k: v for k, v in table.items() if k in LAYER_FIELDS or not isinstance(v, Mapping)}
        if own or not table:
            flat[path] = own
        flat.update(flatten_layer_tables({k: v for k, v in table.items() if k not in own}, f"{path}."))
    return flat


def _with_flat_layers(table: Mapping[str, Any]) -> Mapping[str, Any]:
    quant = table.get("quant")
    if not isinstance(quant, Mapping) or not isinstance(quant.get("layers"), Mapping):
        return table
    return {**table, "quant": {**quant, "layers": flatten_layer_tables(quant["layers"])}}


def merge_settings(layers: Sequence[Layer]) -> Settings:
    """Check each layer, merge them in order (later wins) and build frozen settings."""
    merged: dict[str, Any] = {}
    for layer in layers:
        table = _with_flat_layers(layer.table)
        check_table(Settings, table, layer.source)
        for name, layer_table in table.get("quant", {}).get("layers", {}).items():
            check_table(LayerQuantSettings, layer_table, layer.source, f"quant.layers.{name}")
        merged = deep_merge(merged, table)
    return build(Settings, merged, "merged settings")


def _is_path_key(key: str) -> bool:
    return key == "path" or key.endswith(("_path", "_file", "_dir"))


def resolve_data_paths(table: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """``table`` with relative file paths in ``data_options`` (keys ``path``, ``*_path``, ``*_file``, ``*_dir``)
    made absolute against ``base``: a recipe's folder for a recipe, the current directory for ``--set``."""
    options = table.get("data_options")
    if not isinstance(options, Mapping):
        return dict(table)
    resolved = {
        k: str(base / Path(v).expanduser()) if _is_path_key(k) and isinstance(v, str) and v and "://" not in v else v
        for k, v in options.items()
    }
    return {**table, "data_options": resolved}


def _key_parts(key: str, flag: str) -> list[str]:
    """The parts of a dotted ``--set`` key, TOML's way: ``quant.layers."encoder.fc1".weight_bits``."""
    try:
        parsed: Any = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"--set {flag!r}: {key!r} is not a settings key",
            hint='dotted names, a layer name with dots in quotes: quant.layers."encoder.fc1".weight_bits=4',
        ) from err
    parts = []
    while isinstance(parsed, dict):
        (name, parsed), *_ = parsed.items()
        parts.append(name)
    if parts[:2] == ["quant", "layers"] and len(parts) > 4:
        parts = [*parts[:2], ".".join(parts[2:-1]), parts[-1]]  # an unquoted nested layer path
    return parts


def quant_shorthand(text: str) -> Layer:
    """``--quant w6a8`` (weights 6 bits, activations 8), ``w4a6i8`` (input 8), ``int8``, ``off``."""
    spec = text.strip().lower()
    if spec in ("off", "none", "float"):
        return Layer("--quant", {"quant": {"enabled": False}})
    if spec == "int8":
        spec = "w8a8"
    match = re.fullmatch(r"w(\d+)a(\d+)(?:i(\d+))?", spec)
    if not match:
        raise ConfigError(
            f"--quant {text!r} is not a precision shorthand",
            hint="use wNaM (weights N bits, activations M bits), e.g. w6a8, w4a8i8 (input 8 bits), int8, or off",
        )
    table: dict[str, Any] = {"enabled": True, "weight_bits": int(match[1]), "activation_bits": int(match[2])}
    if match[3]:
        table["input_bits"] = int(match[3])
    return Layer("--quant", {"quant": table})


def parse_set_flags(flags: Sequence[str]) -> Layer:
    """``--set train.epochs=5 --set latency.batch_sizes=[1,64]`` as one settings layer.

    Values are TOML values; a bare word that is not valid TOML is taken as a string. Keys are TOML dotted
    keys: a layer whose module path has dots is quoted (``quant.layers."encoder.fc1".weight_bits=4``) or
    written out (``quant.layers.encoder.fc1.weight_bits=4``). A relative data path is the current directory's.
    """
    table: dict[str, Any] = {}
    for flag in flags:
        key, sep, raw = _split_flag(flag)
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--set {flag!r} is not KEY=VALUE",
                hint="for example --set train.epochs=5 or --set gates.min_metric=0.9",
            )
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        *parents, leaf = _key_parts(key, flag)
        node = table
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(
                    f"--set {flag!r} conflicts with an earlier --set of {part!r}",
                    hint="set a key or its table, not both",
                )
        node[leaf] = value
    return Layer("command line --set", resolve_data_paths(table, Path.cwd()))


def absolute_set_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """``--set`` flags with relative data paths made absolute here, for builds that run elsewhere (Ray workers)."""
    out = []
    for flag in flags:
        key, sep, raw = _split_flag(flag)
        parts = _key_parts(key.strip(), flag) if sep and key.strip() else []
        value = raw.strip()
        if parts[:1] == ["data_options"] and len(parts) == 2 and _is_path_key(parts[1]) and value:
            try:
                text = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:
                text = value
            if isinstance(text, str) and "://" not in text and not Path(text).expanduser().is_absolute():
                flag = f"{key}={json.dumps(str(Path.cwd() / Path(text).expanduser()))}"
        out.append(flag)
    return tuple(out)


def _split_flag(flag: str) -> tuple[str, str, str]:
    """KEY=VALUE at the first ``=`` outside quotes (a quoted layer name may not hold one, but a value may)."""
    quote = ""
    for i, char in enumerate(flag):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "=":
            return flag[:i], "=", flag[i + 1 :]
    return flag, "", ""


def prune_shorthand(text: str) -> Layer:
    """``--prune 0.8`` (unstructured), ``unstructured:0.8``, ``structured:0.5``, ``2:4``, or ``off``."""
    spec = text.strip().lower()
    if spec in ("off", "none"):
        return Layer("--prune", {"prune": {"method": "none"}})
    if spec == "2:4":
        return Layer("--prune", {"prune": {"method": "2:4", "sparsity": 0.5}})
    method, _, amount = spec.rpartition(":")
    method = method or "unstructured"
    try:
        sparsity = float(amount)
    except ValueError:
        sparsity = -1.0
    if method not in ("unstructured", "structured") or sparsity < 0:
        raise ConfigError(
            f"--prune {text!r} is not a pruning shorthand",
            hint="use a sparsity (0.8: unstructured), structured:0.5 (channels), 2:4, or off",
        )
    return Layer("--prune", {"prune": {"method": method, "sparsity": sparsity}})


# Agreement a target is held to by default, by the number format it computes in (a layer below the target
# profile, so a profile, a recipe or --set overrides it). Rationale:
# - fp32: another kernel library sums in another order; logits of O(10) agree to about 1e-5.
# - fp16: 11 significant bits (unit roundoff 4.9e-4) through a few layers of sums: a few 1e-2 on logits of
#   O(10); top-1 may flip on near-ties only.
# - bf16: 8 significant bits (unit roundoff 3.9e-3): eight times looser than fp16.
# - int8 and fixed: the quantized reference is the model; power-of-two scales make every runtime exact.
# - fixed-from-float: an FPGA target without --quant runs the float model in fixed-point types edgekit sizes
#   from measured ranges (18 bits, integer bits for the largest value plus one doubling): about 16
#   significant bits at a layer's largest value and fewer below it, rounded at every layer; held to
#   agreement with the float model like fp16, since there is no quantized reference to be exact with.
FLOAT_ON_FIXED = "fixed-from-float"
FORMAT_GATES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_diff_vs_float": 1e-4, "min_top1_agreement": 0.999},
    "fp16": {"max_abs_diff_vs_float": 5e-2, "min_top1_agreement": 0.995},
    "bf16": {"max_abs_diff_vs_float": 4e-1, "min_top1_agreement": 0.99},
    "int8": {"max_abs_diff_vs_quantized": 0.0, "max_metric_drop_vs_float": 0.01},
    "fixed": {"max_abs_diff_vs_quantized": 0.0, "max_metric_drop_vs_float": 0.01},
    FLOAT_ON_FIXED: {"max_abs_diff_vs_float": 5e-2, "min_top1_agreement": 0.995, "max_metric_drop_vs_float": 0.01},
}


def format_gates_layer(precision: str) -> Layer:
    """The default gates for targets computing in ``precision`` (fp32, fp16, bf16, int8, fixed)."""
    return Layer(f"default gates for {precision}", {"gates": dict(FORMAT_GATES.get(precision, {}))})
