"""A build planned before it touches its folder: the model resolved, settings merged once, every target and
quantization plan checked (see :mod:`edgekit.pipeline.planning`), the build folder chosen."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from edgekit.core.artifacts import ModelSource
from edgekit.core.config import (
    Layer,
    Settings,
    design_top_name,
    merge_settings,
    parse_set_flags,
    prune_shorthand,
    quant_shorthand,
)
from edgekit.core.errors import InputError
from edgekit.core.precision import QuantPlan
from edgekit.core.progress import say
from edgekit.core.targets import split_profile_overrides
from edgekit.model.data import Dataset
from edgekit.model.torch_model import instantiate
from edgekit.model.zoo import GENERIC_RECIPE, ModelSpec, resolve_model
from edgekit.pipeline.given_graphs import brevitas_layers, check_brevitas_model, check_onnx_file
from edgekit.pipeline.planning import (
    TargetPlan,
    check_logic_size,
    check_memory,
    check_overrides_used,
    check_pruning,
    check_recurrent,
    check_synthesis,
    overrides_for,
    plan_quantization_for,
    plan_target,
)
from edgekit.pipeline.request import CompileRequest

__all__ = ["BuildPlan", "build_root", "plan_build", "raw_feature_precision"]


def build_root(request: CompileRequest, spec: ModelSpec) -> Path:
    """``--out``, or ``build/NAME`` (``build/NAME-tiny`` for the tiny variant)."""
    return Path(request.out) if request.out else Path("build") / (spec.name + ("-tiny" if request.tiny else ""))


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build decides before it touches its folder: settings, targets, quantization plans."""

    request: CompileRequest
    spec: ModelSpec
    settings: Settings
    source: ModelSource
    plans: list[TargetPlan]
    quant_plans: dict[str, QuantPlan]
    root: Path
    brevitas: bool = False  # the model's layers are brevitas': its own quantizers, its QONNX export on the FPGA


