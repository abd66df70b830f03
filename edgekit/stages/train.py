"""Stage 1: load the data, build the float model, train it, save weights and golden vectors."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.artifacts import FloatModel, ModelSource
from edgekit.config import Settings
from edgekit.errors import ConfigError, InputError
from edgekit.metrics import task_metric
from edgekit.progress import bar, say
from edgekit.torch_model import instantiate
from edgekit.zoo import ModelSpec, call_with_options, data_loader

__all__ = ["TRAINER", "load_data", "train_float_model"]

TRAINER = f"edgekit float trainer, torch {torch.__version__}"

_REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def load_data(spec: ModelSpec, settings: Settings) -> dict[str, Any]:
    """The recipe's data, checked against the recipe's input shape."""
    loader = data_loader(spec.recipe)
    data = call_with_options(loader, settings.data_options, f"data loader {spec.recipe.data!r}")
    if not isinstance(data, Mapping) or any(k not in data for k in _REQUIRED):
        raise InputError(
            f"data loader {spec.recipe.data!r} must return a dict with {', '.join(_REQUIRED)}",
            hint="see models/jet_tagger/data.py for the expected form",
        )
    expected = tuple(spec.recipe.input_shape)
    for split in ("x_train", "x_test"):
        shape = tuple(np.shape(data[split])[1:])
        if shape != expected:
            raise InputError(
                f"model {spec.name!r} expects samples of shape {expected} (recipe input_shape) "
                f"but its data's {split} has samples of shape {shape}",
                hint=f"fix input_shape in {spec.recipe.source} or the data loader",
            )
        if len(data[split]) == 0:
            raise InputError(f"data loader {spec.recipe.data!r} returned an empty {split}")
    return dict(data)


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


def _seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def _batched_outputs(model: nn.Module, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    with torch.no_grad():
        parts = [model(torch.from_numpy(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float32)


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

    cfg = settings.train
    generator = _seed_everything(cfg.seed)
    model = instantiate(source)
    _check_model(model, spec, x_train, len(classes))
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay)
    else:
        raise ConfigError(f"unknown optimizer {cfg.optimizer!r}")
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    history: list[dict[str, float]] = []
    epochs = bar(range(cfg.epochs), desc=f"train {spec.name}", total=cfg.epochs, unit="epoch")
    for epoch in epochs:
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        total, count = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        scheduler.step()
        model.eval()
        history.append({"epoch": epoch + 1, "loss": total / max(count, 1)})
    model.eval()
    outputs = _batched_outputs(model, x_test)
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
