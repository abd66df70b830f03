"""The built-in data loader: inputs and labels from a ``.npz``, ``.npy``, ``.h5``/``.hdf5``, ``.csv`` or ``.parquet``.

Chosen by ``--data FILE`` (or ``data = "edgekit.model.data_files:load"`` in a recipe, with ``[data_options]``).
Arrays are named by key (``.npz``, ``.h5``) or by column (``.csv``, ``.parquet``)::

    edgekit compile mynets:tagger --recipe jet_tagger --data events.npz
    edgekit compile mynets:tagger --recipe jet_tagger --data events.csv --set data_options.labels=class
    edgekit compile mynets:tagger --recipe jet_tagger --data x.npy --set data_options.labels=y.npy

A file that holds ``x_train``, ``y_train``, ``x_test`` and ``y_test`` is taken as split; otherwise the
held-out part is ``test_path`` (a second file of the same form) or a shuffled ``test_fraction`` of the samples.
What the arrays must hold (numbers, integer class labels, one label per sample) is checked by
:mod:`edgekit.model.data` after this returns, as for every loader.
"""

from __future__ import annotations

import csv
import functools
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import InputError

__all__ = ["FORMATS", "FileSummary", "load", "summarize"]

FORMATS = (".npz", ".npy", ".h5", ".hdf5", ".csv", ".parquet")
INPUT_KEYS = ("x", "X", "inputs", "features", "data")  # looked for, in this order, when ``inputs`` is not given
LABEL_KEYS = ("y", "Y", "labels", "label", "targets", "target", "class")
SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")
AUTOENCODER = "inputs"  # labels = "inputs": the targets are the inputs themselves (an autoencoder)


def _columns_hint(names: Sequence[str]) -> str:
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return f"the file holds: {shown or 'nothing'}"


