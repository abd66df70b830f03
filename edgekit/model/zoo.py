"""Models: the reference zoo, model folders, and ``module:factory`` specs, with their recipes.

A model folder holds ``recipe.toml`` and the Python files it names
(``model = "model.py:build"``, ``data = "data.py:load"``). The zoo is the
checkout's top-level ``models/`` (``edgekit/_models`` in the wheel); it is not
an importable package, so files are loaded by path.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import tomllib
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from edgekit.core.artifacts import ModelSource
from edgekit.core.config import SETTINGS_SECTIONS, Layer, Settings, resolve_data_paths
from edgekit.core.errors import ConfigError, EdgekitError, InputError, UnknownNameError
from edgekit.core.provenance import combined_sha256, is_user_file, module_file, user_code_files
from edgekit.core.schema import build, check_table, to_plain
from edgekit.model.objects import OBJECT_PREFIX, registered

__all__ = [
    "RECIPE_SCHEMA_VERSION",
    "ModelSpec",
    "Recipe",
    "call_user_code",
    "list_models",
    "load_recipe",
    "models_dir",
    "resolve_model",
    "user_error",
    "where_in_user_code",
]

RECIPE_SCHEMA_VERSION = 1
CWD_HINT = "relative paths are taken from the current folder, {cwd}"


@dataclass(frozen=True)
class Recipe:
    schema_version: int
    name: str
    description: str
    model: str
    data: str
    input_shape: tuple[int, ...] = field(metadata={"min": 1})
    metric: Literal["accuracy", "roc_auc", "mse", "psnr"] = "accuracy"
    # classification: class scores against integer labels; reconstruction: outputs against target arrays
    # (an autoencoder's own input), trained with a mean squared error
    # regression: outputs against continuous targets, trained with a mean squared error, like a reconstruction
    task: Literal["classification", "reconstruction", "regression"] = "classification"
    latent_layer: str = ""  # reconstruction: the layer whose output is the compressed representation
    readout_bits: int = field(default=0, metadata={"min": 0, "max": 64})  # bits per input value as read out
    default_targets: tuple[str, ...] = ("cpu-onnxruntime",)
    train: Mapping[str, Any] = field(default_factory=dict)
    export: Mapping[str, Any] = field(default_factory=dict)
    latency: Mapping[str, Any] = field(default_factory=dict)
    validation: Mapping[str, Any] = field(default_factory=dict)
    gates: Mapping[str, Any] = field(default_factory=dict)
    quant: Mapping[str, Any] = field(default_factory=dict)
    prune: Mapping[str, Any] = field(default_factory=dict)
    synth: Mapping[str, Any] = field(default_factory=dict)
    model_options: Mapping[str, Any] = field(default_factory=dict)
    data_options: Mapping[str, Any] = field(default_factory=dict)
    tiny: Mapping[str, Any] = field(default_factory=dict)
    sweep: Mapping[str, Any] = field(default_factory=dict)  # edgekit sweep's default grid and targets
    folder: str = ""
    source: str = ""
    content_sha256: str = ""

    def settings_layers(self, tiny: bool, model_options: bool = True) -> list[Layer]:
        """The recipe's settings (and its ``[tiny]`` table); relative data paths are the recipe folder's.

        ``model_options=False`` leaves out the options of the recipe's own factory (``[model_options]`` and
        ``[tiny] model_options``): a recipe borrowed for another model supplies data, training and gates only.
        """
        base = Path(self.folder) if self.folder else Path.cwd()
        skipped = () if model_options else ("model_options",)
        table = {k: to_plain(getattr(self, k)) for k in SETTINGS_SECTIONS if getattr(self, k) and k not in skipped}
        layers = [Layer(self.source, resolve_data_paths(table, base))]
        if tiny:
            tiny_table = {k: v for k, v in to_plain(self.tiny).items() if k not in skipped}
            layers.append(Layer(f"{self.source} [tiny]", resolve_data_paths(tiny_table, base)))
        return layers

    def with_data_file(self, path: str) -> Recipe:
        """This recipe reading its data from ``path`` through the built-in loader (``--data``).

        The recipe's own loader options (``[data_options]``, ``[tiny] data_options``) were its loader's: they are
        left out; training, gates and the task stay.
        """
        tiny = {k: v for k, v in self.tiny.items() if k != "data_options"}
        return replace(self, data=BUILTIN_LOADER, data_options={"path": str(Path(path).resolve())}, tiny=tiny)


BUILTIN_LOADER = "edgekit.model.data_files:load"
RENAMED_LOADERS = {"edgekit.data_files": "edgekit.model.data_files"}  # recipes written before the package layout


@dataclass(frozen=True)
class ModelSpec:
    """A model to build: where its code is, its recipe, and a hash of both."""

    name: str
    source: ModelSource
    recipe: Recipe
    code_sha256: str
    borrowed_recipe: bool = False  # the recipe is another model's: its model_options are not this model's


def _packaged_or_checkout(name: str, checkout: str) -> Path:
    packaged = Path(str(resources.files("edgekit") / name))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / checkout


def models_dir() -> Path:
    return _packaged_or_checkout("_models", "models")


def list_models() -> list[Recipe]:
    """The model zoo's recipes (``edgekit models``).

    >>> import edgekit
    >>> "jet_tagger" in [r.name for r in edgekit.list_models()]
    True
    """
    return [load_recipe(p) for p in sorted(models_dir().glob("*/recipe.toml"))]


def load_recipe(path: Path) -> Recipe:
    if not path.is_file():
        raise InputError(f"recipe {path} does not exist", hint=CWD_HINT.format(cwd=Path.cwd()))
    raw = path.read_bytes()
    source = str(path)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(
            f"recipe {path} is not valid TOML: {err}", hint="fix the TOML at the line and column named"
        ) from err
    if data.get("schema_version") != RECIPE_SCHEMA_VERSION:
        raise ConfigError(
            f"{source}: schema_version is {data.get('schema_version')!r}; "
            f"this edgekit reads version {RECIPE_SCHEMA_VERSION}",
        )
    for reserved in ("folder", "source", "content_sha256"):
        if reserved in data:
            raise ConfigError(f"{source}: {reserved!r} is set by edgekit", hint="remove it from the recipe")
    recipe = build(Recipe, data, source)
    classifier_metric = recipe.metric in ("accuracy", "roc_auc")
    if classifier_metric != (recipe.task == "classification"):
        raise ConfigError(
            f"{source}: metric {recipe.metric!r} does not fit task {recipe.task!r}",
            hint="classification takes accuracy or roc_auc; reconstruction and regression take mse or psnr",
        )
    layers = recipe.settings_layers(tiny=False)
    check_table(Settings, layers[0].table, source)
    check_table(Settings, to_plain(recipe.tiny), source, "tiny")
    return replace(
        recipe,
        folder=str(path.parent),
        source=source,
        content_sha256=hashlib.sha256(raw).hexdigest(),
    )


def _recipe_from(spec: str | None) -> Recipe | None:
    if spec is None:
        return None
    path = Path(spec)
    if path.suffix == ".toml":
        return load_recipe(path)
    if path.is_dir():
        return load_recipe(path / "recipe.toml")
    folder = models_dir() / spec
    if not (folder / "recipe.toml").is_file():
        raise UnknownNameError(
            f"unknown recipe {spec!r}",
            hint="give a zoo model name or a recipe TOML path",
        )
    return load_recipe(folder / "recipe.toml")


GENERIC_RECIPE = "the built-in recipe (a data file and no --recipe)"


def generic_recipe(model: str) -> Recipe:
    """The recipe of a model that brings its own data file and no recipe: edgekit's default training and gates.

    The input shape and, for labels that are not class indices, the task come from the file (see
    :func:`edgekit.model.data_files.summarize`).
    """
    return Recipe(
        schema_version=RECIPE_SCHEMA_VERSION,
        name=model,
        description="a model of your own, on your data file",
        model=model,
        data=BUILTIN_LOADER,
        input_shape=(1,),
        tiny={"train": {"epochs": 2}},
        folder=str(Path.cwd()),
        source=GENERIC_RECIPE,
    )


def _recipe_or_generic(recipe: str | None, data: str | None, spec: str) -> Recipe | None:
    """The recipe named, else the built-in one when a data file is given, else None."""
    return _recipe_from(recipe) or (generic_recipe(spec) if data is not None else None)


def _object_model(spec: str, recipe: str | None, data: str | None) -> ModelSpec:
    """A model object handed to edgekit.compile, registered under the key ``spec`` names."""
    key = spec.removeprefix(OBJECT_PREFIX)
    model = registered(key)
    chosen = _recipe_or_generic(recipe, data, spec)
    if chosen is None:
        raise ConfigError(
            f"the model object ({type(model).__name__}) comes with no data or recipe",
            hint="pass data=(x_train, y_train, x_test, y_test), data='events.npz', or recipe='jet_tagger'",
        )
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(model).__name__).lower()
    source = ModelSource("object", key, type(model).__name__)
    return ModelSpec(name, source, chosen, key, borrowed_recipe=True)


def _onnx_model(spec: str, recipe: str | None, data: str | None) -> ModelSpec:
    """An ONNX file taken as it is; onnxruntime's run of it is the reference."""
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"ONNX file {spec} does not exist", hint=CWD_HINT.format(cwd=Path.cwd()))
    chosen = _recipe_or_generic(recipe, data, spec)
    if chosen is None:
        raise ConfigError(
            f"ONNX file {spec} comes with no data (its inputs and labels) or recipe",
            hint="add --data FILE (.npz, .h5, .csv, ...), or --recipe jet_tagger (a zoo model whose data fits)",
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    source = ModelSource("onnx", str(path.resolve()), "")
    return ModelSpec(path.stem, source, chosen, digest, borrowed_recipe=True)


def _module_model(spec: str, recipe: str | None, data: str | None) -> ModelSpec:
    """``module:factory``: an importable module's function, or the function of this session's ``__main__``."""
    module_name, _, factory = spec.partition(":")
    if not module_name or not factory:
        raise ConfigError(
            f"model {spec!r} is not of the form module:factory", hint="e.g. mynets:build (mynets.py, def build)"
        )
    if module_name == "__main__":  # a notebook's or a script's own function: built here, kept as an object
        fn = getattr(sys.modules["__main__"], factory, None)
        if not callable(fn):
            raise ConfigError(
                f"{spec!r}: this session's __main__ has no function {factory!r}",
                hint="define it in a cell (or the script) before compiling, or pass the model itself",
            )
        from edgekit.model.objects import spec_for

        return resolve_model(spec_for(fn), recipe, data)
    chosen = _recipe_or_generic(recipe, data, spec)
    if chosen is None:
        raise ConfigError(
            f"model {spec!r} comes with no recipe (data, training, metric)",
            hint="add --data FILE (your inputs and labels), --recipe jet_tagger (a zoo model whose data fits) "
            "or --recipe path/to/recipe.toml",
        )
    found = module_file(module_name)
    code_hash = _user_code([found, *_data_files(chosen)]) if found else module_name
    _import_module(module_name)
    source = ModelSource("module", module_name, factory)
    return ModelSpec(f"{module_name.rsplit('.', 1)[-1]}_{factory}", source, chosen, code_hash, borrowed_recipe=True)


def _folder_recipe(spec: str, folder: Path) -> Path:
    """The recipe.toml of a model folder, or of the zoo model ``spec`` names."""
    if folder.is_dir():
        recipe_path = folder / "recipe.toml"
        if not recipe_path.is_file():
            raise InputError(
                f"model folder {folder} has no recipe.toml",
                hint="a model folder holds recipe.toml, model.py and data.py: copy models/jet_tagger to start",
            )
    else:
        if "/" in spec or spec.endswith(".py"):
            raise InputError(
                f"model folder {spec} does not exist",
                hint=CWD_HINT.format(cwd=Path.cwd()),
            )
        recipe_path = models_dir() / spec / "recipe.toml"
        if not recipe_path.is_file():
            known = ", ".join(r.name for r in list_models())
            raise UnknownNameError(
                f"unknown model {spec!r}",
                hint=f"zoo models: {known} (edgekit models); or a model folder, or module:factory",
            )
    return recipe_path


def resolve_model(spec: str, recipe: str | None = None, data: str | None = None) -> ModelSpec:
    """``spec`` is a zoo name, a model folder, an ONNX file, or ``module:factory`` (with ``recipe`` or ``data``).

    >>> import edgekit
    >>> spec = edgekit.resolve_model("jet_tagger")
    >>> spec.name, tuple(spec.recipe.input_shape)
    ('jet_tagger', (16,))
    """
    if spec.startswith(OBJECT_PREFIX):  # a model object handed to edgekit.compile
        return _object_model(spec, recipe, data)
    if spec.lower().endswith(".onnx"):  # a file taken as it is; onnxruntime's run of it is the reference
        return _onnx_model(spec, recipe, data)
    folder = Path(spec)
    if ":" in spec and not folder.exists():
        return _module_model(spec, recipe, data)
    recipe_path = _folder_recipe(spec, folder)
    chosen = _recipe_from(recipe) or load_recipe(recipe_path)
    file_name, _, factory = chosen.model.partition(":")
    model_file = recipe_path.parent / file_name
    if not model_file.is_file() or not factory:
        raise ConfigError(
            f"{chosen.source}: model = {chosen.model!r} must be 'file.py:function' in {folder}",
            hint='e.g. model = "model.py:build"',
        )
    code = _user_code([model_file, *_data_files(chosen)])
    source = ModelSource("file", str(model_file.resolve()), factory)
    return ModelSpec(recipe_path.parent.name, source, chosen, code)


_SEEN: dict[Path, str] = {}  # the user's files, by the content they had when edgekit last hashed them


def _user_code(roots: list[Path]) -> str:
    """The hash of the user's code (``roots`` and the modules of theirs they import), and a fresh import of it.

    In a long-lived process (a notebook) a module edited since it was imported would otherwise run as it
    was, and so would every module that imported names from it: when any file of the user's code changed,
    all of its modules (and the user's packages above them) are dropped from ``sys.modules``, so building
    the model imports what the hash describes.
    """
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in user_code_files(roots)}
    if any(_SEEN.get(p) != d for p, d in digests.items()):
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if path and Path(path).resolve() in digests:
                parts = name.split(".")
                for depth in range(len(parts), 0, -1):
                    parent = sys.modules.get(".".join(parts[:depth]))
                    parent_file = getattr(parent, "__file__", None)
                    if parent_file and (depth == len(parts) or is_user_file(Path(parent_file))):
                        sys.modules.pop(".".join(parts[:depth]), None)
    _SEEN.update(digests)
    return combined_sha256(digests)


