"""Stage 1: load the data, build the float model, train it, save weights and golden vectors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekit.artifacts import FloatModel, ModelSource
from edgekit.config import Settings
from edgekit.data import load_data
from edgekit.errors import InputError
from edgekit.metrics import task_metric
from edgekit.progress import say
from edgekit.torch_model import instantiate
from edgekit.training import batched_outputs, fit, seed_everything
from edgekit.zoo import ModelSpec

__all__ = ["TRAINER", "train_float_model"]

TRAINER = f"edgekit float trainer, torch {torch.__version__}"


def _check_model(model: nn.Module, spec: ModelSpec, x: np.ndarray, n_classes: int) -> None:
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(x[:2]))
    except (RuntimeError, ValueError, TypeError) as err:
        raise InputError(
            f"model {spec.name!r} does not accept input of shape {tuple(x.shape[1:])} "
            f"(recipe input_shape): {str(err).splitlines()[0]}",
            hint=f"make input_shape in {spec.recipe.source} match the model's first layer",
        ) from err
    if out.ndim != 2 or out.shape[1] != n_classes:
        raise InputError(
            f"model {spec.name!r} outputs shape {tuple(out.shape[1:])} per sample; its data has {n_classes} classes",
        )


def train_float_model(spec: ModelSpec, source: ModelSource, settings: Settings, out_dir: Path) -> FloatModel:
    """Train from scratch (seeded, deterministic) and write weights and golden vectors to ``out_dir``."""
    started = time.perf_counter()
    data = load_data(spec, settings)
    x_train = np.ascontiguousarray(data["x_train"], dtype=np.float32)
    y_train = np.asarray(data["y_train"], dtype=np.int64)
    x_test = np.ascontiguousarray(data["x_test"], dtype=np.float32)
    y_test = np.asarray(data["y_test"], dtype=np.int64)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    classes = tuple(str(c) for c in data.get("classes", range(n_classes)))
    if len(classes) < n_classes:
        raise InputError(f"data loader {spec.recipe.data!r} names {len(classes)} classes but labels reach {n_classes}")

    seed_everything(settings.train.seed)
    model = instantiate(source)
    _check_model(model, spec, x_train, len(classes))
    history = fit(model, x_train, y_train, settings.train, desc=f"train {spec.name}")
    outputs = batched_outputs(model, x_test)
    metric_name = spec.recipe.metric
    history.append({"held_out_" + metric_name: task_metric(metric_name, outputs, y_test)})

    torch.save(model.state_dict(), out_dir / "model.pt")
    np.save(out_dir / "golden_inputs.npy", x_test)
    np.save(out_dir / "golden_labels.npy", y_test)
    np.save(out_dir / "golden_float_outputs.npy", outputs)
    info = {"history": history, "preprocessing": data.get("preprocessing", {}), "n_train": len(x_train)}
    (out_dir / "train.json").write_text(json.dumps(info, indent=1, default=str))
    wall = time.perf_counter() - started
    say(f"  trained {spec.name} in {wall:.1f} s: held-out {metric_name} {history[-1]['held_out_' + metric_name]:.4f}")
    return FloatModel(
        name=spec.name,
        source=source,
        input_shape=tuple(spec.recipe.input_shape),
        classes=classes,
        weights="model.pt",
        golden_inputs="golden_inputs.npy",
        golden_labels="golden_labels.npy",
        golden_float_outputs="golden_float_outputs.npy",
        n_parameters=sum(p.numel() for p in model.parameters()),
        train_wall_s=wall,
    )
