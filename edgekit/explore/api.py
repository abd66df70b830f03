"""Design-space exploration from Python: a grid sweep and the per-layer precision search.

``edgekit sweep`` and ``edgekit search`` call these two functions and print what they return; a notebook or a
script calls them the same way::

    import edgekit
    result = edgekit.sweep_grid("jet_tagger", {"weight_bits": [4, 6, 8], "sparsity": [0, 0.5]},
                                targets=["fpga-xcvu13p"], tiny=True)
    best = edgekit.search_precision("jet_tagger", "fpga-xcvu13p", budget=0.01, tiny=True)

Both run their builds on Ray (a local one unless ``address`` names a cluster) and reuse finished points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit.core.errors import ConfigError, EdgekitError

__all__ = ["search_precision", "sweep_grid"]


def _grid_items(grid: Mapping[str, Any] | Sequence[str]) -> list[str]:
    if isinstance(grid, Mapping):
        values = {k: v if isinstance(v, (list, tuple)) else [v] for k, v in grid.items()}
        return [f"{key}={','.join(str(v) for v in vals)}" for key, vals in values.items()]
    return [str(item) for item in grid]


def _flags(settings: Mapping[str, Any] | None, overrides: Sequence[str]) -> tuple[str, ...]:
    from edgekit.api import _set_flags
    from edgekit.core.config import absolute_set_flags

    # a relative data path is this folder's, not a Ray worker's
    return absolute_set_flags([*_set_flags(settings or {}), *overrides])


def _absolute(name: str | None) -> str | None:
    """A path (model folder, recipe or data file, profile) made absolute: Ray workers may run elsewhere."""
    if name is None:
        return None
    path = Path(name)
    return str(path.resolve()) if path.is_dir() or path.is_file() else name


def sweep_grid(
    model: str,
    grid: Mapping[str, Any] | Sequence[str] | None = None,
    targets: Sequence[str] = (),
    *,
    out: str | Path | None = None,
    tiny: bool = False,
    recipe: str | None = None,
    data: str | Path | None = None,
    settings: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    workers: int | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    on_progress: Callable[[int, int, int, int], None] | None = None,
) -> Any:
    """Build and validate every point of ``grid`` (bit widths, sparsity, reuse) for ``targets``; a
    :class:`~edgekit.explore.sweep.SweepResult` with one row per point, ``results.csv``, ``sweep.md``, ``sweep.html``.

    ``grid``: ``{"weight_bits": [4, 6, 8], "sparsity": [0, 0.5]}`` or ``["weight_bits=4,6,8", ...]``; without
    it, the recipe's ``[sweep]`` grid. ``settings``: recipe settings as tables, like ``edgekit.compile``.

    >>> grid = {"weight_bits": [4, 8]}
    >>> result = edgekit.sweep_grid("jet_tagger", grid, ["fpga-xcvu13p"], tiny=True)  # doctest: +SKIP
    >>> [(row["point"], row["accuracy"], row["lut"]) for row in result.rows]  # doctest: +SKIP
    [('w4a4', 0.52, 4210.0), ('w8a8', 0.55, 16045.0)]
    """
    from edgekit.explore.sweep import SweepSpec, grid_from_recipe, grid_points, parse_grid, run_sweep
    from edgekit.model.zoo import resolve_model

    spec = resolve_model(model, recipe, str(data) if data else None)
    recipe_grid, recipe_targets = grid_from_recipe(spec.recipe.sweep)
    parsed = parse_grid(_grid_items(grid)) if grid else recipe_grid
    if not parsed:
        raise EdgekitError(
            "nothing to sweep: no grid given and no [sweep] grid in the recipe",
            hint="e.g. --grid weight_bits=4,6,8 sparsity=0,0.5 (from Python: grid={'weight_bits': [4, 6, 8]})",
        )
    chosen = tuple(targets) or recipe_targets or tuple(spec.recipe.default_targets)
    chosen = tuple(str(Path(t).resolve()) if Path(t).suffix == ".toml" else t for t in chosen)
    root = Path(out) if out else Path("build") / f"sweep-{spec.name}"
    sweep = SweepSpec(str(_absolute(model)), chosen, str(root.resolve()), tiny, _flags(settings, overrides),
                      _absolute(recipe), spec.code_sha256, _absolute(str(data)) if data else None)  # fmt: skip
    result = run_sweep(sweep, grid_points(parsed), address=address, workers=workers, retry_failed=retry_failed,
                       on_progress=on_progress)  # fmt: skip
    result.spec = sweep
    return result


def search_precision(
    model: str,
    target: str,
    *,
    budget: float = 0.01,
    start: int = 8,
    lowest: int = 2,
    out: str | Path | None = None,
    tiny: bool = False,
    settings: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    workers: int | None = None,
    address: str | None = None,
) -> Any:
    """The narrowest bit widths per layer that keep accuracy within ``budget`` of float on an FPGA ``target``
    (its LUTs are the cost); a :class:`~edgekit.explore.search.SearchResult`, and a model folder with the chosen
    precision written as a recipe (``result.recipe_folder``) that ``edgekit compile`` builds.

    >>> best = edgekit.search_precision("jet_tagger", "fpga-xcvu13p", budget=0.01, tiny=True)  # doctest: +SKIP
    >>> best.layers["fc1"], best.chosen["lut"] < best.best_uniform["lut"]  # doctest: +SKIP
    ({'weight_bits': 4, 'activation_bits': 6}, True)
    """
    from edgekit.core.targets import load_target
    from edgekit.explore.search import precision_search, write_recipe_folder
    from edgekit.explore.sweep import SweepSpec
    from edgekit.model.zoo import resolve_model

    spec = resolve_model(model)
    if not spec.recipe.folder:
        raise ConfigError(
            "the search writes a model folder: give a zoo model name or a model folder",
            hint="a module:factory model: put it in a model folder (recipe.toml, model.py, data.py)",
        )
    if load_target(target).family != "fpga":
        raise ConfigError(
            f"the search weighs LUTs: the target must be an FPGA target, not {target}",
            hint="e.g. fpga-xcvu13p (edgekit targets lists them)",
        )
    root = (Path(out) if out else Path("build") / f"search-{spec.name}").resolve()
    sweep = SweepSpec(str(_absolute(model)), (target,), str(root), tiny, _flags(settings, overrides), None,
                      spec.code_sha256)  # fmt: skip
    result = precision_search(sweep, budget=budget, start=start, lowest=lowest, workers=workers, address=address)
    if result.chosen is not None:
        result.recipe_folder = write_recipe_folder(result, Path(spec.recipe.folder), start, root / "recipe")
    result.spec = sweep
    return result