def plan_build(request: CompileRequest) -> BuildPlan:
    """Resolve and check a build without running it: a bad setting, target or precision fails here (exit 2)."""
    if not isinstance(request.model, str):  # an nn.Module or its factory: kept for this process, named by content
        from edgekit.model.objects import spec_for

        request = replace(request, model=spec_for(request.model))
    spec: ModelSpec = resolve_model(request.model, request.recipe, request.data)
    if request.data is not None:
        spec = replace(spec, recipe=spec.recipe.with_data_file(request.data))
    model_layers = [*spec.recipe.settings_layers(request.tiny, model_options=not spec.borrowed_recipe)]
    if request.quant is not None:
        model_layers.append(quant_shorthand(request.quant))
    if request.prune is not None:
        model_layers.append(prune_shorthand(request.prune))
    if request.synth:
        model_layers.append(Layer("--synth", {"synth": {"enabled": True}}))
    set_layer = parse_set_flags(request.overrides)
    set_settings, every_target, per_target = split_profile_overrides(set_layer.table)
    model_layers.append(Layer(set_layer.source, set_settings))
    settings = merge_settings(model_layers)
    design_top_name(settings.export, spec.recipe.name)  # a top name no module could take fails before any work
    if request.data is not None:  # the file's samples give the input shape, whatever the borrowed recipe says
        from edgekit.model.data_files import summarize

        options = settings.data_options
        found = summarize(str(options.get("path", request.data)), options.get("inputs"), options.get("labels"))
        recipe = replace(spec.recipe, input_shape=found.sample_shape)
        if spec.recipe.source == GENERIC_RECIPE and found.task != "classification":  # no recipe: the labels decide
            recipe = replace(recipe, task=found.task, metric="mse")  # type: ignore[arg-type]
        spec = replace(spec, recipe=recipe)
    source = replace(spec.source, options=settings.model_options)
    target_names = request.targets or spec.recipe.default_targets
    brevitas = source.kind != "onnx" and bool(brevitas_layers(instantiate(source)))
    given = source.kind == "onnx" or brevitas  # a graph (a file, a brevitas model's export) compiled as it is
    plans = [
        plan_target(name, model_layers, settings.quant.enabled, given, overrides_for(name, every_target, per_target))
        for name in dict.fromkeys(target_names)
    ]
    check_overrides_used(every_target, per_target, [p.profile for p in plans])
    for plan in plans:
        if plan.profile.overrides:
            say(f"[plan] {plan.profile.name}: {plan.profile.source}")
    if source.kind == "onnx":  # a file taken as it is: its own input shape, float ONNX targets only
        import tempfile

        from edgekit.stages.onnx_file import check_batches, inspect_file

        info = inspect_file(Path(source.location))
        plans = check_onnx_file(info.quant_nodes, settings, plans, info.inexact_quant)
        if not info.quant_nodes:  # qonnx's executor sizes a QONNX graph to each batch itself
            with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as folder:
                check_batches(Path(source.location), info.input_shape, Path(folder))
        check_memory(settings, plans, info.input_shape)
        spec = replace(spec, recipe=replace(spec.recipe, input_shape=info.input_shape))
        return BuildPlan(request, spec, settings, source, plans, {}, build_root(request, spec))
    if brevitas:
        plans = check_brevitas_model(source, settings, plans, tuple(spec.recipe.input_shape))
    if settings.train.standardize:  # the fold needs a first layer it can fold into: checked before any work
        from edgekit.model.standardize import first_layer

        first_layer(instantiate(source))
    quant_plans = plan_quantization_for(source, settings, plans, tuple(spec.recipe.input_shape))
    check_pruning(source, settings)
    if spec.recipe.task == "reconstruction" and spec.recipe.latent_layer:  # read by the report, checked now
        from edgekit.model.reconstruction import latent_size

        latent_size(instantiate(source), spec.recipe.latent_layer, tuple(spec.recipe.input_shape))
    check_logic_size(source, settings, plans, quant_plans, tuple(spec.recipe.input_shape))
    check_recurrent(source, plans)
    check_synthesis(settings, plans)
    check_memory(settings, plans, tuple(spec.recipe.input_shape))
    root = build_root(request, spec)
    if root.exists() and not root.is_dir():
        raise InputError(f"--out {root} is a file, not a directory", hint="give --out a folder (new or a build's)")
    return BuildPlan(request, spec, settings, source, plans, quant_plans, root, brevitas)


def raw_feature_precision(planned: BuildPlan, data: Dataset) -> BuildPlan:
    """With train.standardize and --quant, the precision raw features need, unless the user set it (re-planned).

    The standardization is folded into the first layer, so the FPGA's input quantizer and the first layer's
    weights see the raw features: both get the bits the features' ranges need (say'd, and in the manifest's
    request as ``--set`` overrides). An INT8 target's input stays 8 bits: the range warning says what that costs.
    """
    settings = planned.settings
    if not (settings.train.standardize and settings.quant.enabled) or any(p.family == "int8" for p in planned.plans):
        return planned
    from edgekit.core.config import flatten_layer_tables
    from edgekit.model.standardize import first_layer, raw_feature_precision

    name, _ = first_layer(instantiate(planned.source))
    layer = flatten_layer_tables(settings.quant.layers).get(name, {})
    input_bits = settings.quant.input_bits or settings.quant.activation_bits
    raised, text = raw_feature_precision(
        data.x_train, input_bits, layer.get("weight_bits") or settings.quant.weight_bits, name
    )
    overrides = []
    if "input_bits" in raised and settings.quant.input_bits is None:
        overrides.append(f"quant.input_bits={raised['input_bits']}")
    if name in raised and layer.get("weight_bits") is None:
        overrides.append(f'quant.layers."{name}".weight_bits={raised[name]}')
    if not overrides:
        return planned
    say(f"standardize: the deployed model takes raw features, so {text} ({' '.join('--set ' + o for o in overrides)})")
    request = planned.request
    return plan_build(replace(request, overrides=(*request.overrides, *overrides)))
