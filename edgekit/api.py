"""The Python API on objects and arrays: ``edgekit.compile`` a model you hold, ``edgekit.load`` what it built.

::

    import edgekit
    build = edgekit.compile(net, data=(x_train, y_train, x_test, y_test),
                            targets=["cpu-onnxruntime-int8", "fpga-xcvu13p"], quant="w6a8")
    print(build)                                  # one line per target: passed, metric, max |diff|
    scores = edgekit.load(build.build_dir, "fpga-xcvu13p").predict(x_new)

Both are thin layers over :func:`edgekit.pipeline.compile.compile_model` and the backends' runners, the same code the
``edgekit`` command runs: a build made here is a build folder like any other (``edgekit validate`` reads it,
except that a model handed over as an object can only be rebuilt in the Python session that holds it).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import ConfigError, InputError

__all__ = ["Deployed", "compile", "load"]

DataArg = str | Path | Sequence[Any] | Mapping[str, Any] | None


def _set_flags(settings: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``{"train": {"epochs": 5}}`` as ``["train.epochs=5"]`` (a key with dots, a layer's path, is quoted)."""
    flags = []
    for key, value in settings.items():
        part = f'"{key}"' if "." in str(key) else str(key)
        name = f"{prefix}.{part}" if prefix else part
        if isinstance(value, Mapping) and value:
            flags.extend(_set_flags(value, name))
        else:
            plain = list(value) if isinstance(value, tuple) else value
            flags.append(f"{name}={json.dumps(plain)}" if not isinstance(plain, Mapping) else f"{name}={{}}")
    return flags


