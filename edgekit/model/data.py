"""A recipe's data: loaded once per build through its loader, checked, and hashed.

Every array is checked before any training, and a problem is named with the array, what is wrong and how
many values it concerns (exit code 2): strings or other non-numbers, NaN or infinite inputs, inputs and
labels of different lengths, labels that are not integer class indices (negative, fractional, one-hot),
targets that do not pair with their inputs. The content hash of the checked arrays is part of the float
stage's cache key, so regenerating a data file is seen even when the loader's options did not change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.core.config import Settings
from edgekit.core.errors import InputError
from edgekit.model.zoo import ModelSpec, call_user_code, data_loader

__all__ = ["Dataset", "input_range_warning", "load_data"]

_REQUIRED = ("x_train", "y_train", "x_test", "y_test")
_SAMPLES_SHOWN = 3  # where a problem is, at most this many positions


@dataclass(frozen=True)
class Dataset:
    """The checked arrays of one build: float32 inputs, int64 class indices or float32 targets."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]  # empty for a reconstruction
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    sha256: str = ""  # the content of everything above


def _where(mask: np.ndarray) -> str:
    """The first sample indices where ``mask`` (one row per sample) is set."""
    rows = np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))
    shown = ", ".join(str(int(i)) for i in rows[:_SAMPLES_SHOWN])
    return f"sample{'s' if len(rows) > 1 else ''} {shown}{', ...' if len(rows) > _SAMPLES_SHOWN else ''}"


def _numeric(name: str, value: Any, where: str) -> np.ndarray:
    """``value`` as a numeric array (refused: strings, objects that are not numbers, complex values)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:  # ragged lists
        raise InputError(f"{where}: {name} is not an array of numbers: {err}") from err
    if array.dtype.kind in "USO":
        try:
            array = array.astype(np.float64)
        except (ValueError, TypeError) as err:
            strings = array.dtype.kind in "US" or any(isinstance(v, str) for v in array.ravel()[:100])
            raise InputError(
                f"{where}: {name} holds {'strings' if strings else 'Python objects'} "
                f"(dtype {array.dtype}), not numbers: {str(err).splitlines()[0][:120]}",
                hint="convert it to a numeric numpy array in the loader (e.g. encode categories as integers)",
            ) from err
    if array.dtype.kind not in "biuf":
        raise InputError(
            f"{where}: {name} has dtype {array.dtype}; it must hold real numbers",
            hint="pass the real part, or split it",
        )
    if array.ndim == 0:
        raise InputError(
            f"{where}: {name} is a single number, not an array with one row per sample",
            hint="return arrays whose first axis runs over the samples",
        )
    return array


def _row_major(array: np.ndarray) -> np.ndarray:
    """``array`` with the strides of a fresh C-order array. numpy calls an array contiguous whatever the stride of
    a size-1 axis is (``images[:, None]``), and torch reads a (N, 1, H, W) batch whose channel stride is 1 as
    channels-last: its convolutions then output channels-last maps, which ``x.view(x.size(0), -1)`` refuses."""
    canonical = tuple(int(np.prod(array.shape[i + 1 :])) * array.itemsize for i in range(array.ndim))
    return array if array.strides == canonical else array.copy(order="C")


def _inputs(name: str, value: Any, expected: tuple[int, ...], spec: ModelSpec, where: str) -> np.ndarray:
    array = _numeric(name, value, where)
    if len(array) == 0:
        raise InputError(f"{where}: {name} is empty", hint="the loader must return at least one sample in each split")
    if tuple(array.shape[1:]) != expected:
        raise InputError(
            f"model {spec.name!r} expects samples of shape {expected} (recipe input_shape) "
            f"but its data's {name} has samples of shape {tuple(array.shape[1:])}",
            hint=f"fix input_shape in {spec.recipe.source} or the data loader",
        )
    with np.errstate(over="ignore", invalid="ignore"):
        single = _row_major(np.ascontiguousarray(array, dtype=np.float32))
    bad = ~np.isfinite(single)
    if bad.any():
        n_nan = int(np.isnan(single).sum())
        beyond = int((np.isinf(single) & np.isfinite(array)).sum()) if array.dtype.kind == "f" else 0
        parts = [f"{n_nan} NaN"] if n_nan else []
        if int(bad.sum()) - n_nan - beyond:
            parts.append(f"{int(bad.sum()) - n_nan - beyond} infinite")
        if beyond:
            parts.append(f"{beyond} beyond float32's range")
        raise InputError(
            f"{where}: {name} has {' and '.join(parts)} value(s), in {_where(bad)} "
            f"({int(bad.reshape(len(bad), -1).any(axis=1).sum())} of {len(single)} samples)",
            hint="drop or impute those samples in the loader; the model computes in float32",
        )
    return single


def _labels(name: str, value: Any, n: int, where: str) -> np.ndarray:
    array = _numeric(name, value, where)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InputError(
            f"{where}: {name} has shape {array.shape}: labels must be integer class indices, one per sample",
            hint="for one-hot labels or per-class scores use y.argmax(axis=1)"
            if array.ndim == 2
            else "give one integer label per sample",
        )
    if len(array) != n:
        raise InputError(
            f"{where}: {name} has {len(array)} labels for {n} input samples; they must pair up",
            hint="the loader must return one label per input sample, in the same order",
        )
    if array.dtype.kind == "f":
        fractional = ~np.isfinite(array) | (array != np.round(array))
        if fractional.any():
            raise InputError(
                f"{where}: labels must be integer class indices, but {name} has {int(fractional.sum())} "
                f"non-integer value(s) (dtype {array.dtype}), in {_where(fractional)}",
                hint='class labels are 0, 1, 2, ...; for continuous targets set task = "regression" and '
                'metric = "mse" in the recipe',
            )
    negative = array < 0
    if negative.any():
        raise InputError(
            f"{where}: labels must be integer class indices from 0, but {name} has {int(negative.sum())} "
            f"negative value(s), in {_where(negative)}",
            hint="map the classes to 0 .. n_classes - 1 in the loader",
        )
    return np.ascontiguousarray(array, dtype=np.int64)


def _targets(name: str, value: Any, n: int, where: str) -> np.ndarray:
    array = _numeric(name, value, where)
    if array.ndim == 1:  # one continuous target per sample: the model's (N, 1) output
        array = array[:, None]
    if len(array) != n:
        raise InputError(
            f"{where}: {name} has {len(array)} rows for {n} input samples; they must pair up",
            hint="the loader must return one target per input sample, in the same order",
        )
    with np.errstate(over="ignore", invalid="ignore"):
        single = _row_major(np.ascontiguousarray(array, dtype=np.float32))
    bad = ~np.isfinite(single)
    if bad.any():
        raise InputError(
            f"{where}: {name} has {int(bad.sum())} NaN or infinite value(s), in {_where(bad)}",
            hint="drop or impute those samples in the loader",
        )
    return single


def _digest(arrays: list[np.ndarray], extra: Any) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def load_data(spec: ModelSpec, settings: Settings) -> Dataset:
    """The recipe's data, from its loader, checked against the recipe (input shape, task) and hashed."""
    loader = data_loader(spec.recipe)
    where = f"data loader {spec.recipe.data!r}"
    data = call_user_code(loader, settings.data_options, where)
    if not isinstance(data, Mapping) or any(k not in data for k in _REQUIRED):
        found = f"a dict with keys {', '.join(map(str, data))}" if isinstance(data, Mapping) else type(data).__name__
        raise InputError(
            f"{where} must return a dict with {', '.join(_REQUIRED)}; it returned {found}",
            hint="see models/jet_tagger/data.py for the expected form",
        )
    expected = tuple(spec.recipe.input_shape)
    x_train = _inputs("x_train", data["x_train"], expected, spec, where)
    x_test = _inputs("x_test", data["x_test"], expected, spec, where)
    classes: tuple[str, ...] = ()
    if spec.recipe.task == "classification":
        y_train = _labels("y_train", data["y_train"], len(x_train), where)
        y_test = _labels("y_test", data["y_test"], len(x_test), where)
        n_classes = int(max(y_train.max(), y_test.max())) + 1
        named = data.get("classes")
        classes = tuple(str(c) for c in (range(n_classes) if named is None else named))
        if len(classes) < n_classes:
            raise InputError(
                f"{where} names {len(classes)} classes ({', '.join(classes)}) but the labels reach {n_classes - 1}",
                hint="give one name per class in 'classes' (labels count from 0), or check the labels",
            )
    else:
        y_train = _targets("y_train", data["y_train"], len(x_train), where)
        y_test = _targets("y_test", data["y_test"], len(x_test), where)
        if y_train.shape[1:] != y_test.shape[1:]:
            raise InputError(
                f"{where}: y_train has targets of shape {y_train.shape[1:]} but y_test {y_test.shape[1:]}",
                hint="both splits must have targets of one shape",
            )
    preprocessing = dict(data.get("preprocessing") or {})
    sha = _digest([x_train, y_train, x_test, y_test], {"classes": classes, "preprocessing": preprocessing})
    return Dataset(x_train, y_train, x_test, y_test, classes, preprocessing, sha)


