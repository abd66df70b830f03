"""Stage 1: load the data, build the float model, train it, save weights and golden vectors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekit.core.artifacts import FloatModel, ModelSource
from edgekit.core.config import Settings
from edgekit.core.errors import InputError
from edgekit.core.jsonio import write_json
from edgekit.core.metrics import task_metric
from edgekit.core.progress import say
from edgekit.model.data import Dataset
from edgekit.model.torch_model import instantiate
from edgekit.model.training import batched_outputs, fit, seed_everything
from edgekit.model.zoo import ModelSpec, user_error, where_in_user_code

__all__ = ["UNQUANTIZED", "train_float_model"]

UNQUANTIZED = "golden_unquantized_outputs.npy"  # a brevitas model's outputs with its quantizers disabled


def _check_model(model: nn.Module, spec: ModelSpec, x: np.ndarray, per_sample: tuple[int, ...], why: str) -> None:
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(x[:2]))
    except (RuntimeError, ValueError, TypeError) as err:  # torch's shape errors
        raise InputError(
            f"model {spec.name!r} does not accept input of shape {tuple(x.shape[1:])} "
            f"(recipe input_shape): {str(err).splitlines()[0]}{where_in_user_code(err)}",
            hint=f"make input_shape in {spec.recipe.source} match the model's first layer",
        ) from err
    except Exception as err:  # anything else the user's forward raises
        raise user_error(err, f"the forward pass of model {spec.name!r}") from err
    if tuple(out.shape[1:]) != per_sample:
        raise InputError(
            f"model {spec.name!r} outputs shape {tuple(out.shape[1:])} per sample, not {per_sample}: {why}",
            hint="make the model's last layer give that shape, or check the data loader's labels or targets",
        )


def train_float_model(
    spec: ModelSpec, source: ModelSource, settings: Settings, data: Dataset, out_dir: Path
) -> FloatModel:
    """Train from scratch (seeded, deterministic) and write weights and golden vectors to ``out_dir``."""
    started = time.perf_counter()
    x_train, y_train, x_test, y_test, classes = data.x_train, data.y_train, data.x_test, data.y_test, data.classes
    seed_everything(settings.train.seed)
    model = instantiate(source)
    if spec.recipe.task == "classification":
        _check_model(model, spec, x_train, (len(classes),), "its data has that many classes")
    else:
        _check_model(model, spec, x_train, tuple(y_train.shape[1:]), "its data's targets have that shape")
    standardized: dict[str, object] = {}
    if settings.train.standardize:  # trained on standardized features, then folded: the model takes raw ones
        from edgekit.model.standardize import Standardized, feature_stats, first_layer, fold_into

        mean, std = feature_stats(x_train)
        name, layer = first_layer(model)
        history = fit(Standardized(model, mean, std, x_train.ndim), x_train, y_train, settings.train,
                      desc=f"train {spec.name}")  # fmt: skip
        fold_into(layer, mean, std)
        standardized = {"folded_into": name, "mean": mean.tolist(), "std": std.tolist()}
        say(f"  standardized {len(mean)} input features while training, folded into {name}: the model takes raw "
            "features")  # fmt: skip
    else:
        history = fit(model, x_train, y_train, settings.train, desc=f"train {spec.name}")
    outputs = batched_outputs(model, x_test, threads=settings.train.threads)
    metric_name = spec.recipe.metric
    history.append({"held_out_" + metric_name: task_metric(metric_name, outputs, y_test)})
    if any(type(m).__module__.startswith("brevitas.nn") for m in model.modules()):
        # a brevitas model's outputs above are its quantized forward (the build's reference); its float twin,
        # the same weights with every quantizer disabled, is reported beside it
        from brevitas.graph.calibrate import quantization_status_manager

        off = {"disable_act_quant": True, "disable_weight_quant": True, "disable_bias_quant": True}
        with quantization_status_manager(model, is_training=False, **off):
            np.save(out_dir / UNQUANTIZED, batched_outputs(model, x_test, threads=settings.train.threads))

    torch.save(model.state_dict(), out_dir / "model.pt")
    np.save(out_dir / "golden_inputs.npy", x_test)
    np.save(out_dir / "golden_labels.npy", y_test)
    np.save(out_dir / "golden_float_outputs.npy", outputs)
    info = {
        "history": history,
        "preprocessing": data.preprocessing,
        "n_train": len(x_train),
        "data_sha256": data.sha256,
        "standardized": standardized,
    }
    write_json(out_dir / "train.json", info)
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
