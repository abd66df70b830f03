"""Rebuilding a float model from its source and weights, and the torch reference runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.core.artifacts import FloatModel, ModelSource
from edgekit.core.errors import ConfigError, InputError
from edgekit.core.runner import RunnerBase
from edgekit.model.zoo import call_user_code, load_callable

__all__ = ["TorchRunner", "instantiate", "load_float_model", "load_module"]


def instantiate(source: ModelSource) -> nn.Module:
    if source.kind == "object":  # edgekit.compile(net): a fresh copy of the object, as it was handed over
        from edgekit.model.objects import registered

        model: Any = registered(source.location)
        return model  # type: ignore[no-any-return]
    factory = load_callable(source.kind, source.location, source.factory)
    model = call_user_code(factory, source.options, f"model factory {source.factory!r}")
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model factory {source.factory!r} in {source.location} returned {type(model).__name__}, "
            "not a torch.nn.Module",
            hint="the factory must return the model itself, an instance of a torch.nn.Module subclass",
        )
    return model


def _resize_to(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give layers the shapes a structurally pruned state dict has (channels and neurons removed)."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        weight = state.get(f"{prefix}weight")
        current = getattr(module, "weight", None)
        bias = state.get(f"{prefix}bias")
        if bias is not None and getattr(module, "bias", "absent") is None:  # a bias a fold added (standardize)
            module.bias = nn.Parameter(torch.empty_like(bias))
        if weight is None or not isinstance(current, torch.Tensor) or current.shape == weight.shape:
            continue
        module.weight = nn.Parameter(torch.empty_like(weight))
        if bias is not None:
            module.bias = nn.Parameter(torch.empty_like(bias))
        if isinstance(module, nn.Linear):
            module.out_features, module.in_features = weight.shape
        elif isinstance(module, nn.modules.conv._ConvNd):
            if module.groups > 1 and module.groups == module.in_channels:  # depthwise: one group per channel left
                module.groups = weight.shape[0] // (module.out_channels // module.groups)
            module.out_channels, module.in_channels = weight.shape[0], weight.shape[1] * module.groups
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.num_features = weight.shape[0]
            for buffer in ("running_mean", "running_var"):
                setattr(module, buffer, torch.empty_like(state[f"{prefix}{buffer}"]))


def load_float_model(model: FloatModel, build_root: Path) -> nn.Module:
    return load_module(model.source, build_root / model.weights)


def load_module(source: ModelSource, path: Path) -> nn.Module:
    """The model from its source with the weights at ``path`` (structurally pruned shapes included), in eval mode."""
    module = instantiate(source)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _resize_to(module, state)
        module.load_state_dict(state)
    except FileNotFoundError as err:
        raise InputError(f"float weights {path} are missing", hint="re-run edgekit compile") from err
    except (RuntimeError, EOFError, ValueError) as err:
        raise InputError(
            f"float weights {path} do not load into the model: {err}",
            hint="the file is corrupt or the model definition changed; re-run edgekit compile",
        ) from err
    return module.eval()


class TorchRunner(RunnerBase):
    """The float reference in torch eager mode, on the CPU."""

    clock = "wall clock (time.perf_counter_ns), host CPU"

    def __init__(self, module: nn.Module) -> None:
        self._module = module.eval()
        self.description = f"torch {torch.__version__} eager, fp32, {torch.get_num_threads()} threads"

    def run(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out: Any = self._module(torch.from_numpy(x))
        return np.asarray(out.numpy())

    def synchronize(self) -> None:
        """CPU eager calls return when the work is done."""

    def close(self) -> None:
        """Nothing to release."""
