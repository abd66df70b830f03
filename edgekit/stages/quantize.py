"""Stage: the float model as a brevitas model, by PTQ (calibration + bias correction) or QAT.

QAT starts from the float weights, calibrates the activation quantizers on a
data subset first (so the scales start sensible), then fine-tunes with the
recipe's trainer at the quantization settings' epochs and learning rate.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from edgekit.core.artifacts import FloatModel, QuantizedModel
from edgekit.core.config import Settings
from edgekit.core.errors import ConfigError
from edgekit.core.fixed_formats import fixed_point_formats
from edgekit.core.jsonio import write_json
from edgekit.core.metrics import task_metric
from edgekit.core.precision import QuantPlan
from edgekit.core.progress import bar, say
from edgekit.model.brevitas_model import build_quant_model, rounded_slopes, split_quant_model
from edgekit.model.data import Dataset
from edgekit.model.learned_precision import (
    activation_modules,
    attach_activation_grids,
    attach_grids,
    bake_activation_grids,
    bake_grids,
    channel_bits,
    input_widths,
    resource_proxy,
)
from edgekit.model.sparsity import apply_masks, remove_masks, zero_masks
from edgekit.model.torch_model import load_float_model
from edgekit.model.training import batched_outputs, fit, seed_everything, training_threads
from edgekit.model.zoo import ModelSpec

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from brevitas.graph.calibrate import bias_correction_mode, calibration_mode

__all__ = ["quantize_model"]


def _calibrate(model: nn.Module, x: np.ndarray, batch_size: int, bias_correction: bool, desc: str) -> None:
    batches = [torch.from_numpy(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    model.eval()
    with torch.no_grad(), calibration_mode(model):
        for batch in bar(batches, desc=f"calibrate {desc}", unit="batch"):
            model(batch)
    if bias_correction:
        with torch.no_grad(), bias_correction_mode(model):
            for batch in bar(batches, desc=f"bias correction {desc}", unit="batch"):
                model(batch)


def _qat(
    model: fx.GraphModule, plan: QuantPlan, settings: Settings, data: Dataset, x_cal: np.ndarray, label: str
) -> tuple[list[dict[str, float]], QuantPlan, dict[str, list[int]]]:
    """QAT from calibrated quantizers; with quant.method "learned", each channel's weight grid learned too."""
    cfg = settings.quant
    with training_threads(settings.train.threads):
        _calibrate(model, x_cal, settings.train.batch_size, False, label)
    # Pruned zeros stay zero through QAT: the same prune -> fine-tune masks, now on the quantized layers.
    masks = zero_masks(model) if settings.prune.method in ("unstructured", "2:4") else {}
    if cfg.method != "learned":
        apply_masks(model, masks)
        history = fit(
            model, data.x_train, data.y_train, settings.train, desc=f"QAT {label}", epochs=cfg.qat_epochs,
            learning_rate=cfg.qat_learning_rate,
        )  # fmt: skip
        remove_masks(model)
        return history, plan, {}
    return _learned_qat(model, plan, settings, data, label, masks)


