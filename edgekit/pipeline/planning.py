"""Everything decided before any work starts: targets, their backends and settings, quantization plans.

A typo in a profile, an unknown layer in ``[quant.layers]`` or a precision a
target cannot take exactly all fail here, before a minute of training is spent.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from edgekit.backends import Backend, get_backend
from edgekit.backends.base import ModelFacts, ModelSize
from edgekit.core.artifacts import ModelSource
from edgekit.core.config import FLOAT_ON_FIXED, Layer, Settings, format_gates_layer, merge_settings
from edgekit.core.errors import BackendUnavailable, ConfigError
from edgekit.core.precision import WEIGHTED, Family, QuantPlan, family_for, legality_problems, plan_quantization
from edgekit.core.progress import say
from edgekit.core.targets import TargetProfile, load_target, with_overrides
from edgekit.model.quant_graph import GraphInfo, analyze, layers_up_to
from edgekit.model.torch_model import instantiate

__all__ = [
    "TargetPlan",
    "check_logic_size",
    "check_memory",
    "check_pruning",
    "check_synthesis",
    "plan_quantization_for",
    "plan_target",
]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked install
        return False


@dataclass(frozen=True)
class TargetPlan:
    profile: TargetProfile
    settings: Settings
    backend: Backend | None
    unavailable: str  # why the backend cannot be used here; "" when it can
    family: Family | None  # the quantized model this target runs; None: the float graph


def overrides_for(name: str, every: Mapping[str, Any], per_target: Mapping[str, Any]) -> dict[str, Any]:
    """The profile tables --set changes for target ``name`` (given by name or path): every target's, then its own."""
    own = per_target.get(name) or per_target.get(load_target(name).name) or {}
    return {**every, **own}


def check_overrides_used(
    every: Mapping[str, Any], per_target: Mapping[str, Any], profiles: list[TargetProfile]
) -> None:
    """A --set of a profile table that no target of the build has is a mistake, not a no-op."""
    for table in every:
        if table != "backend_options" and not any(getattr(p, table) is not None for p in profiles):
            raise ConfigError(
                f"--set {table}.*: none of the targets ({', '.join(p.name for p in profiles)}) has a [{table}] table",
                hint=f"{table}.* changes {table.upper()} profiles; check the key or the --target names",
            )
    for name in per_target:
        if not any(name in (p.name, p.source.split(" with --set")[0]) for p in profiles):
            raise ConfigError(
                f"--set targets.{name}.*: {name} is not a target of this build",
                hint=f"targets here: {', '.join(p.name for p in profiles)}",
            )


