"""Strict JSON for every file and every ``--json`` output edgekit writes.

Python's ``json`` writes ``NaN`` and ``Infinity`` tokens by default, which are not JSON: JavaScript's
``JSON.parse``, ``jq`` and most other parsers reject the whole file. edgekit writes a non-finite number as
``null``, which means "not measured, or not a number" (a target that did not run, a metric that does not
apply, an infinite difference); when edgekit reads its own files back, a ``null`` in a number field becomes
NaN again (:func:`edgekit.core.schema.build`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from edgekit.core.schema import to_plain

__all__ = ["dumps", "finite", "write_json"]


def finite(value: Any) -> Any:
    """``value`` as plain JSON data with every NaN and infinity replaced by None (numpy scalars included)."""
    value = to_plain(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return finite(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return finite(tolist())
    return str(value)


def dumps(value: Any, *, indent: int | None = 1, sort_keys: bool = False) -> str:
    """Strict JSON text: no NaN or Infinity tokens (``allow_nan=False`` guards against any that slip through)."""
    return json.dumps(finite(value), indent=indent, sort_keys=sort_keys, allow_nan=False)


def write_json(path: Path, value: Any) -> None:
    """``value`` as strict JSON in ``path`` (a plain write: for files inside a stage's temporary folder)."""
    path.write_text(dumps(value) + "\n")
