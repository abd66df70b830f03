"""Stage: prune the float model, in rounds of prune -> fine-tune, and report what is left per layer.

* unstructured: the smallest-magnitude weights, over all layers (``scope = "global"``)
  or layer by layer, to the target sparsity; zeros stay in place.
* structured: whole channels and neurons, removed physically through Torch-Pruning's
  dependency graph (so a removed conv channel also removes the matching inputs of the
  next layer); the output layer keeps its size.
* 2:4: in every group of four consecutive weights along a layer's input, the two
  smallest are zero (NVIDIA's semi-structured sparsity, 50%).

Sparsity rises linearly over ``steps`` rounds; each round fine-tunes with the recipe's trainer.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekit.core.artifacts import FloatModel
from edgekit.core.config import PruneSettings, Settings
from edgekit.core.jsonio import write_json
from edgekit.core.metrics import task_metric
from edgekit.core.progress import say
from edgekit.model.data import Dataset
from edgekit.model.sparsity import WEIGHTED, apply_masks, layer_report, remove_masks
from edgekit.model.torch_model import load_float_model
from edgekit.model.training import batched_outputs, fit
from edgekit.model.zoo import ModelSpec

__all__ = ["prune_model"]


def _weighted(model: nn.Module, exclude: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHTED) and n not in exclude]


def _weight(module: nn.Module) -> torch.Tensor:
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    return weight.detach()


def _magnitude_masks(layers: list[tuple[str, nn.Module]], sparsity: float, scope: str) -> dict[str, torch.Tensor]:
    weights = {name: _weight(m).abs() for name, m in layers}
    if scope == "global":
        everything = torch.cat([w.flatten() for w in weights.values()])
        k = int(sparsity * everything.numel())
        threshold = everything.kthvalue(k).values if k > 0 else torch.tensor(-1.0)
        return {name: (w > threshold).float() for name, w in weights.items()}
    masks = {}
    for name, w in weights.items():
        k = int(sparsity * w.numel())
        threshold = w.flatten().kthvalue(k).values if k > 0 else torch.tensor(-1.0)
        masks[name] = (w > threshold).float()
    return masks


def _two_four_masks(layers: list[tuple[str, nn.Module]]) -> dict[str, torch.Tensor]:
    masks = {}
    for name, module in layers:
        w = _weight(module).abs()
        flat = w.reshape(w.shape[0], -1)
        if flat.shape[1] % 4:
            say(f"  2:4 leaves {name} dense: its {flat.shape[1]} inputs per output are not a multiple of 4")
            continue
        groups = flat.reshape(flat.shape[0], -1, 4)
        keep = groups.argsort(dim=-1, descending=True)[..., :2]
        mask = torch.zeros_like(groups).scatter_(-1, keep, 1.0)
        masks[name] = mask.reshape(w.shape)
    return masks


def _structured(model: nn.Module, cfg: PruneSettings, spec: ModelSpec, data: Dataset, settings: Settings) -> None:
    import torch_pruning as tp

    layers = _weighted(model, ())
    output_layer = layers[-1][1]
    modules = dict(model.named_modules())
    ignored = [output_layer, *(modules[n] for n in cfg.exclude)]
    example = torch.zeros((1, *spec.recipe.input_shape))
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=cfg.sparsity,
        iterative_steps=cfg.steps,
        global_pruning=cfg.scope == "global",
        ignored_layers=ignored,
    )
    for step in range(cfg.steps):
        pruner.step()
        fit(model, data.x_train, data.y_train, settings.train, desc=f"fine-tune {step + 1}/{cfg.steps}",
            epochs=cfg.finetune_epochs, learning_rate=cfg.finetune_learning_rate)  # fmt: skip


def prune_model(
    spec: ModelSpec, float_model: FloatModel, float_root: Path, settings: Settings, data: Dataset, out_dir: Path
) -> FloatModel:
    started = time.perf_counter()
    cfg = settings.prune
    model = load_float_model(float_model, float_root)
    before = layer_report(model, float_model.input_shape)
    if cfg.method == "structured":
        _structured(model, cfg, spec, data, settings)
    else:
        layers = _weighted(model, cfg.exclude)
        masks: dict[str, torch.Tensor] = {}
        for step in range(cfg.steps):
            if cfg.method == "2:4":
                masks = masks or _two_four_masks(layers)  # one pattern, chosen on the trained weights
            else:
                masks = _magnitude_masks(layers, cfg.sparsity * (step + 1) / cfg.steps, cfg.scope)
            remove_masks(model)
            apply_masks(model, masks)
            fit(model, data.x_train, data.y_train, settings.train, desc=f"fine-tune {step + 1}/{cfg.steps}",
                epochs=cfg.finetune_epochs, learning_rate=cfg.finetune_learning_rate)  # fmt: skip
        remove_masks(model)
    after = layer_report(model, float_model.input_shape)

    for name in (float_model.golden_inputs, float_model.golden_labels):
        shutil.copyfile(float_root / name, out_dir / name)
    inputs = np.load(out_dir / float_model.golden_inputs)
    outputs = batched_outputs(model, inputs, threads=settings.train.threads)
    np.save(out_dir / "golden_float_outputs.npy", outputs)
    torch.save(model.state_dict(), out_dir / "model.pt")
    metric = task_metric(spec.recipe.metric, outputs, np.load(out_dir / float_model.golden_labels))
    report = {
        "method": cfg.method,
        "sparsity": cfg.sparsity,
        "before": before,
        "after": after,
        "held_out_metric": metric,
    }
    write_json(out_dir / "prune.json", report)
    wall = time.perf_counter() - started
    macs = after["totals"]["nonzero_macs"] / before["totals"]["nonzero_macs"]
    say(f"  pruned ({cfg.method}) in {wall:.1f} s: {macs:.0%} of the MACs left")
    say(f"  held-out {spec.recipe.metric} after pruning: {metric:.4f}")
    return FloatModel(
        name=float_model.name,
        source=float_model.source,
        input_shape=float_model.input_shape,
        classes=float_model.classes,
        weights="model.pt",
        golden_inputs=float_model.golden_inputs,
        golden_labels=float_model.golden_labels,
        golden_float_outputs="golden_float_outputs.npy",
        n_parameters=after["totals"]["nonzero_parameters"],
        train_wall_s=wall,
    )