def _learned_qat(
    model: fx.GraphModule, plan: QuantPlan, settings: Settings, data: Dataset, label: str, masks: Any
) -> tuple[list[dict[str, float]], QuantPlan, dict[str, list[int]]]:
    """QAT with each channel's weight grid learned; with quant.learn_activations, each ReLU's and the input's
    width learned in the first half of the epochs, then set on its quantizer (and in the plan) for the rest."""
    cfg = settings.quant
    # the masks go into the grids (one parametrization per weight)
    attach_grids(model, masks, per_weight=cfg.learned_granularity == "weight")
    acts = activation_modules(model, [(layer.name, layer.kind) for layer in plan.layers])
    act_grids = attach_activation_grids(model, acts.values()) if cfg.learn_activations else {}
    widths = input_widths(model, act_grids)
    start = float(resource_proxy(model, widths).detach()) or 1.0

    def regularizer() -> torch.Tensor:
        return cfg.resource_weight * resource_proxy(model, widths) / start

    first = max(cfg.qat_epochs // 2, 1) if act_grids else cfg.qat_epochs
    history = _fit_part(model, settings, data, f"QAT {label} (learning widths)", first, regularizer, [])
    if act_grids:
        plan = _set_activation_widths(model, plan, acts)
        widths.clear()
        widths.update(input_widths(model, {}))
        if cfg.qat_epochs > first:
            desc = f"QAT {label} (activation widths set)"
            history = _fit_part(model, settings, data, desc, cfg.qat_epochs - first, regularizer, history)
    bake_grids(model)
    learned = channel_bits(model)
    emptied = [name for name, bits in learned.items() if not any(bits)]
    if emptied:
        raise ConfigError(
            f"learned precision removed every weight of {', '.join(emptied)} at quant.resource_weight "
            f"{cfg.resource_weight:g}: the network would compute a constant",
            hint="lower quant.resource_weight (0.05 to 0.5 keeps the jet tagger within about a point of float)",
        )
    for name, bits in learned.items():
        say(f"  learned precision: {name}: {min(bits)}-{max(bits)} bits per channel (median {int(np.median(bits))})")
    return history, plan, learned


def _fit_part(
    model: nn.Module,
    settings: Settings,
    data: Dataset,
    desc: str,
    epochs: int,
    regularizer: Any,
    history: list[dict[str, float]],
) -> list[dict[str, float]]:
    part = fit(
        model, data.x_train, data.y_train, settings.train, desc=desc, epochs=epochs,
        learning_rate=settings.quant.qat_learning_rate, regularizer=regularizer,
    )  # fmt: skip
    return history + [dict(h, epoch=len(history) + h["epoch"]) for h in part]


def _set_activation_widths(model: fx.GraphModule, plan: QuantPlan, acts: dict[str, str]) -> QuantPlan:
    """The learned activation widths baked into their quantizers and written into the plan."""
    widths = bake_activation_grids(model)
    by_module = {module: layer for layer, module in acts.items()}
    learned = {by_module[module]: width for module, width in widths.items()}
    for name, width in learned.items():
        say(f"  learned precision: {name}: activations {plan.layer(name).activation_bits} -> {width} bits")
    layers = tuple(
        dataclasses.replace(layer, activation_bits=learned[layer.name]) if layer.name in learned else layer
        for layer in plan.layers
    )
    return dataclasses.replace(plan, layers=layers)


def quantize_model(
    spec: ModelSpec,
    float_model: FloatModel,
    float_root: Path,
    settings: Settings,
    plan: QuantPlan,
    data: Dataset,
    out_dir: Path,
) -> QuantizedModel:
    started = time.perf_counter()
    cfg = settings.quant
    x_train = data.x_train
    seed_everything(settings.train.seed)
    order = np.random.default_rng(settings.train.seed).permutation(len(x_train))
    x_cal = x_train[order[: cfg.calibration_samples]]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brevitas warns about its own internals
        model = build_quant_model(load_float_model(float_model, float_root), plan, tuple(float_model.input_shape))
        label = f"{spec.name} ({plan.family})"
        for layer, requested, slope in rounded_slopes(model):
            say(f"  note: {layer}: LeakyReLU slope {requested:g} quantized to {slope!r}, so that every target "
                "computes slope * x exactly")  # fmt: skip
        learned: dict[str, list[int]] = {}
        asked_plan = plan
        if cfg.method == "ptq":
            with training_threads(settings.train.threads):
                _calibrate(model, x_cal, settings.train.batch_size, cfg.bias_correction, label)
            history: list[dict[str, float]] = []
        else:
            history, plan, learned = _qat(model, plan, settings, data, x_cal, label)
        golden_inputs = np.load(float_root / float_model.golden_inputs)
        golden_labels = np.load(float_root / float_model.golden_labels)
        outputs = batched_outputs(model, golden_inputs, threads=settings.train.threads)
        deployed = outputs
        if plan.host_tail:  # the artifacts compute up to the cut: their reference is the head's output
            head = split_quant_model(model, plan.host_tail, "head")
            deployed = batched_outputs(head, golden_inputs, threads=settings.train.threads)
        formats = fixed_point_formats(model, golden_inputs)
    metric = task_metric(spec.recipe.metric, outputs, golden_labels)
    torch.save(model.state_dict(), out_dir / "quant_model.pt")
    np.save(out_dir / "golden_quant_outputs.npy", deployed)
    write_json(
        out_dir / "quantize.json",
        {"plan": plan, "history": history, "held_out_metric": metric, "formats": formats, "learned_bits": learned},
    )
    wall = time.perf_counter() - started
    say(f"  {cfg.method.upper()} {label} in {wall:.1f} s: held-out {spec.recipe.metric} {metric:.4f}")
    return QuantizedModel(
        family=plan.family,
        plan=plan,
        method=cfg.method,
        weights="quant_model.pt",
        golden_quant_outputs="golden_quant_outputs.npy",
        held_out_metric=metric,
        wall_s=wall,
        formats=formats,
        learned_bits={name: tuple(bits) for name, bits in learned.items()},
        learned_activations={
            layer.name: (asked.activation_bits, layer.activation_bits)
            for layer, asked in zip(plan.layers, asked_plan.layers, strict=True)
            if learned and layer.kind in ("relu", "input") and cfg.learn_activations
        },
        resource_ratio=tuple(h["regularizer"] / cfg.resource_weight for h in history if "regularizer" in h)
        if cfg.resource_weight
        else (),
    )