def plan_target(
    name: str,
    model_layers: list[Layer],
    quant_enabled: bool,
    graph_given: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> TargetPlan:
    """One target's profile, merged settings and backend. ``graph_given``: the model is an ONNX file, whose
    graph the target compiles as it is (:func:`check_onnx_file` decides which targets take it). ``overrides``:
    profile tables changed from the command line (:func:`edgekit.core.targets.with_overrides`)."""
    profile = with_overrides(load_target(name), overrides or {})
    family = family_for(profile)
    number_format: str = profile.precision
    if family == "fixed" and not quant_enabled:
        # An FPGA target without --quant takes the float model (hls4ml's float path): fixed-point types sized
        # from measured ranges, held to agreement with the float model instead of exactness with brevitas.
        family, number_format = None, FLOAT_ON_FIXED
    layers = [format_gates_layer(number_format), profile.settings_layer(), *model_layers]
    if number_format == FLOAT_ON_FIXED:  # the profile's exactness gate has no quantized reference to compare
        layers.insert(2, Layer(f"{profile.source} (float path)", {"gates": {"max_abs_diff_vs_quantized": None}}))
    settings = merge_settings(layers)
    try:
        backend = get_backend(profile.backend)
        reason = backend.unavailable_reason()
    except BackendUnavailable as err:
        return TargetPlan(profile, settings, None, err.message, family)
    if reason:
        return TargetPlan(profile, settings, None, reason, family)
    if family is None and profile.family == "fpga" and not backend.float_path and not graph_given:
        raise ConfigError(
            f"target {name} builds logic for a quantized model only, and quantization is off",
            hint="add --quant (e.g. --quant w6a8)",
        )
    try:
        backend.check_target(profile)
    except BackendUnavailable as err:  # a program the backend needs for this profile is missing
        return TargetPlan(profile, settings, None, f"{err.message}; {err.hint}", family)
    return TargetPlan(profile, settings, backend, "", family)


def plan_quantization_for(
    source: ModelSource, settings: Settings, plans: list[TargetPlan], input_shape: tuple[int, ...]
) -> dict[str, QuantPlan]:
    """One plan per quantizer family the targets need, checked against every target's legality rules."""
    families = sorted({p.family for p in plans if p.family is not None})
    if not settings.quant.enabled:
        int8 = [p.profile.name for p in plans if p.family == "int8"]
        if int8:
            raise ConfigError(
                f"target(s) {', '.join(int8)} run an INT8 graph, but quantization is off",
                hint="add --quant int8 (8-bit weights and activations)",
            )
        return {}
    if not families:
        say("note: --quant has no effect here: no target in this build runs a quantized graph")
        return {}
    missing = [m for m in ("brevitas", "qonnx") if not _installed(m)]
    if missing:
        raise BackendUnavailable(
            f"quantization needs {' and '.join(missing)}, which are not installed",
            hint="pip install 'edgekit[quant]'",
        )
    if settings.quant.method == "learned":
        _check_learned(plans)
    info = analyze(instantiate(source), input_shape)
    quant_plans: dict[str, QuantPlan] = {
        f: replace(plan_quantization(settings.quant, f, info.layers, info.nonnegative), host_head=info.softmax_head)
        for f in families
    }
    cut = settings.quant.deploy_until
    if cut:
        quant_plans = _cut_at(source, info, quant_plans, cut, input_shape)
    _notes(info, quant_plans)
    # with quant.deploy_until, the targets' rules meet only what the artifacts compute
    deployed = layers_up_to(instantiate(source), cut) if cut else None
    _check_targets_take(plans, quant_plans, ModelFacts(info, input_shape, deployed))
    return quant_plans


def _check_learned(plans: list[TargetPlan]) -> None:
    """Learned precision is for the fixed-point (FPGA) targets in this version: INT8 targets are refused."""
    int8 = [p.profile.name for p in plans if p.family == "int8"]
    if int8:
        raise ConfigError(
            f'quant.method = "learned" learns fixed-point precision per channel for the FPGA targets; '
            f"{', '.join(int8)} run INT8 (8-bit QuantizeLinear), where fewer bits in a channel buy nothing",
            hint="build the INT8 target(s) with --quant int8 (method qat or ptq) in a build of their own",
        )


def _cut_at(
    source: ModelSource, info: GraphInfo, quant_plans: dict[str, QuantPlan], cut: str, input_shape: tuple[int, ...]
) -> dict[str, QuantPlan]:
    """The plans with ``quant.deploy_until``: the artifacts end at that ReLU, the host runs the rest."""
    relus = [name for name, kind in info.layers if kind == "relu"]
    if cut not in relus:
        raise ConfigError(
            f"quant.deploy_until = {cut!r} is not a ReLU of the model",
            hint=f"name the ReLU whose values the quantized artifacts should output: {', '.join(relus) or 'none'}",
        )
    quant_plans = {f: replace(plan, host_tail=cut) for f, plan in quant_plans.items()}
    from edgekit.model.brevitas_model import build_quant_model, split_quant_model

    twin = build_quant_model(instantiate(source), next(iter(quant_plans.values())), input_shape)
    split_quant_model(twin, cut, "tail")  # ConfigError when a later layer reads a value from before the cut
    say(
        f"note: quant.deploy_until = {cut}: the quantized artifacts compute the model up to {cut} and output "
        "its values; edgekit runs the rest of the quantized model on the host to score them"
    )
    return quant_plans


def _notes(info: GraphInfo, quant_plans: dict[str, QuantPlan]) -> None:
    """What the plans leave to the host or do not honour yet, said before any work."""
    if info.softmax_head:
        say(
            f"note: the model ends in a {info.softmax_head}: the quantized artifacts output the logits before it, "
            f"and edgekit applies the {info.softmax_head} on the host wherever they meet the float model"
        )
    if "fixed" in quant_plans and any(layer.accumulator_bits for layer in quant_plans["fixed"].layers):
        say(
            "note: accumulator_bits is recorded in the plan, but hls4ml sizes every accumulator so that no sum "
            "overflows, and edgekit does not narrow them yet"
        )


def _check_targets_take(plans: list[TargetPlan], quant_plans: dict[str, QuantPlan], facts: ModelFacts) -> None:
    """Every target's number-format rules and its backend's (ConfigError naming each layer a target cannot take)."""
    problems = [
        f"{p.profile.name}: {problem}"
        for p in plans
        if p.family is not None
        for problem in legality_problems(quant_plans[p.family], p.profile)
    ]
    for p in plans:
        if p.family is None:
            continue
        try:
            backend = p.backend or get_backend(p.profile.backend)  # an unavailable backend still says what it takes
        except BackendUnavailable:
            continue
        problems += [
            f"{p.profile.name}: {problem}"
            for problem in backend.quant_problems(quant_plans[p.family], facts, p.profile)
        ]
    if problems:
        raise ConfigError(
            "the quantization settings do not fit the target(s):\n  " + "\n  ".join(problems),
            hint="change --quant or [quant] (per layer in [quant.layers.NAME]), or choose another target",
        )


def planned_multiplies(source: ModelSource, settings: Settings, input_shape: tuple[int, ...]) -> list[tuple[str, int]]:
    """Per weighted layer, its multiplications (weights x output positions) left by the planned pruning.

    Structured pruning is counted as removing its fraction of each layer's weights, which is an upper bound
    (removing channels thins the next layer's inputs too).
    """
    from edgekit.model.sparsity import layer_report

    prune = settings.prune
    kept = {"none": 1.0, "2:4": 0.5}.get(prune.method, 1.0 - prune.sparsity)
    rows = layer_report(instantiate(source), input_shape)["layers"]
    return [(row["layer"], math.ceil(row["macs"] * (1.0 if row["layer"] in prune.exclude else kept))) for row in rows]


def window_copies(source: ModelSource, input_shape: tuple[int, ...]) -> list[tuple[str, int]]:
    """Per convolution, output positions x kernel positions x input channels: the input elements an im2col
    (hls4ml io_parallel's fill_buffer) copies one by one."""
    import torch
    from torch import nn

    model = instantiate(source).eval()
    counts: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):

            def record(mod: nn.Module, args: object, out: torch.Tensor, name: str = name) -> None:
                assert isinstance(mod, (nn.Conv1d, nn.Conv2d))
                counts[name] = math.prod(out.shape[2:]) * math.prod(mod.kernel_size) * mod.in_channels

            hooks.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        for hook in hooks:
            hook.remove()
    return list(counts.items())