MIN_INPUT_STEPS = 16  # fewer distinct input codes than this over a feature's range, and its information is lost


def input_range_warning(x: np.ndarray, input_bits: int) -> str | None:
    """A warning when one shared ``input_bits`` quantizer cannot resolve every input feature.

    The input quantizer has one power-of-two scale for all features, set by the widest: a feature much
    narrower gets only a few of its codes (a pT in GeV beside features of order one gets integer steps, and
    the small ones round to a handful of values). Features are the columns of flat inputs, the channels of maps.
    """
    values = x.reshape(len(x), x.shape[1], -1) if x.ndim > 2 else x[:, :, None]
    spread = np.abs(values).max(axis=(0, 2)).astype(np.float64)
    used = spread > 0
    if used.sum() < 2:
        return None
    widest, narrowest = int(np.argmax(spread)), int(np.flatnonzero(used)[np.argmin(spread[used])])
    step = 2.0 ** np.ceil(np.log2(spread[widest])) / 2 ** (input_bits - 1)  # the shared quantizer's step
    steps = spread[narrowest] / step
    if steps >= MIN_INPUT_STEPS:
        return None
    axis = "channel" if x.ndim > 2 else "feature"
    return (
        f"input {axis}s differ in range by {spread[widest] / spread[narrowest]:.0f}x ({axis} {widest}: |x| up to "
        f"{spread[widest]:.3g}; {axis} {narrowest}: up to {spread[narrowest]:.3g}): the shared {input_bits}-bit input "
        f"quantizer steps by {step:.3g}, which leaves {axis} {narrowest} about {max(steps, 0):.1f} steps. Standardize "
        "the inputs in the data loader ((x - mean) / std per feature), or raise quant.input_bits (--quant wNaMiK)"
    )