def _extra(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise InputError(
            f"reading {what} needs the Python package {module.split('.')[0]}, which is not installed",
            hint="pip install 'edgekit[data]'",
        ) from err


def _table(path: Path) -> dict[str, np.ndarray]:
    """Every array (key or column) of one file, by name."""
    if not path.is_file():
        raise InputError(f"data file {path} does not exist", hint=f"relative paths are taken from {Path.cwd()}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {k: archive[k] for k in archive.files}
        if suffix == ".npy":
            return {path.stem: np.load(path, allow_pickle=False)}
        if suffix in (".h5", ".hdf5"):
            h5py = _extra("h5py", f"{path.name} (HDF5)")
            found: dict[str, np.ndarray] = {}

            def take(name: str, obj: Any) -> None:  # visititems stops at the first callback that returns a value
                if isinstance(obj, h5py.Dataset):
                    found[name] = obj[()]

            with h5py.File(path, "r") as f:
                f.visititems(take)
            return found
        if suffix == ".csv":
            return _csv(path)
        if suffix == ".parquet":
            parquet = _extra("pyarrow.parquet", f"{path.name} (Parquet)")
            table = parquet.read_table(path)
            return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    except InputError:
        raise
    except Exception as err:  # a truncated archive, a file that is not what its suffix says
        raise InputError(
            f"data file {path} cannot be read as {suffix}: {type(err).__name__}: {str(err).splitlines()[0][:200]}",
            hint="check that the file is complete and of the kind its suffix names",
        ) from err
    raise InputError(
        f"data file {path} has suffix {suffix or '(none)'}; the built-in loader reads {', '.join(FORMATS)}",
        hint="convert it, or write a data loader (data.py:load) and name it in a recipe",
    )


def _csv(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise InputError(f"data file {path} is empty", hint="a CSV file needs a header row and one row per sample")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if all(_is_number(h) for h in header):
        raise InputError(
            f"data file {path} has no header row (its first row is numbers)",
            hint="add a first row naming the columns, so inputs and labels can be named",
        )
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        values = []
        for i, row in enumerate(body):
            if len(row) != len(header):
                raise InputError(
                    f"data file {path}: line {i + 2} has {len(row)} fields, the header {len(header)}",
                    hint="every row needs one value per column",
                )
            cell = row[j].strip()
            if not _is_number(cell):
                raise InputError(
                    f"data file {path}: column {name!r} holds {cell!r} at line {i + 2}, not a number",
                    hint="encode categories as integers; leave out columns that are not inputs or labels",
                )
            values.append(float(cell))
        columns[name] = np.asarray(values, dtype=np.float64)
    return columns


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _pick(table: dict[str, np.ndarray], names: Sequence[str], path: Path, what: str) -> str:
    for name in names:
        if name in table:
            return name
    raise InputError(
        f"data file {path}: no {what} found (looked for {', '.join(names)})",
        hint=f"name them with --set data_options.{what}=NAME; {_columns_hint(list(table))}",
    )


def _input_key(table: dict[str, np.ndarray], path: Path) -> str:
    """The inputs' key when none is given: a ``.npy`` file's one array, else the first of INPUT_KEYS."""
    return next(iter(table)) if path.suffix.lower() == ".npy" else _pick(table, INPUT_KEYS, path, "inputs")


def _is_columns(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".parquet")


def _arrays(
    path: Path, inputs: str | Sequence[str] | None, labels: str | None
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """(inputs, labels, class names or None) of one file."""
    table = _table(path)
    if _is_columns(path):
        label = labels if labels not in (None, AUTOENCODER) else None
        if labels is None:
            label = _pick(table, LABEL_KEYS, path, "labels")
        names = [inputs] if isinstance(inputs, str) else list(inputs or [c for c in table if c != label])
        missing = [n for n in [*names, *([label] if label else [])] if n not in table]
        if missing:
            raise InputError(f"data file {path} has no column {missing[0]!r}", hint=_columns_hint(list(table)))
        x = np.stack([np.asarray(table[n], dtype=np.float64) for n in names], axis=1)
        y = x if label is None else table[label]
        return x, y, None
    if inputs is not None and not isinstance(inputs, str):
        raise InputError(f"data file {path}: inputs must name one array (a list names columns of a CSV or Parquet)")
    x_key = inputs or _input_key(table, path)
    if x_key not in table:
        raise InputError(f"data file {path} has no array {x_key!r}", hint=_columns_hint(list(table)))
    x = table[x_key]
    if labels == AUTOENCODER:
        y = x
    elif labels is not None and Path(labels).suffix.lower() == ".npy":  # a .npy pair: inputs here, labels there
        y = next(iter(_table(path.parent / labels if not Path(labels).is_absolute() else Path(labels)).values()))
    else:
        others = {k: v for k, v in table.items() if k != x_key}
        y_key = labels or _pick(others, LABEL_KEYS, path, "labels")
        if y_key not in table:
            raise InputError(f"data file {path} has no array {y_key!r}", hint=_columns_hint(list(table)))
        y = table[y_key]
    classes = table.get("classes")
    return x, y, None if classes is None else [str(c) for c in np.asarray(classes).ravel()]


def _split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not 0.0 < fraction < 1.0:
        raise InputError(f"data_options.test_fraction is {fraction}; it must lie between 0 and 1")
    n_test = round(len(x) * fraction)
    if n_test < 1 or n_test >= len(x):
        raise InputError(
            f"data file {path} has {len(x)} samples: a test fraction of {fraction} leaves "
            f"{n_test} for testing and {len(x) - n_test} for training",
            hint="give more samples, another test_fraction, or a separate test_path",
        )
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def load(
    path: str,
    inputs: str | Sequence[str] | None = None,
    labels: str | None = None,
    test_path: str = "",
    test_fraction: float = 0.2,
    seed: int = 0,
    max_samples: int = 0,
    classes: Sequence[str] = (),
) -> dict[str, Any]:
    """Inputs and labels from a data file, split into training and held-out parts.

    ``inputs``: the array key (``.npz``, ``.h5``) or the columns (``.csv``, ``.parquet``; default every column
    but the labels); default the first of ``x``, ``X``, ``inputs``, ``features``, ``data``. ``labels``: the key
    or column of the labels (default the first of ``y``, ``labels``, ``label``, ``targets``, ``target``,
    ``class``), a second ``.npy`` file beside the first, or ``"inputs"`` for an autoencoder (targets = inputs).
    ``test_path``: a held-out file of the same form; else ``test_fraction`` of the samples, shuffled with
    ``seed``. ``max_samples`` (0: all) keeps that many training samples (and a fifth as many test samples
    when the file is split), for quick runs. ``classes`` names the classes (default the file's ``classes``).

    Example: ``load("events.npz")`` with ``np.savez("events.npz", x=features, y=labels)``.
    """
    source = Path(path)
    table = _table(source) if source.suffix.lower() in (".npz", ".h5", ".hdf5") else {}
    named: list[str] | None
    if all(k in table for k in SPLIT_KEYS) and not test_path:
        x_train, y_train, x_test, y_test = (table[k] for k in SPLIT_KEYS)
        if labels == AUTOENCODER:
            y_train, y_test = x_train, x_test
        named = [str(c) for c in np.asarray(table["classes"]).ravel()] if "classes" in table else None
    else:
        x, y, named = _arrays(source, inputs, labels)
        if len(x) != len(y):
            raise InputError(
                f"data file {source}: {len(x)} input samples but {len(y)} labels; they must pair up",
                hint="one label per sample, in the same order",
            )
        if test_path:
            x_train, y_train = x, y
            x_test, y_test, _ = _arrays(Path(test_path), inputs, labels)
        else:
            x_train, y_train, x_test, y_test = _split(x, y, test_fraction, seed, source)
    if max_samples:
        x_train, y_train = x_train[:max_samples], y_train[:max_samples]
        x_test, y_test = x_test[: max(1, max_samples // 5)], y_test[: max(1, max_samples // 5)]
    result: dict[str, Any] = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    if classes or named:
        result["classes"] = list(classes or named or ())
    return result


@dataclass(frozen=True)
class FileSummary:
    """What a data file says about the model that reads it, before any training."""

    sample_shape: tuple[int, ...]
    task: str  # "classification" (integer labels), "regression" (other numbers) or "reconstruction"


@functools.lru_cache(maxsize=8)
def _summary(path: str, mtime_ns: int, inputs: str | tuple[str, ...] | None, labels: str | None) -> FileSummary:
    data = load(path, inputs, labels, test_fraction=0.5)
    y = np.asarray(data["y_train"])
    integral = y.dtype.kind in "biu" or (y.dtype.kind == "f" and bool(np.all(y == np.round(y))))
    if labels == AUTOENCODER:
        task = "reconstruction"
    else:
        task = "classification" if integral and (y.ndim == 1 or y.shape[1:] == (1,)) else "regression"
    return FileSummary(tuple(int(d) for d in np.asarray(data["x_train"]).shape[1:]), task)


def summarize(path: str, inputs: str | Sequence[str] | None = None, labels: str | None = None) -> FileSummary:
    """The shape of one input sample in a data file (the model's ``input_shape``) and the task its labels imply."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"data file {path} does not exist", hint=f"relative paths are taken from {Path.cwd()}")
    key = inputs if inputs is None or isinstance(inputs, str) else tuple(inputs)
    found = _summary(str(source.resolve()), source.stat().st_mtime_ns, key, labels)
    if not found.sample_shape:
        raise InputError(
            f"data file {path}: its inputs are one number per sample; a model needs at least one feature axis",
            hint="store the inputs as an array of shape (samples, features)",
        )
    return found