def _data_file(data: Sequence[Any] | Mapping[str, Any], folder: Path) -> Path:
    """Arrays in memory as a split ``.npz`` for the built-in loader (its content, not its path, keys the cache)."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    if isinstance(data, Mapping):
        missing = [k for k in keys if k not in data]
        if missing:
            raise InputError(
                f"data has keys {', '.join(map(str, data))}; it needs {', '.join(keys)}",
                hint="data=dict(x_train=..., y_train=..., x_test=..., y_test=...), or a tuple of the four",
            )
        arrays = {k: np.asarray(data[k]) for k in keys}
        if data.get("classes") is not None:
            arrays["classes"] = np.asarray([str(c) for c in data["classes"]])
    else:
        if len(data) != 4:
            raise InputError(
                f"data is a sequence of {len(data)} items; it must be (x_train, y_train, x_test, y_test)",
                hint="for an autoencoder pass the inputs as their own targets: (x_train, x_train, x_test, x_test)",
            )
        arrays = dict(zip(keys, (np.asarray(a) for a in data), strict=True))
    for name, array in arrays.items():
        if array.dtype.kind == "O":
            raise InputError(f"data's {name} holds Python objects (dtype object), not numbers")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def compile(  # the verb users look for; it shadows the builtin only inside this module, which never calls it
    model: Any,
    data: DataArg = None,
    targets: Sequence[str] = (),
    *,
    quant: str | None = None,
    prune: str | None = None,
    recipe: str | None = None,
    out: str | Path | None = None,
    tiny: bool = False,
    settings: Mapping[str, Any] | None = None,
    force: bool = False,
    quiet: bool = False,
) -> Any:
    """Build and validate ``model`` for each of ``targets``; returns a :class:`~edgekit.pipeline.request.BuildResult`.

    ``model``: an ``nn.Module`` (trained further from its current weights by the recipe's trainer; set
    ``settings={"train": {"epochs": 0}}`` to take it as trained), a function that returns one (called with
    torch seeded at 0), a zoo name
    or ``"module:factory"``. ``data``: ``(x_train, y_train, x_test, y_test)`` (or a dict of those, with
    ``classes``), a data file (``.npz``, ``.npy``, ``.h5``, ``.csv``, ``.parquet``), or None for the recipe's
    loader. Without a ``recipe``, integer labels make a classification, other numbers a regression, targets
    equal to the inputs a reconstruction. ``quant``/``prune`` take the command's shorthands (``"w6a8"``,
    ``"2:4"``); ``settings`` any setting as a nested dict (``{"gates": {"min_metric": 0.9}}``). ``out=None``
    builds in a new temporary folder (``result.build_dir``).

    Raises :class:`~edgekit.core.errors.EdgekitError` for bad input, as the command does (``err.hint`` says what to
    do); a failed validation gate is not an exception: ``result.exit_code`` is 1 and ``result.report`` says which.

    >>> from torch import nn                                               # doctest: +SKIP
    >>> net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 5))  # doctest: +SKIP
    >>> result = edgekit.compile(net, data=(x_tr, y_tr, x_te, y_te), targets=["cpu-onnxruntime"])  # doctest: +SKIP
    >>> result.report.passed                                              # doctest: +SKIP
    True
    """
    from edgekit.core.progress import silenced
    from edgekit.model.objects import spec_for
    from edgekit.pipeline.compile import compile_model
    from edgekit.pipeline.request import CompileRequest

    spec = spec_for(model)
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="edgekit-build-"))
    data_path: str | None
    if data is None:
        data_path = None
    elif isinstance(data, str | Path):
        data_path = str(data)
    else:
        data_path = str(_data_file(data, Path(tempfile.mkdtemp(prefix="edgekit-data-"))))
    request = CompileRequest(
        model=spec,
        targets=tuple(targets),
        out=root,
        recipe=recipe,
        tiny=tiny,
        quant=quant,
        prune=prune,
        overrides=tuple(_set_flags(settings or {})),
        force=force,
        data=data_path,
    )
    if quiet:
        with silenced():
            return compile_model(request)
    return compile_model(request)


@dataclass
class Deployed:
    """One compiled artifact of a build, loaded to run on your arrays: ``predict(x)``, then ``close()``.

    ``x`` is what the model takes (``input_shape`` per sample, float32, the inputs as the data loader gave
    them); one sample without the batch axis is taken too and answered likewise. A quantized target whose
    model is deployed only up to ``quant.deploy_until`` returns what the device computes (that part's output).

    >>> with edgekit.load("build/jet_tagger", "cpu-onnxruntime-int8") as target:  # doctest: +SKIP
    ...     scores = target.predict(x)                                          # doctest: +SKIP
    """

    target: str
    input_shape: tuple[int, ...]
    description: str
    batch_size: int
    _runner: Any = field(repr=False)

    def predict(self, x: Any) -> np.ndarray:
        """The artifact's outputs for ``x`` (one row per sample)."""
        array = np.asarray(x, dtype=np.float32)
        single = array.shape == self.input_shape
        if single:
            array = array[None]
        if tuple(array.shape[1:]) != self.input_shape:
            raise InputError(
                f"{self.target} takes samples of shape {self.input_shape}; x has shape {array.shape}",
                hint=f"pass an array of shape (n, {', '.join(map(str, self.input_shape))})",
            )
        if len(array) == 0:
            raise InputError(f"x holds no samples for {self.target}")
        array = np.ascontiguousarray(array)
        parts = [self._runner.run(array[i : i + self.batch_size]) for i in range(0, len(array), self.batch_size)]
        outputs = np.concatenate(parts)
        return outputs[0] if single else outputs

    def close(self) -> None:
        """Release the artifact (emulator processes, sessions)."""
        self._runner.close()

    def __enter__(self) -> Deployed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(build_dir: str | Path, target: str | None = None) -> Deployed:
    """The compiled ``target`` of a build folder, ready to ``predict`` (the only target when not named).

    The build is checked as ``edgekit validate`` checks it (references unchanged, artifacts present), and the
    target's backend must be able to run here (an FPGA target needs g++ for its emulation).

    >>> with edgekit.load("build/jet_tagger", "cpu-onnxruntime") as target:  # doctest: +SKIP
    ...     target.predict(x).argmax(axis=1)  # doctest: +SKIP
    """
    from edgekit.backends import get_backend
    from edgekit.core.errors import BackendUnavailable
    from edgekit.pipeline.reopen import open_build

    opened = open_build(Path(build_dir))
    compiled = list(opened.compiled)
    if target is None:
        if len(compiled) != 1:
            raise ConfigError(
                f"build {build_dir} holds {len(compiled)} compiled targets; name one",
                hint=f"edgekit.load({str(build_dir)!r}, target) with target one of: {', '.join(compiled) or 'none'}",
            )
        target = compiled[0]
    if target not in opened.compiled:
        raise ConfigError(
            f"target {target!r} is not compiled in {build_dir}", hint=f"compiled there: {', '.join(compiled) or 'none'}"
        )
    profile = opened.profile(target)
    backend = get_backend(profile.backend)
    reason = backend.unavailable_reason()
    if reason:
        raise BackendUnavailable(f"{target} cannot run here: {reason}")
    artifact = opened.compiled[target]
    runner = backend.load(artifact, opened.root / "targets" / target / artifact.path, profile)
    shape = tuple(int(d) for d in opened.manifest["model"]["input_shape"])
    batch = opened.settings(target).validation.batch_size
    return Deployed(target, shape, str(runner.description or profile.backend), batch, runner)
