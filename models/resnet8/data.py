"""Synthetic CIFAR-like images: 32x32 RGB, 10 classes of shape, as MLPerf Tiny's image-classification task.

No image dataset can be downloaded here, so each image is drawn: one object whose class is its shape (disc,
ring, square, frame, triangle, cross, diamond, and a square filled with horizontal stripes, vertical
stripes or a checkerboard), at a random position, size (radius 5 to 10 pixels), rotation (up to 25
degrees) and colour, over a background of a random colour gradient and low-frequency texture, with a
smaller distractor blob of another colour and per-pixel noise. Colour carries no class information: the
network must learn shape, as on CIFAR-10. Pixels are standardized per channel with training statistics.
Seeded: the same options give the same data.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("disc", "ring", "square", "frame", "triangle", "cross", "diamond", "h-stripes", "v-stripes", "checker")
SIDE = 32


def _shape(label: int, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """The object's mask in its own rotated frame (u right, v up), radius r."""
    radius, box = np.hypot(u, v), np.maximum(np.abs(u), np.abs(v))
    square = box < 0.8 * r
    period = r / 2.0
    name = CLASSES[label]
    if name == "disc":
        return radius < r
    if name == "ring":
        return np.abs(radius - 0.8 * r) < 0.22 * r
    if name == "square":
        return square
    if name == "frame":
        return np.abs(box - 0.7 * r) < 0.18 * r
    if name == "triangle":
        return (v > -0.6 * r) & (np.abs(u) < 0.65 * (0.9 * r - v)) & (v < 0.9 * r)
    if name == "cross":
        return ((np.abs(u) < 0.25 * r) & (np.abs(v) < r)) | ((np.abs(v) < 0.25 * r) & (np.abs(u) < r))
    if name == "diamond":
        return np.abs(u) + np.abs(v) < r
    if name == "h-stripes":
        return square & (np.sin(2 * np.pi * v / period) > 0)
    if name == "v-stripes":
        return square & (np.sin(2 * np.pi * u / period) > 0)
    return square & (np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period) > 0)  # checker


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 1.0, 3)


def images(labels: np.ndarray, rng: np.random.Generator, noise: float = 0.12) -> np.ndarray:
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    x = np.empty((len(labels), 3, SIDE, SIDE))
    coarse = rng.normal(0.0, 0.12, (len(labels), 3, 4, 4))  # low-frequency background texture
    texture = coarse.repeat(8, axis=2).repeat(8, axis=3)
    for i, label in enumerate(labels):
        a, b = _colour(rng), _colour(rng)
        slope = rng.uniform(-1.0, 1.0, 2) / SIDE
        ramp = 0.5 + slope[0] * (rows - SIDE / 2) + slope[1] * (cols - SIDE / 2)
        image = a[:, None, None] * ramp[None] + texture[i]
        # the distractor: a small blob of a third colour somewhere
        dy, dx = rng.uniform(2, SIDE - 2, 2)
        blob = np.hypot(rows - dy, cols - dx) < rng.uniform(1.5, 3.5)
        image[:, blob] = _colour(rng)[:, None]
        # the object
        r = rng.uniform(5.0, 10.0)
        cy, cx = rng.uniform(r, SIDE - r, 2)
        angle = np.deg2rad(rng.uniform(-25.0, 25.0))
        u = np.cos(angle) * (cols - cx) + np.sin(angle) * (rows - cy)
        v = -np.sin(angle) * (cols - cx) + np.cos(angle) * (rows - cy)
        mask = _shape(int(label), u, -v, r)
        colour = b if np.abs(b - a).sum() > 0.6 else 1.0 - a  # keep the object visible
        image[:, mask] = colour[:, None]
        x[i] = image
    x += rng.normal(0.0, noise, x.shape)
    return x.astype(np.float32)


def load(n_train: int = 10000, n_test: int = 2500, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASSES), n_train + n_test)
    x = images(y, rng)
    mean = x[:n_train].mean(axis=(0, 2, 3), keepdims=True)
    std = x[:n_train].std(axis=(0, 2, 3), keepdims=True) + 1e-6
    x = (x - mean) / std
    return {
        "x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:],
        "classes": list(CLASSES),
    }  # fmt: skip
