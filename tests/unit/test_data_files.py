"""The built-in data loader on every format it reads, its split, and its refusals."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from edgekit.core.errors import InputError
from edgekit.model.data_files import load, summarize
from edgekit.model.recipe_doc import MEANINGS, schema_rows, schema_table
from edgekit.model.zoo import Recipe

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(3)
X = RNG.normal(size=(50, 4)).astype(np.float32)
Y = np.arange(50) % 3  # every class present, labels planted (not drawn)


def _csv(path: Path, x: np.ndarray, y: np.ndarray, label: str = "class") -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"f{i}" for i in range(x.shape[1])] + [label])
        writer.writerows([*map(float, row), int(c)] for row, c in zip(x, y, strict=True))
    return path


def _write(fmt: str, folder: Path) -> tuple[Path, dict[str, str]]:
    """The same 50 samples in one format, and the options that name its arrays."""
    if fmt == "npz":
        np.savez(folder / "d.npz", x=X, y=Y)
        return folder / "d.npz", {}
    if fmt == "npy":
        np.save(folder / "inputs.npy", X)
        np.save(folder / "targets.npy", Y)
        return folder / "inputs.npy", {"labels": "targets.npy"}
    if fmt == "h5":
        h5py = pytest.importorskip("h5py", reason="h5py (edgekit[data]) reads HDF5")
        with h5py.File(folder / "d.h5", "w") as f:
            f.create_dataset("events/features", data=X)
            f.create_dataset("events/truth", data=Y)
        return folder / "d.h5", {"inputs": "events/features", "labels": "events/truth"}
    if fmt == "csv":
        return _csv(folder / "d.csv", X, Y), {}
    parquet = pytest.importorskip("pyarrow.parquet", reason="pyarrow (edgekit[data]) reads Parquet")
    import pyarrow as pa

    table = pa.table({**{f"f{i}": X[:, i] for i in range(4)}, "label": Y})
    parquet.write_table(table, folder / "d.parquet")
    return folder / "d.parquet", {}


@pytest.mark.parametrize("fmt", ["npz", "npy", "h5", "csv", "parquet"])
def test_every_format_gives_the_same_split(fmt: str, tmp_path: Path) -> None:
    path, options = _write(fmt, tmp_path)
    data = load(str(path), **options, test_fraction=0.2, seed=5)  # type: ignore[arg-type]
    order = np.random.default_rng(5).permutation(50)
    np.testing.assert_allclose(data["x_test"], X[order[:10]], rtol=0, atol=1e-6)  # CSV holds decimal text
    np.testing.assert_array_equal(np.asarray(data["y_train"]).astype(int), Y[order[10:]])
    assert summarize(str(path), options.get("inputs"), options.get("labels")).sample_shape == (4,)
    assert summarize(str(path), options.get("inputs"), options.get("labels")).task == "classification"


def test_a_split_file_and_a_separate_test_file(tmp_path: Path) -> None:
    split = {"x_train": X[:40], "y_train": Y[:40], "x_test": X[40:], "y_test": Y[40:]}
    np.savez(tmp_path / "split.npz", **split, classes=["a", "b", "c"])
    data = load(str(tmp_path / "split.npz"))
    np.testing.assert_array_equal(data["x_test"], X[40:])
    assert data["classes"] == ["a", "b", "c"]
    train, test = _csv(tmp_path / "train.csv", X[:30], Y[:30]), _csv(tmp_path / "test.csv", X[30:], Y[30:])
    data = load(str(train), test_path=str(test))
    assert len(data["x_train"]) == 30 and len(data["x_test"]) == 20


def test_columns_by_name_and_the_task_the_labels_imply(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.csv", X, Y)
    data = load(str(path), inputs=["f2", "f0"], labels="class", test_fraction=0.5)
    assert data["x_train"].shape == (25, 2)
    assert summarize(str(path), ["f2", "f0"]).sample_shape == (2,)
    np.savez(tmp_path / "reg.npz", x=X, y=X.sum(axis=1) + 0.5)
    assert summarize(str(tmp_path / "reg.npz")).task == "regression"
    assert summarize(str(tmp_path / "reg.npz"), labels="inputs").task == "reconstruction"
    auto = load(str(tmp_path / "reg.npz"), labels="inputs")
    np.testing.assert_array_equal(auto["x_train"], auto["y_train"])


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("a,b,label\n1,2,0\n3,oops,1\n", {}, "column 'b' holds 'oops' at line 3"),
        ("1,2,0\n3,4,1\n", {}, "has no header row"),
        ("a,b,label\n1,2,0\n3,4\n", {}, "line 3 has 2 fields"),
        ("a,b,kind\n1,2,0\n3,4,1\n", {}, "no labels found"),
        ("a,b,label\n1,2,0\n3,4,1\n", {"inputs": ["a", "c"]}, "has no column 'c'"),
        ("a,b,label\n1,2,0\n3,4,1\n", {"test_fraction": 0.2}, "leaves 0 for testing"),
    ],
)
def test_bad_csv_files_are_named(content: str, options: dict[str, object], message: str, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(InputError, match=re.escape(message)):
        load(str(tmp_path / "bad.csv"), **options)  # type: ignore[arg-type]


def test_missing_corrupt_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load(str(tmp_path / "none.npz"))
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match=r"cannot be read as \.npz"):
        load(str(tmp_path / "broken.npz"))
    (tmp_path / "d.txt").write_text("1 2 3")
    with pytest.raises(InputError, match=r"the built-in loader reads \.npz"):
        load(str(tmp_path / "d.txt"))
    np.savez(tmp_path / "odd.npz", a=X, b=Y)
    with pytest.raises(InputError, match="no inputs found") as err:
        load(str(tmp_path / "odd.npz"))
    assert "the file holds: a, b" in (err.value.hint or "")


def test_the_schema_names_every_recipe_key() -> None:
    keys = [row[0] for row in schema_rows()]
    assert set(keys) == {f for f in Recipe.__dataclass_fields__ if f not in ("folder", "source", "content_sha256")}
    assert set(MEANINGS) == set(keys)
    assert dict((k, d) for k, _, d, _ in schema_rows())["metric"] == "'accuracy'"


def test_the_docs_show_the_schema_as_printed() -> None:
    assert schema_table() in (REPO / "docs" / "your-model.md").read_text()


def test_a_recipe_naming_the_loader_by_its_old_module_still_gets_it(tmp_path: Path) -> None:
    """Recipes written before the package layout say ``edgekit.data_files:load``."""
    from dataclasses import replace

    from edgekit.model.zoo import BUILTIN_LOADER, data_loader, load_recipe, models_dir

    recipe = load_recipe(models_dir() / "jet_tagger" / "recipe.toml")
    old = data_loader(replace(recipe, data="edgekit.data_files:load", folder=str(tmp_path)))
    assert old is load and data_loader(replace(recipe, data=BUILTIN_LOADER)) is load