def _data_files(recipe: Recipe) -> list[Path]:
    """The data loader's file: in the recipe's folder (``data.py:load``), or a module's (``pkg.mod:load``)."""
    name = recipe.data.partition(":")[0]
    if name.endswith(".py"):
        path = Path(recipe.folder) / name
        return [path] if path.is_file() else []
    found = module_file(name)
    return [found] if found is not None else []


def where_in_user_code(err: BaseException) -> str:
    """`` (at model.py:12)``: the innermost frame of the user's own code in ``err``'s traceback, if any."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if is_user_file(Path(f.filename))]
    return f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""


def user_error(err: BaseException, what: str) -> InputError:
    """An error raised inside the user's own code, named by where it happened (the caller keeps the cause)."""
    text = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
    return InputError(
        f"{what} raised {type(err).__name__}{': ' + text if text else ''}{where_in_user_code(err)}",
        hint="the error is in that code, not in edgekit: fix it there and run again",
    )


def _import_module(name: str) -> ModuleType:
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.append(str(Path.cwd()))  # a module beside the user, as python -c finds it
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and name.startswith(err.name):
            raise InputError(
                f"cannot import module {name!r}: {err}",
                hint="is it in the current folder, on PYTHONPATH, or installed in this environment?",
            ) from err
        raise user_error(err, f"importing module {name!r}") from err
    except EdgekitError:
        raise
    except Exception as err:  # the user's module failed while it was imported
        raise user_error(err, f"importing module {name!r}") from err


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise InputError(f"{path} does not exist", hint=CWD_HINT.format(cwd=Path.cwd()))
    # keyed by the file's content too: an edited file is run again, never taken from sys.modules as it was
    digest = hashlib.sha256(str(path.resolve()).encode() + path.read_bytes()).hexdigest()[:12]
    module_name = f"edgekit_model_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path} cannot be loaded as Python", hint="a model or data file is a .py file")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)  # its sibling modules import by name; never ahead of installed packages
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except EdgekitError:
        del sys.modules[module_name]
        raise
    except Exception as err:  # a syntax error, a missing import, an error at its top level
        del sys.modules[module_name]
        raise user_error(err, f"loading {path}") from err
    return module


