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
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from edgekit.artifacts import ModelSource
from edgekit.config import SETTINGS_SECTIONS, Layer, Settings
from edgekit.errors import ConfigError, InputError, UnknownNameError
from edgekit.schema import build, check_table, to_plain

__all__ = [
    "RECIPE_SCHEMA_VERSION",
    "ModelSpec",
    "Recipe",
    "call_with_options",
    "list_models",
    "load_recipe",
    "models_dir",
    "resolve_model",
]

RECIPE_SCHEMA_VERSION = 1


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
    task: Literal["classification", "reconstruction"] = "classification"
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

    def settings_layers(self, tiny: bool) -> list[Layer]:
        table = {k: to_plain(getattr(self, k)) for k in SETTINGS_SECTIONS if getattr(self, k)}
        layers = [Layer(self.source, table)]
        if tiny:
            layers.append(Layer(f"{self.source} [tiny]", to_plain(self.tiny)))
        return layers


@dataclass(frozen=True)
class ModelSpec:
    """A model to build: where its code is, its recipe, and a hash of both."""

    name: str
    source: ModelSource
    recipe: Recipe
    code_sha256: str


def _packaged_or_checkout(name: str, checkout: str) -> Path:
    packaged = Path(str(resources.files("edgekit") / name))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / checkout


def models_dir() -> Path:
    return _packaged_or_checkout("_models", "models")


def list_models() -> list[Recipe]:
    return [load_recipe(p) for p in sorted(models_dir().glob("*/recipe.toml"))]


def load_recipe(path: Path) -> Recipe:
    if not path.is_file():
        raise InputError(f"recipe {path} does not exist")
    raw = path.read_bytes()
    source = str(path)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"recipe {path} is not valid TOML: {err}") from err
    if data.get("schema_version") != RECIPE_SCHEMA_VERSION:
        raise ConfigError(
            f"{source}: schema_version is {data.get('schema_version')!r}; "
            f"this edgekit reads version {RECIPE_SCHEMA_VERSION}",
        )
    for reserved in ("folder", "source", "content_sha256"):
        if reserved in data:
            raise ConfigError(f"{source}: {reserved!r} is set by edgekit, remove it from the recipe")
    recipe = build(Recipe, data, source)
    classifier_metric = recipe.metric in ("accuracy", "roc_auc")
    if classifier_metric != (recipe.task == "classification"):
        raise ConfigError(
            f"{source}: metric {recipe.metric!r} does not fit task {recipe.task!r}",
            hint="classification takes accuracy or roc_auc; reconstruction takes mse or psnr",
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


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths):
        digest.update(p.name.encode())
        digest.update(p.read_bytes())
    return digest.hexdigest()


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


def resolve_model(spec: str, recipe: str | None = None) -> ModelSpec:
    """``spec`` is a zoo name, a model folder, or ``module:factory`` (which needs ``recipe``)."""
    folder = Path(spec)
    if ":" in spec and not folder.exists():
        module_name, _, factory = spec.partition(":")
        if not module_name or not factory:
            raise ConfigError(f"model {spec!r} is not of the form module:factory")
        chosen = _recipe_from(recipe)
        if chosen is None:
            raise ConfigError(
                f"model {spec!r} comes with no recipe (data, training, metric)",
                hint="add --recipe jet_tagger (a zoo model whose data fits) or --recipe path/to/recipe.toml",
            )
        module = _import_module(module_name)
        code_file = inspect.getsourcefile(module)
        code_hash = _hash_files([Path(code_file)]) if code_file else module_name
        source = ModelSource("module", module_name, factory)
        return ModelSpec(f"{module_name.rsplit('.', 1)[-1]}_{factory}", source, chosen, code_hash)
    if folder.is_dir():
        recipe_path = folder / "recipe.toml"
        if not recipe_path.is_file():
            raise InputError(f"model folder {folder} has no recipe.toml")
    else:
        if "/" in spec or spec.endswith(".py"):
            raise InputError(f"model folder {spec} does not exist")
        recipe_path = models_dir() / spec / "recipe.toml"
        if not recipe_path.is_file():
            known = ", ".join(r.name for r in list_models())
            raise UnknownNameError(
                f"unknown model {spec!r}",
                hint=f"zoo models: {known} (edgekit models); or a model folder, or module:factory",
            )
    chosen = _recipe_from(recipe) or load_recipe(recipe_path)
    file_name, _, factory = chosen.model.partition(":")
    model_file = recipe_path.parent / file_name
    if not model_file.is_file() or not factory:
        raise ConfigError(f"{chosen.source}: model = {chosen.model!r} must be 'file.py:function' in {folder}")
    data_file = Path(chosen.folder) / chosen.data.partition(":")[0]
    code = _hash_files([model_file, data_file]) if data_file.is_file() else _hash_files([model_file])
    source = ModelSource("file", str(model_file.resolve()), factory)
    return ModelSpec(recipe_path.parent.name, source, chosen, code)


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise InputError(
            f"cannot import module {name!r}: {err}",
            hint="is it on PYTHONPATH, or installed in this environment?",
        ) from err


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"edgekit_model_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_callable(kind: str, location: str, attr: str) -> Callable[..., Any]:
    """The factory or loader ``attr`` from a file path (kind "file") or a module name."""
    module = _load_file(Path(location)) if kind == "file" else _import_module(location)
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"{location} has no function {attr!r}")
    return fn  # type: ignore[no-any-return]


def data_loader(recipe: Recipe) -> Callable[..., Any]:
    file_name, _, attr = recipe.data.partition(":")
    if file_name.endswith(".py"):
        return load_callable("file", str(Path(recipe.folder) / file_name), attr)
    return load_callable("module", file_name, attr)


def call_with_options(fn: Callable[..., Any], options: Mapping[str, Any], what: str) -> Any:
    """Call a factory or loader with recipe options, naming any option it does not take."""
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in options if k not in params]
    if unknown and not takes_any:
        raise ConfigError(
            f"{what} does not take option(s) {', '.join(unknown)}",
            hint=f"it takes: {', '.join(params) or 'no options'}",
        )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return fn(**kwargs)