def check_logic_size(
    source: ModelSource,
    settings: Settings,
    plans: list[TargetPlan],
    quant_plans: dict[str, QuantPlan],
    input_shape: tuple[int, ...],
) -> None:
    """Each target's backend refuses a model it could not build in time (ConfigError): the RTL path, which builds
    every multiplication as logic, and hls4ml io_parallel, whose code grows with the convolutions' windows."""
    prune = settings.prune
    amount = "" if prune.method == "2:4" else f" {prune.sparsity}"
    size = ModelSize(
        partial(planned_multiplies, source, settings, input_shape),
        partial(window_copies, source, input_shape),
        frozenset(layer.name for layer in quant_plans["fixed"].deployed()) if "fixed" in quant_plans else frozenset(),
        "" if prune.method == "none" else f"{prune.method}{amount}",
    )
    for plan in plans:
        if plan.backend is not None:
            plan.backend.check_size(plan.profile, plan.family is not None, size)


def check_synthesis(settings: Settings, plans: list[TargetPlan]) -> None:
    """With ``--synth``, every FPGA target's vendor HLS tool must be on PATH (BackendUnavailable otherwise)."""
    if not settings.synth.enabled:
        return
    from edgekit.backends.hls4ml.synth import synth_command

    fpga = [p for p in plans if p.profile.family == "fpga" and p.backend is not None]
    if not fpga:
        say("note: --synth has no effect here: no FPGA target in this build")
    for plan in fpga:
        synth_command(plan.profile)


