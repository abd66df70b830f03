"""Synthetic time-projection-chamber readout: curved ionization trails on a pad-row x time-bin window.

What is modelled, in the spirit of a TPC such as sPHENIX's (whose data rate motivates compressing the
readout with a neural network; see the README):

- 1 to ``max_tracks`` tracks per window, each crossing every pad row. A helix seen in the pad-row (radius)
  versus drift-time plane is close to a parabola: time = t0 + slope * r + curvature * r**2, with
  curvature from the track's transverse momentum and charge.
- Each row's ionization is Gamma-distributed (a long tail, like Landau fluctuations), spread over
  neighbouring time bins by diffusion (a Gaussian whose width grows with drift time).
- Electronic noise (Gaussian, ``noise_adc`` counts) on every voxel, a 10-bit ADC that saturates at 1023,
  then zero suppression: voxels below ``threshold_adc`` read 0, as the front end sends them.

Inputs are the zero-suppressed ADC counts divided by 1023, shaped (N, 1, rows, time_bins); the target of
the autoencoder is the same window flattened, (N, rows * time_bins). Seeded: the same options give the
same data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ADC_MAX = 1023  # 10-bit ADC


def events(n: int, rows: int, time_bins: int, rng: np.random.Generator, max_tracks: int = 3,
           noise_adc: float = 4.0, threshold_adc: float = 16.0, gain_adc: float = 120.0) -> np.ndarray:  # fmt: skip
    """``n`` zero-suppressed windows of ADC counts, shape (n, rows, time_bins), float32."""
    r = np.arange(rows, dtype=np.float64)
    t = np.arange(time_bins, dtype=np.float64)
    adc = np.zeros((n, rows, time_bins))
    n_tracks = rng.integers(1, max_tracks + 1, size=n)
    for i in range(n):
        for _ in range(n_tracks[i]):
            t0 = rng.uniform(0, time_bins - 1)
            slope = rng.uniform(-0.6, 0.6)
            curvature = rng.choice([-1, 1]) * rng.uniform(0.0, 0.04)  # charge sign x 1/pT
            centre = t0 + slope * r + curvature * r**2
            charge = gain_adc * rng.gamma(shape=3.0, scale=1.0 / 3.0, size=rows)  # mean gain, long tail
            sigma = 0.5 + 0.04 * np.clip(centre, 0, time_bins)  # diffusion grows with drift time
            profile = np.exp(-0.5 * ((t[None, :] - centre[:, None]) / sigma[:, None]) ** 2)
            profile /= sigma[:, None] * np.sqrt(2 * np.pi)
            adc[i] += charge[:, None] * profile
    adc += rng.normal(0.0, noise_adc, size=adc.shape)
    adc = np.clip(np.round(adc), 0, ADC_MAX)
    adc[adc < threshold_adc] = 0.0  # zero suppression
    return adc.astype(np.float32)


def load(n_train: int = 16_000, n_test: int = 4_000, rows: int = 16, time_bins: int = 16, max_tracks: int = 3,
         noise_adc: float = 4.0, threshold_adc: float = 16.0, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    rng = np.random.default_rng(seed)
    windows = events(n_train + n_test, rows, time_bins, rng, max_tracks, noise_adc, threshold_adc) / ADC_MAX
    x = windows[:, None, :, :]
    y = windows.reshape(len(windows), -1)
    occupancy = float(np.mean(windows > 0))
    return {
        "x_train": x[:n_train],
        "y_train": y[:n_train],
        "x_test": x[n_train:],
        "y_test": y[n_train:],
        "preprocessing": {
            "scale": f"ADC counts / {ADC_MAX} (10-bit ADC)",
            "zero_suppression_adc": threshold_adc,
            "noise_adc": noise_adc,
            "occupancy": occupancy,
        },
    }
