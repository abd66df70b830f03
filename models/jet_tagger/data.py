"""Jet substructure data: a synthetic generator, or the real hls4ml LHC jet dataset.

No public jet dataset can be downloaded here, so by default the 16 high-level
features of the hls4ml jet dataset (Pierini et al., doi:10.5281/zenodo.3602260;
OpenML 42468 "hls4ml_lhc_jets_hlf") are generated from a small physics model of
boosted jets at pT ~ 1 TeV:

* Each class has a number of hard prongs (g, q: 1; W, Z: 2; t: 3), a groomed
  mass (q/g: a falling Sudakov-like log-normal, gluons heavier; W 80.4 GeV, Z
  91.2 GeV, t 173 GeV, each smeared by the detector and with a fraction of jets
  whose grooming dropped a prong) and an amount of soft radiation that follows
  the colour charge (CA/CF = 9/4 for gluons vs quarks; colour-singlet W/Z radiate
  least).
* Constituent multiplicity, sum z log z, and the energy-correlation ratios
  (C1, C2, D2, M2, N2 at beta = 1, 2; C1 also at beta = 0) are noisy functions of
  those latents: C1 grows with (m/pT)^beta, 2-prong jets have small D2 and N2,
  3-prong jets sit in between, and a per-jet energy-scale factor correlates mass
  and C1 the way calibration errors do in real data.

W and Z differ by 11 GeV of mass against a ~9 GeV resolution and by a little
multiplicity (Z -> bb), and partially contained tops look like W/Z, so the float
tagger lands well below 100% accuracy, as on the real data (about 75%).

To use the real data, pass ``path=`` (a ``.csv`` or ``.arff`` export of OpenML
42468 with the 16 feature columns and a ``class`` column, or an ``.h5`` file of
the original dataset with ``jets`` and ``jetFeatureNames``; ``.h5`` needs h5py).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import InputError

CLASSES = ("g", "q", "W", "Z", "t")
FEATURES = (
    "zlogz",
    "c1_b0_mmdt",
    "c1_b1_mmdt",
    "c1_b2_mmdt",
    "c2_b1_mmdt",
    "c2_b2_mmdt",
    "d2_b1_mmdt",
    "d2_b2_mmdt",
    "d2_a1_b1_mmdt",
    "d2_a1_b2_mmdt",
    "m2_b1_mmdt",
    "m2_b2_mmdt",
    "n2_b1_mmdt",
    "n2_b2_mmdt",
    "mass_mmdt",
    "multiplicity",
)
PT_GEV = 1000.0


def generate(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_samples`` synthetic jets (features, class index), classes balanced."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n_samples) % len(CLASSES))
    n = n_samples
    prongs = np.array([1, 1, 2, 2, 3], dtype=float)[y]
    # Soft radiation ~ colour charge: gluon 9/4 of a quark, colour singlets least, top in between.
    colour = np.array([2.25, 1.0, 0.7, 0.75, 1.4])[y]
    radiation = colour * rng.gamma(6.0, 1.0 / 6.0, n)

    mass = np.empty(n)
    qcd = y <= 1
    mass[qcd] = rng.lognormal(np.log(np.where(y[qcd] == 0, 38.0, 24.0)), 0.55)
    for cls, peak, width in ((2, 80.4, 9.0), (3, 91.2, 9.5), (4, 173.0, 16.0)):
        sel = y == cls
        mass[sel] = rng.normal(peak, width, sel.sum())
    # Grooming sometimes drops a prong: W/Z fall to QCD-like masses, tops to the W mass.
    lost = rng.random(n) < np.array([0.0, 0.0, 0.12, 0.12, 0.25])[y]
    top_lost = lost & (y == 4)
    mass[top_lost] = rng.normal(80.4, 12.0, top_lost.sum())
    vb_lost = lost & (y != 4)
    mass[vb_lost] = rng.lognormal(np.log(30.0), 0.5, vb_lost.sum())
    prongs = np.where(lost, prongs - 1, prongs)
    # Z -> bb gives a few more constituents than W -> qq'.
    extra = np.where(y == 3, 3.0, 0.0)

    jes = rng.normal(1.0, 0.04, n)  # per-jet energy scale: correlates mass and C1
    mass = np.clip(mass * jes, 1.0, None)
    ratio = mass / PT_GEV

    multiplicity = rng.poisson(14.0 + 16.0 * radiation + 7.0 * prongs + extra).astype(float)
    zlogz = -np.log(multiplicity + 1.0) * rng.normal(0.72, 0.05, n) - 0.1 * prongs

    def noisy(value: np.ndarray, spread: float) -> np.ndarray:
        return value * rng.lognormal(0.0, spread, n)

    two = (prongs == 2).astype(float)
    three = (prongs >= 3).astype(float)
    c1_b0 = noisy(0.16 + 0.05 * radiation + 0.05 * (prongs - 1), 0.15)
    c1_b1 = noisy(0.55 * ratio * jes + 0.004 * radiation, 0.18)
    c1_b2 = noisy(0.35 * ratio**2 * jes**2 + 2e-4 * radiation, 0.25)
    c2_b1 = noisy(0.32 + 0.08 * radiation - 0.12 * two - 0.04 * three, 0.20)
    c2_b2 = noisy(0.22 + 0.07 * radiation - 0.10 * two - 0.02 * three, 0.25)
    d2_b1 = noisy(2.4 + 0.6 * radiation - 1.1 * two - 0.5 * three, 0.22)
    d2_b2 = noisy(2.8 + 0.8 * radiation - 1.4 * two - 0.5 * three, 0.28)
    d2_a1_b1 = noisy(1.9 + 0.5 * radiation - 0.8 * two - 0.3 * three, 0.22)
    d2_a1_b2 = noisy(2.2 + 0.6 * radiation - 1.0 * two - 0.3 * three, 0.28)
    m2_b1 = noisy(0.10 + 0.02 * radiation - 0.03 * two + 0.02 * three, 0.30)
    m2_b2 = noisy(0.07 + 0.02 * radiation - 0.025 * two + 0.02 * three, 0.35)
    n2_b1 = noisy(0.32 + 0.05 * radiation - 0.12 * two - 0.05 * three, 0.18)
    n2_b2 = noisy(0.25 + 0.05 * radiation - 0.10 * two - 0.04 * three, 0.22)

    columns = [zlogz, c1_b0, c1_b1, c1_b2, c2_b1, c2_b2, d2_b1, d2_b2, d2_a1_b1, d2_a1_b2]
    columns += [m2_b1, m2_b2, n2_b1, n2_b2, mass, multiplicity]
    x = np.stack(columns, axis=1)
    return x.astype(np.float32), y.astype(np.int64)


def _label_index(raw: str) -> int:
    names = {c.lower(): i for i, c in enumerate(CLASSES)}
    key = raw.strip().strip("'\"").lower().removeprefix("j_")
    if key not in names:
        raise InputError(f"unknown jet class {raw!r} in the dataset; expected one of {', '.join(CLASSES)}")
    return names[key]


def _columns_to_arrays(header: list[str], rows: list[list[str]], path: Path) -> tuple[np.ndarray, np.ndarray]:
    normalized = [h.strip().strip("'\"").removeprefix("j_") for h in header]
    missing = [f for f in (*FEATURES, "class") if f not in normalized]
    if missing:
        raise InputError(
            f"{path} is not the hls4ml jet dataset: column(s) {', '.join(missing)} are missing",
            hint=f"expected columns: {', '.join(FEATURES)}, class",
        )
    index = [normalized.index(f) for f in FEATURES]
    label_col = normalized.index("class")
    try:
        x = np.array([[float(r[i]) for i in index] for r in rows], dtype=np.float32)
    except (ValueError, IndexError) as err:
        raise InputError(f"{path}: a row has a missing or non-numeric feature ({err})") from err
    y = np.array([_label_index(r[label_col]) for r in rows], dtype=np.int64)
    return x, y


def read_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels from a real hls4ml jet dataset file (.csv, .arff or .h5)."""
    if not path.is_file():
        raise InputError(f"jet dataset file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="") as fh:
            table = list(csv.reader(fh))
        if not table:
            raise InputError(f"{path} is empty")
        return _columns_to_arrays(table[0], [r for r in table[1:] if r], path)
    if suffix == ".arff":
        header: list[str] = []
        rows: list[list[str]] = []
        in_data = False
        for line in path.read_text().splitlines():
            text = line.strip()
            if not text or text.startswith("%"):
                continue
            if in_data:
                rows.append(next(csv.reader([text])))
            elif text.lower().startswith("@attribute"):
                header.append(text.split()[1])
            elif text.lower().startswith("@data"):
                in_data = True
        return _columns_to_arrays(header, rows, path)
    if suffix in (".h5", ".hdf5", ".z"):
        try:
            import h5py
        except ImportError as err:
            raise InputError(f"reading {path} needs h5py", hint="pip install h5py") from err
        with h5py.File(path, "r") as fh:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in fh["jetFeatureNames"][:]]
            jets = np.asarray(fh["jets"][:])
        labels = [names.index(f"j_{c.lower()}") for c in CLASSES]
        x = jets[:, [names.index(f"j_{f}") for f in FEATURES]].astype(np.float32)
        return x, np.argmax(jets[:, labels], axis=1).astype(np.int64)
    raise InputError(f"{path}: unknown jet dataset format {suffix!r}", hint="use .csv, .arff or .h5")


def load(n_samples: int = 150_000, seed: int = 7, test_fraction: float = 0.2, path: str = "") -> dict[str, Any]:
    """Train/test split, standardized with the training set's mean and spread."""
    if path:
        x, y = read_dataset(Path(path).expanduser())
        order = np.random.default_rng(seed).permutation(len(y))
        x, y = x[order][: n_samples or None], y[order][: n_samples or None]
    else:
        x, y = generate(n_samples, seed)
    n_test = int(len(y) * test_fraction)
    x_train, y_train, x_test, y_test = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0) + 1e-6
    return {
        "x_train": (x_train - mean) / std,
        "y_train": y_train,
        "x_test": (x_test - mean) / std,
        "y_test": y_test,
        "classes": CLASSES,
        "preprocessing": {
            "standardize_mean": mean.tolist(),
            "standardize_std": std.tolist(),
            "features": FEATURES,
        },
    }