# A latency batch is built in memory by repeating golden samples and runs through copies (torch, numpy,
# float64 for the emulators) and the model's activations: refused when even this many copies of its input
# do not fit in the memory the machine has free.
BATCH_MEMORY_COPIES = 8


def _available_memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def check_memory(settings: Settings, plans: list[TargetPlan], input_shape: tuple[int, ...]) -> None:
    """A latency batch size the machine cannot hold is refused before any work (ConfigError)."""
    available = _available_memory_bytes()
    if available is None:
        return
    sample_bytes = 4 * math.prod(input_shape)
    for where, chosen in [("the build", settings)] + [(f"target {p.profile.name}", p.settings) for p in plans]:
        batch = max(chosen.latency.batch_sizes)
        need = batch * sample_bytes * BATCH_MEMORY_COPIES
        if need > available:
            raise ConfigError(
                f"latency.batch_sizes for {where}: a batch of {batch:,} samples of shape {input_shape} takes "
                f"{batch * sample_bytes / 2**30:.2f} GiB for its inputs alone and about {need / 2**30:.1f} GiB "
                f"with the copies a run makes, but this machine has {available / 2**30:.1f} GiB available",
                hint=f"use batch sizes up to about {available // (sample_bytes * BATCH_MEMORY_COPIES):,}, "
                "e.g. --set latency.batch_sizes=[1,1024]",
            )


def check_recurrent(source: ModelSource, plans: list[TargetPlan]) -> None:
    """hls4ml's float path refuses recurrent layers before any work: its kernels do not compute torch's."""
    fpga = [p.profile.name for p in plans if p.profile.family == "fpga" and p.family is None]
    if not fpga:
        return
    from torch import nn

    recurrent = [
        f"{name} ({type(m).__name__})" for name, m in instantiate(source).named_modules() if isinstance(m, nn.RNNBase)
    ]
    if recurrent:
        raise ConfigError(
            f"{', '.join(fpga)}: {', '.join(recurrent)}: hls4ml 1.3.0's recurrent kernels do not compute what torch "
            "computes (a one-step LSTM and GRU came out tenths away from torch even with 32-bit types), so the "
            "FPGA targets refuse recurrent layers",
            hint="use a CPU or GPU target (cpu-onnxruntime, cpu-inductor), or a 1-D convolution over time",
        )


def check_pruning(source: ModelSource, settings: Settings) -> None:
    """Layer names in ``prune.exclude`` exist, and Torch-Pruning is there for structured pruning."""
    cfg = settings.prune
    if cfg.method == "none":
        return
    if cfg.method == "structured" and not _installed("torch_pruning"):
        raise BackendUnavailable(
            "structured pruning needs Torch-Pruning, which is not installed", hint="pip install 'edgekit[quant]'"
        )
    if cfg.sparsity == 0 and cfg.method != "2:4":
        raise ConfigError(f"--prune {cfg.method} with sparsity 0 prunes nothing", hint="give a sparsity, e.g. 0.5")
    weighted = [name for name, kind in analyze(instantiate(source)).layers if kind in WEIGHTED]
    unknown = sorted(set(cfg.exclude) - set(weighted))
    if unknown:
        raise ConfigError(
            f"prune.exclude names layer(s) the model does not have: {', '.join(unknown)}",
            hint=f"weighted layers of this model: {', '.join(weighted)}",
        )
