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

__all__ = ["TRAINER", "train_float_model", "training_targets"]

TRAINER = f"edgekit float trainer, torch {torch.__version__}"


def training_targets(task: str, y: object) -> np.ndarray:
    """Class indices (int64) for a classifier, float32 target arrays for a reconstruction."""
    if task == "classification":
        return np.asarray(y, dtype=np.int64)
    return np.ascontiguousarray(y, dtype=np.float32)


def _check_model(model: nn.Module, spec: ModelSpec, x: np.ndarray, per_sample: tuple[int, ...], why: str) -> None:
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(x[:2]))
    except (RuntimeError, ValueError, TypeError) as err:
        raise InputError(
            f"model {spec.name!r} does not accept input of shape {tuple(x.shape[1:])} "
            f"(recipe input_shape): {str(err).splitlines()[0]}",
            hint=f"make input_shape in {spec.recipe.source} match the model's first layer",
        ) from err
    if tuple(out.shape[1:]) != per_sample:
        raise InputError(
            f"model {spec.name!r} outputs shape {tuple(out.shape[1:])} per sample, not {per_sample}: {why}"
        )


def train_float_model(spec: ModelSpec, source: ModelSource, settings: Settings, out_dir: Path) -> FloatModel:
    """Train from scratch (seeded, deterministic) and write weights and golden vectors to ``out_dir``."""
    started = time.perf_counter()
    data = load_data(spec, settings)
    x_train = np.ascontiguousarray(data["x_train"], dtype=np.float32)
    y_train = training_targets(spec.recipe.task, data["y_train"])
    x_test = np.ascontiguousarray(data["x_test"], dtype=np.float32)
    y_test = training_targets(spec.recipe.task, data["y_test"])
    seed_everything(settings.train.seed)
    model = instantiate(source)
    if spec.recipe.task == "classification":
        n_classes = int(max(y_train.max(), y_test.max())) + 1
        classes = tuple(str(c) for c in data.get("classes", range(n_classes)))
        if len(classes) < n_classes:
            raise InputError(
                f"data loader {spec.recipe.data!r} names {len(classes)} classes but labels reach {n_classes}"
            )
        _check_model(model, spec, x_train, (len(classes),), "its data has that many classes")
    else:
        classes = ()
        if y_train.shape[0] != x_train.shape[0] or y_train.shape[1:] != y_test.shape[1:]:
            raise InputError(f"data loader {spec.recipe.data!r}: targets {y_train.shape} do not pair with inputs")
        _check_model(model, spec, x_train, tuple(y_train.shape[1:]), "its data's targets have that shape")
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
