"""Synthetic HGCAL trigger-cell charge maps: 48 cells of one module on an 8x8 map, as ECON-T sees them.

No HGCAL simulation can be downloaded here. Each module window holds 0 to 3 electromagnetic shower cores
(a transverse profile falling off like exp(-r / 0.9 cell), energy from a falling spectrum) over
pile-up-like noise (a few low-energy deposits per window) and electronic noise, scaled to [0, 1] with
saturation at the top of the range. ECON-T's 48 trigger cells do not fill the 8x8 map: here the 16 cells of
its bottom-right quarter are always zero (a fixed mask: three 16-cell sections of the module on the map).
The target is the input itself, flattened. Seeded.
"""

from __future__ import annotations

import numpy as np

SIDE = 8


def _mask() -> np.ndarray:
    mask = np.ones((SIDE, SIDE), dtype=bool)
    mask[SIDE // 2 :, SIDE // 2 :] = False  # 48 of 64 cells carry a trigger cell
    return mask


def windows(n: int, rng: np.random.Generator) -> np.ndarray:
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    x = np.abs(rng.normal(0.0, 0.02, (n, SIDE, SIDE)))  # electronic noise
    for i in range(n):
        for _ in range(rng.poisson(3.0)):  # pile-up: single low-energy cells
            x[i, rng.integers(SIDE), rng.integers(SIDE)] += rng.exponential(0.08)
        for _ in range(rng.integers(0, 4)):  # shower cores
            r0, c0 = rng.uniform(0, SIDE - 1, 2)
            energy = 0.3 + rng.pareto(2.5)
            distance = np.hypot(rows - r0, cols - c0)
            x[i] += energy * np.exp(-distance / 0.9)
    x *= _mask()
    return np.minimum(x / 4.0, 1.0).astype(np.float32)  # a digitized range: saturates like the ADC would


def load(n_train: int = 12000, n_test: int = 3000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = windows(n_train + n_test, rng)[:, None, :, :]
    y = x.reshape(len(x), -1)
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}
