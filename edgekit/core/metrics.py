"""Task metrics and agreement measures, on plain numpy arrays."""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "CLASSIFICATION_METRICS",
    "METRICS",
    "accuracy",
    "higher_is_better",
    "lsb_grid",
    "max_abs_diff",
    "max_lsb_diff",
    "mean_abs_diff",
    "metric_drop",
    "mse",
    "psnr",
    "reconstruction_metrics",
    "roc_auc_ovr",
    "signal_recovered",
    "task_metric",
    "top1_agreement",
]

CLASSIFICATION_METRICS = ("accuracy", "roc_auc")  # outputs are class scores, labels class indices
REGRESSION_METRICS = ("mse", "psnr")  # outputs and labels are arrays of the same shape (a reconstruction)
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    probs: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return probs


def roc_auc_ovr(logits: np.ndarray, labels: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes that have both positives and negatives.

    Scores already in [0, 1] (a softmax or sigmoid head's) are ranked as they are; any other output is taken
    for logits and goes through a softmax first (which would re-rank probabilities: its denominator varies).
    """
    from sklearn.metrics import roc_auc_score

    scores64 = logits.astype(np.float64)
    probs = scores64 if scores64.min() >= 0.0 and scores64.max() <= 1.0 else _softmax(scores64)
    scores = []
    for cls in range(probs.shape[1]):
        positives = labels == cls
        if positives.any() and not positives.all():
            scores.append(roc_auc_score(positives, probs[:, cls]))
    return float(np.mean(scores)) if scores else float("nan")


def mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Mean squared error over every value."""
    return float(np.mean((outputs.astype(np.float64) - targets.astype(np.float64).reshape(outputs.shape)) ** 2))


def psnr(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, the peak being the targets' range (max - min) over the whole set."""
    t = targets.astype(np.float64)
    peak = float(t.max() - t.min()) if t.size else 0.0
    error = mse(outputs, targets)
    if error == 0:
        return math.inf
    if peak == 0:
        return -math.inf
    return 10.0 * math.log10(peak * peak / error)


def signal_recovered(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Of the voxels that carry signal in the targets (non-zero), the fraction the reconstruction keeps.

    Zero-suppressed targets are either 0 or at least the suppression threshold; a voxel is kept when its
    reconstruction reaches half the smallest non-zero target (it would survive a suppression at that level).
    """
    t = targets.astype(np.float64).reshape(outputs.shape)
    signal = t > 0
    if not signal.any():
        return math.nan
    level = 0.5 * float(t[signal].min())
    return float(np.mean(outputs[signal] >= level))


def reconstruction_metrics(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Every reconstruction measure edgekit reports, by name."""
    return {"mse": mse(outputs, targets), "psnr": psnr(outputs, targets),
            "signal_recovered": signal_recovered(outputs, targets)}  # fmt: skip


def higher_is_better(name: str) -> bool:
    return name != "mse"


def metric_drop(name: str, reference: float, value: float) -> float:
    """How much worse ``value`` is than ``reference`` for this metric (negative when better)."""
    if reference == value:  # both inf (an exact reconstruction) included
        return 0.0
    return reference - value if higher_is_better(name) else value - reference


def task_metric(name: str, outputs: np.ndarray, labels: np.ndarray) -> float:
    if name == "accuracy":
        return accuracy(outputs, labels)
    if name == "roc_auc":
        return roc_auc_ovr(outputs, labels)
    if name == "mse":
        return mse(outputs, labels)
    if name == "psnr":
        return psnr(outputs, labels)
    raise ValueError(f"unknown metric {name!r}")  # recipes are checked against the same names


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


def lsb_grid(reference: np.ndarray, finest: int = 40) -> np.ndarray | None:
    """The last bit of a fixed-point output, per output value: the largest power of two all samples are multiples of.

    ``reference`` holds a quantized model's outputs, shape (N, ...); the result has shape ``reference.shape[1:]``.
    A value that is zero in every sample gets NaN. None when some output is on no power-of-two grid down to
    2**-finest (a float output, or a scale that is not a power of two).
    """
    values = np.abs(reference.astype(np.float64))
    mantissa, exponent = np.frexp(values)  # values = mantissa * 2**exponent, 0.5 <= mantissa < 1
    # the lowest set bit of each value: 2**(exponent - 53 + trailing zeros of the 53-bit mantissa)
    bits = (mantissa * 2.0**53).astype(np.uint64)
    if not values.size:
        return None
    trailing = np.zeros(bits.shape, np.int64)
    remaining = np.where(bits == 0, np.uint64(1), bits)
    for shift in (32, 16, 8, 4, 2, 1):
        mask = np.uint64((1 << shift) - 1)
        zero = (remaining & mask) == 0
        trailing += np.where(zero, shift, 0)
        remaining = np.where(zero, remaining >> np.uint64(shift), remaining)
    low = np.where(values > 0, exponent.astype(np.int64) - 53 + trailing, np.iinfo(np.int64).max)
    lowest = low.min(axis=0)
    if np.any(lowest[lowest != np.iinfo(np.int64).max] < -finest):
        return None
    return np.where(lowest == np.iinfo(np.int64).max, np.nan, np.ldexp(1.0, np.minimum(lowest, 1023)))


def max_lsb_diff(outputs: np.ndarray, reference: np.ndarray, lsb: np.ndarray | None) -> float:
    """The largest difference from the quantized reference in units of its last bit (NaN without a grid)."""
    if lsb is None:
        return math.nan
    diff = np.abs(outputs.astype(np.float64) - reference.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        units = np.where(np.isnan(lsb), np.where(diff > 0, np.inf, 0.0), diff / np.where(np.isnan(lsb), 1.0, lsb))
    return float(units.max()) if units.size else math.nan
