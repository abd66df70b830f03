"""Synthetic MFCC-like keyword features: 49 frames x 10 coefficients, 12 classes, as MLPerf Tiny's KWS.

No speech dataset can be downloaded here, so each utterance is generated: a keyword is a sequence of three
"phonemes", each a smooth 10-coefficient spectral envelope (a random walk over the cepstral axis, one per
phoneme and class, fixed by ``vocabulary_seed``) held for 6 to 10 frames, with per-utterance speaking rate,
onset, loudness (the 0th coefficient) and coefficient-wise jitter, over background noise. As in Speech
Commands v2 (Warden, arXiv:1804.03209) there are 10 keywords, "silence" (noise only) and "unknown"
(phoneme sequences of words outside the vocabulary). Features are standardized with training statistics.
Seeded: the same options give the same data.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "silence", "unknown")
FRAMES, COEFFICIENTS, PHONEMES = 49, 10, 3


def _vocabulary(n_words: int, rng: np.random.Generator) -> np.ndarray:
    """(n_words, PHONEMES, COEFFICIENTS) spectral envelopes: smooth along the cepstral axis."""
    steps = rng.normal(0.0, 1.2, (n_words, PHONEMES, COEFFICIENTS))
    envelopes = np.cumsum(steps, axis=2) / np.sqrt(np.arange(1, COEFFICIENTS + 1))
    return envelopes - envelopes.mean(axis=2, keepdims=True)


def utterances(labels: np.ndarray, rng: np.random.Generator, vocabulary: np.ndarray, unknown: np.ndarray,
               noise: float = 0.6) -> np.ndarray:  # fmt: skip
    x = rng.normal(0.0, noise, (len(labels), FRAMES, COEFFICIENTS))
    for i, label in enumerate(labels):
        if label == CLASSES.index("silence"):
            continue
        word = unknown[rng.integers(len(unknown))] if label == CLASSES.index("unknown") else vocabulary[label]
        frame = int(rng.integers(0, 14))  # onset
        loudness = rng.uniform(0.6, 1.4)
        for phoneme in word:
            length = int(rng.integers(6, 11))  # speaking rate
            shape = phoneme + rng.normal(0.0, 0.25, COEFFICIENTS)
            window = np.hanning(length + 2)[1:-1, None]
            stop = min(frame + length, FRAMES)
            x[i, frame:stop] += loudness * window[: stop - frame] * shape
            x[i, frame:stop, 0] += loudness * 2.0 * window[: stop - frame, 0]  # energy
            frame = stop
    return x.astype(np.float32)


def load(n_train: int = 9600, n_test: int = 2400, seed: int = 0, vocabulary_seed: int = 1234) -> dict:
    words = np.random.default_rng(vocabulary_seed)
    vocabulary = _vocabulary(10, words)
    unknown = _vocabulary(20, words)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASSES), n_train + n_test)
    x = utterances(y, rng, vocabulary, unknown)
    mean, std = x[:n_train].mean(axis=0), x[:n_train].std(axis=0) + 1e-6
    x = ((x - mean) / std)[:, None, :, :]  # (N, 1, 49, 10)
    return {
        "x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:],
        "classes": list(CLASSES),
    }  # fmt: skip
