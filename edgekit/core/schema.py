"""Strict conversion of TOML tables into frozen dataclasses.

Every config file edgekit reads (target profiles, model recipes, backend options,
``--set`` flags) goes through :func:`check_table` and :func:`build`, so unknown
keys and wrong types fail the same way everywhere: the file, the table, the key
and the allowed keys are named.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from edgekit.core.errors import ConfigError

T = TypeVar("T")

__all__ = ["build", "check_table", "deep_merge", "describe_type", "to_plain"]


def _fix_hint(source: str) -> str:
    """Where a bad value came from, so the user knows what to change."""
    if source.startswith("command line --set"):
        return "change that --set value; the settings table of docs/settings.md lists every key"
    if source == "--quant":
        return "--quant wNaM takes 2 to 16 bits for the weights (N) and the activations (M), e.g. --quant w6a8"
    if source == "--prune":
        return "a sparsity is a fraction below 1: --prune 0.8, --prune structured:0.5, --prune 2:4"
    return f"fix it in {source}" if source else ""


def _at(source: str, key: str) -> str:
    return f"{source}: {key}" if source else key


def describe_type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in get_args(tp) if a is not type(None)) + " (or absent)"
    if origin is tuple:
        return f"list of {describe_type(get_args(tp)[0])}"
    if origin in (dict, Mapping) or tp is dict:
        return "table"
    if dataclasses.is_dataclass(tp):
        return "table"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str, source: str, *, partial: bool) -> Any:
    """Check ``value`` against type ``tp`` and return it in its frozen form."""
    where = _at(source, key)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        options = [a for a in get_args(tp) if a is not type(None)]
        errors: list[ConfigError] = []
        for option in options:
            try:
                return _convert(option, value, key, source, partial=partial)
            except ConfigError as err:
                errors.append(err)
        raise (
            errors[0]
            if len(errors) == 1
            else ConfigError(f"{where}: expected {describe_type(tp)}, got {value!r}", hint=_fix_hint(source))
        )
    if origin is Literal:
        if value not in get_args(tp):
            allowed = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{where}: {value!r} is not allowed; choose one of {allowed}", hint=_fix_hint(source))
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected {describe_type(tp)}, got {value!r}", hint=_fix_hint(source))
        item_tp = get_args(tp)[0]
        return tuple(_convert(item_tp, v, f"{key}[{i}]", source, partial=partial) for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}", hint=_fix_hint(source))
        args = get_args(tp)
        if len(args) == 2 and args[1] is float:  # numbers read back from strict JSON: null is NaN
            return types.MappingProxyType({k: math.nan if v is None else v for k, v in value.items()})
        return types.MappingProxyType(dict(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}", hint=_fix_hint(source))
        return _build_dataclass(tp, value, key, source, partial=partial)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}", hint=_fix_hint(source))
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}", hint=_fix_hint(source))
        return value
    if tp is float:
        if value is None:  # strict JSON writes NaN as null (edgekit.core.jsonio); TOML has no null
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}", hint=_fix_hint(source))
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}", hint=_fix_hint(source))
        return value
    if tp is Any:
        return value
    raise TypeError(f"schema type {tp!r} at {where} is not supported")  # a bug, not user input


def _build_dataclass(cls: Any, data: Mapping[str, Any], table: str, source: str, *, partial: bool) -> Any:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        place = f"[{table}]" if table else "the top level"
        raise ConfigError(
            f"{source or 'config'}: unknown key{'s' if len(unknown) > 1 else ''} {names} in {place}",
            hint=f"allowed keys there: {', '.join(sorted(fields))}",
        )
    values = {}
    for name, value in data.items():
        key = f"{table}.{name}" if table else name
        values[name] = _convert(hints[name], value, key, source, partial=partial)
        _check_range(fields[name], values[name], _at(source, key), source)
    if partial:
        return values
    missing = [
        n
        for n, f in fields.items()
        if n not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        place = f" in [{table}]" if table else ""
        raise ConfigError(
            f"{source or 'config'}: missing required key(s) {', '.join(missing)}{place}", hint=_fix_hint(source)
        )
    return cls(**values)


def _check_range(field: dataclasses.Field[Any], value: Any, where: str, source: str) -> None:
    """Bounds declared as ``field(metadata={"min": ..., "max": ...})``; lists are checked per item."""
    low, high = field.metadata.get("min"), field.metadata.get("max")
    if low is None and high is None:
        return
    for item in value if isinstance(value, tuple) else (value,):
        if item is None:
            continue
        if (low is not None and item < low) or (high is not None and item > high):
            bounds = (
                f"between {low} and {high}"
                if low is not None and high is not None
                else (f"at least {low}" if low is not None else f"at most {high}")
            )
            raise ConfigError(f"{where}: {item!r} is out of range; it must be {bounds}", hint=_fix_hint(source))


def check_table(cls: type, data: Mapping[str, Any], source: str, table: str = "") -> None:
    """Validate the keys and types present in ``data`` (one config layer) without building."""
    _build_dataclass(cls, data, table, source, partial=True)


def build(cls: type[T], data: Mapping[str, Any], source: str = "", table: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``data``, rejecting unknown keys."""
    result: T = _build_dataclass(cls, data, table, source, partial=False)
    return result


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; any other value in ``override`` replaces the base value.

    An empty table clears the one below it: ``--set 'model_options={}'`` drops a recipe's factory options.
    """
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and value:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def to_plain(obj: Any) -> Any:
    """Dataclasses, mapping proxies and tuples as JSON-ready dicts and lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