def load_callable(kind: str, location: str, attr: str) -> Callable[..., Any]:
    """The factory or loader ``attr`` from a file path (kind "file") or a module name."""
    module = _load_file(Path(location)) if kind == "file" else _import_module(location)
    fn = getattr(module, attr, None)
    if not callable(fn):
        functions = sorted(n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_"))
        raise ConfigError(
            f"{location} has no function {attr!r}", hint=f"functions in it: {', '.join(functions) or 'none'}"
        )
    return fn  # type: ignore[no-any-return]


def data_loader(recipe: Recipe) -> Callable[..., Any]:
    file_name, _, attr = recipe.data.partition(":")
    file_name = RENAMED_LOADERS.get(file_name, file_name)
    if file_name.endswith(".py"):
        return load_callable("file", str(Path(recipe.folder) / file_name), attr)
    return load_callable("module", file_name, attr)


def call_user_code(fn: Callable[..., Any], options: Mapping[str, Any], what: str) -> Any:
    """Call a factory or loader with recipe options.

    Options it does not take and arguments it needs that the recipe does not give are named before the call;
    an exception raised inside it becomes an InputError naming ``what`` and the line, with the cause kept.
    """
    where = f"{what} in {Path(inspect.getsourcefile(fn) or '?').name}" if inspect.isfunction(fn) else what
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to check against
        params = None
    if params is not None:
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        unknown = [k for k in options if k not in params]
        if unknown and not takes_any:
            raise ConfigError(
                f"{where} does not take option(s) {', '.join(unknown)}",
                hint=f"it takes: {', '.join(params) or 'no options'}",
            )
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL)
        needed = [n for n, p in params.items()
                  if p.default is inspect.Parameter.empty and p.kind not in (*positional, inspect.Parameter.VAR_KEYWORD)
                  and n not in options]  # fmt: skip
        if needed or any(p.kind is inspect.Parameter.POSITIONAL_ONLY and p.default is p.empty for p in params.values()):
            section = "model_options" if "factory" in what else "data_options"
            raise ConfigError(
                f"{where} needs argument(s) {', '.join(needed) or '(positional-only)'}, which the recipe does not give",
                hint=f"set them in the recipe's [{section}] or with --set {section}.NAME=VALUE, or give them defaults",
            )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    try:
        return fn(**kwargs)
    except EdgekitError:  # a loader may raise edgekit's own errors (the zoo's do): they already say what to do
        raise
    except Exception as err:
        raise user_error(err, where) from err
