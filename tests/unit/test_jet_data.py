"""The jet_tagger data: the synthetic generator and the readers of the real dataset's formats."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edgekit.core.errors import InputError
from edgekit.model.zoo import models_dir


def _data_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jet_data_under_test", models_dir() / "jet_tagger" / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


data = _data_module()


def test_generator_is_seeded_balanced_and_finite() -> None:
    x1, y1 = data.generate(5000, seed=3)
    x2, y2 = data.generate(5000, seed=3)
    x3, _ = data.generate(5000, seed=4)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (5000, 16) and x1.dtype == np.float32
    assert np.isfinite(x1).all()
    assert np.bincount(y1).tolist() == [1000] * 5


def test_physics_shapes_of_the_features() -> None:
    x, y = data.generate(20000, seed=0)
    mass = x[:, data.FEATURES.index("mass_mmdt")]
    mult = x[:, data.FEATURES.index("multiplicity")]
    d2 = x[:, data.FEATURES.index("d2_b1_mmdt")]
    median = {c: np.median(mass[y == i]) for i, c in enumerate(data.CLASSES)}
    assert median["q"] < median["g"] < median["W"] < median["Z"] < median["t"]
    assert 75 < median["W"] < 86 and 160 < median["t"] < 180
    assert np.mean(mult[y == 0]) > np.mean(mult[y == 1])  # gluons radiate more than quarks
    assert np.median(d2[y == 2]) < np.median(d2[y == 1])  # two-prong W has lower D2 than a quark jet


def test_synthetic_task_is_hard_but_learnable() -> None:
    from sklearn.linear_model import LogisticRegression

    d = data.load(n_samples=20000, seed=1)
    clf = LogisticRegression(max_iter=300).fit(d["x_train"], d["y_train"])
    acc = clf.score(d["x_test"], d["y_test"])
    assert 0.45 < acc < 0.9, acc  # well above chance (0.2), well below 100%


def _write_csv(path: Path, x: np.ndarray, labels: list[str]) -> None:
    header = ",".join([*data.FEATURES, "class"])
    rows = [",".join([*(f"{v:.6g}" for v in row), lab]) for row, lab in zip(x, labels, strict=True)]
    path.write_text("\n".join([header, *rows]) + "\n")


def test_reads_openml_csv_and_arff(tmp_path: Path) -> None:
    x, y = data.generate(50, seed=0)
    labels = [data.CLASSES[i].lower() for i in y]  # OpenML writes g, q, w, z, t
    _write_csv(tmp_path / "jets.csv", x, labels)
    xc, yc = data.read_dataset(tmp_path / "jets.csv")
    np.testing.assert_allclose(xc, x, rtol=1e-5)
    assert np.array_equal(yc, y)

    attrs = [f"@attribute {f} numeric" for f in data.FEATURES] + ["@attribute class {g,q,w,z,t}"]
    rows = [",".join([*(f"{v:.6g}" for v in r), lab]) for r, lab in zip(x, labels, strict=True)]
    (tmp_path / "jets.arff").write_text("\n".join(["% OpenML 42468", "@relation jets", *attrs, "@data", *rows]))
    xa, ya = data.read_dataset(tmp_path / "jets.arff")
    np.testing.assert_allclose(xa, x, rtol=1e-5)
    assert np.array_equal(ya, y)

    split = data.load(n_samples=0, path=str(tmp_path / "jets.csv"), test_fraction=0.2)
    assert len(split["x_train"]) == 40 and len(split["x_test"]) == 10


def test_reads_original_h5_format(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py", reason="h5py (the dev extra) reads the original .h5 files")
    x, y = data.generate(30, seed=2)
    names = [f"j_{f}" for f in data.FEATURES] + ["j_pt"] + [f"j_{c.lower()}" for c in data.CLASSES]
    jets = np.zeros((30, len(names)), dtype=np.float32)
    jets[:, :16] = x
    jets[np.arange(30), 17 + y] = 1.0
    with h5py.File(tmp_path / "jets.h5", "w") as fh:
        fh["jets"] = jets
        fh["jetFeatureNames"] = np.array([n.encode() for n in names])
    xh, yh = data.read_dataset(tmp_path / "jets.h5")
    np.testing.assert_array_equal(xh, x)
    assert np.array_equal(yh, y)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("zlogz,class\n1.0,g\n", "c1_b0_mmdt, c1_b1_mmdt.* are missing"),
        (",".join([*data.FEATURES, "class"]) + "\n" + ",".join(["x"] * 16 + ["g"]) + "\n", "non-numeric"),
        (",".join([*data.FEATURES, "class"]) + "\n" + ",".join(["1"] * 16 + ["higgs"]) + "\n", "unknown jet class"),
    ],
)
def test_bad_dataset_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        data.read_dataset(path)


def test_missing_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        data.read_dataset(tmp_path / "none.csv")
    (tmp_path / "jets.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError, match="unknown jet dataset format"):
        data.read_dataset(tmp_path / "jets.parquet")
