"""A recipe's data, loaded through its loader and checked against the recipe's input shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgekit.config import Settings
from edgekit.errors import InputError
from edgekit.zoo import ModelSpec, call_with_options, data_loader

__all__ = ["load_data"]

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
