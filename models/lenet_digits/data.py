"""scikit-learn's handwritten digits (UCI optdigits test set, 1,797 images of 8x8 pixels, 0-16).

The data ships inside scikit-learn, so nothing is downloaded. Pixels are scaled
to [0, 1] and shaped (N, 1, 8, 8); the split is stratified and seeded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load(test_fraction: float = 0.3, seed: int = 0, n_samples: int = 0) -> dict[str, Any]:
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    if n_samples:
        x, y = x[:n_samples], y[:n_samples]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        "classes": tuple(str(i) for i in range(10)),
        "preprocessing": {"scale": "pixel / 16"},
    }
