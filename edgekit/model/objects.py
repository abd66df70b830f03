"""Models handed to edgekit as Python objects (``edgekit.compile(net, ...)``), kept for the life of the process.

A build names its model by where the code is (a file, a module); an object made in a notebook cell has no such
place. It is kept here under a key that hashes what defines it: its class (and the class's source, where
Python can find it: a cell's is), its ``repr`` (the layer sizes), and its weights. Every stage that needs the
model gets a fresh deep copy, so the object the user holds is never trained or changed by edgekit.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
from typing import Any

from edgekit.core.errors import ConfigError, InputError

__all__ = ["OBJECT_PREFIX", "object_key", "object_spec", "register", "registered", "spec_for"]

OBJECT_PREFIX = "python-object:"  # a model spec naming a registered object: python-object:<key>
_OBJECTS: dict[str, Any] = {}


def object_key(model: Any) -> str:
    """The content key of a model object: its class, the class's source, its repr and its weights."""
    digest = hashlib.sha256()
    cls = type(model)
    digest.update(f"{cls.__module__}.{cls.__qualname__}\0{model!r}\0".encode())
    with contextlib.suppress(OSError, TypeError):  # no source kept (a class made by exec): repr and weights decide
        digest.update(inspect.getsource(cls).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def register(model: Any) -> str:
    """Keep a copy of ``model`` and return its key (the same model gives the same key, so builds cache)."""
    key = object_key(model)
    _OBJECTS.setdefault(key, copy.deepcopy(model))
    return key


def object_spec(model: Any) -> str:
    """The model spec of ``model`` for a :class:`~edgekit.pipeline.request.CompileRequest`."""
    return OBJECT_PREFIX + register(model)


def registered(key: str) -> Any:
    """A fresh copy of the registered model ``key``."""
    if key not in _OBJECTS:
        raise InputError(
            f"the model of this build was a Python object ({key}) of another Python session",
            hint="rebuild it with edgekit.compile(model, ...) in this session, or save its factory in a module "
            "and use module:factory",
        )
    return copy.deepcopy(_OBJECTS[key])


def spec_for(model: Any) -> str:
    """The model spec of what a user hands over: a spec string as it is; a module, or a function that
    returns one (a notebook's ``build``), as a registered object."""
    from torch import nn

    if isinstance(model, str):
        return model
    if hasattr(model, "__fspath__"):
        return str(model.__fspath__())
    if isinstance(model, nn.Module):
        return object_spec(model)
    name = getattr(model, "__name__", repr(model))
    if callable(model):
        import torch

        try:  # seeded as a zoo factory is: the same function gives the same weights, so its builds cache
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                made = model()
        except Exception as err:
            from edgekit.model.zoo import user_error

            raise user_error(err, f"the model factory {name!r}") from err
        if not isinstance(made, nn.Module):
            raise ConfigError(
                f"the model factory {name!r} returned {type(made).__name__}, not a torch.nn.Module",
                hint="pass the model, or a function that returns it",
            )
        return object_spec(made)
    raise ConfigError(
        f"the model is a {type(model).__name__}: edgekit takes an nn.Module, a function that returns one, "
        "a zoo name, a model folder or 'module:factory'",
        hint="e.g. edgekit.compile(net, data=(x_train, y_train, x_test, y_test))",
    )
