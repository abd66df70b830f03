"""Task metrics and agreement measures, on plain numpy arrays."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "max_abs_diff", "mean_abs_diff", "roc_auc_ovr", "task_metric", "top1_agreement"]


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    probs: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return probs


def roc_auc_ovr(logits: np.ndarray, labels: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes that have both positives and negatives."""
    from sklearn.metrics import roc_auc_score

    probs = _softmax(logits.astype(np.float64))
    scores = []
    for cls in range(probs.shape[1]):
        positives = labels == cls
        if positives.any() and not positives.all():
            scores.append(roc_auc_score(positives, probs[:, cls]))
    return float(np.mean(scores)) if scores else float("nan")


def task_metric(name: str, logits: np.ndarray, labels: np.ndarray) -> float:
    if name == "accuracy":
        return accuracy(logits, labels)
    if name == "roc_auc":
        return roc_auc_ovr(logits, labels)
    raise ValueError(f"unknown metric {name!r}")  # recipes are checked against the same names


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))
