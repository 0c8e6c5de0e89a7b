"""The HR-LDM nodule intensity histogram: 40 bins over -1000..400 HU, normalised to sum 1.

Seed 001 (HR-LDM) conditions inpainting on this histogram; measurements, presets and the
model-free insertion use the same definition so their numbers are comparable.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError

HIST_MIN_HU = -1000.0
HIST_MAX_HU = 400.0
HIST_BINS = 40
BIN_WIDTH_HU = (HIST_MAX_HU - HIST_MIN_HU) / HIST_BINS
BIN_EDGES_HU = np.linspace(HIST_MIN_HU, HIST_MAX_HU, HIST_BINS + 1)
BIN_CENTERS_HU = 0.5 * (BIN_EDGES_HU[:-1] + BIN_EDGES_HU[1:])


def hu_counts(values_hu: np.ndarray) -> np.ndarray:
    """Voxel counts in the 40 bins; values outside -1000..400 HU are clipped into the end bins."""
    values = np.asarray(values_hu, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise InputError("cannot compute a histogram of an empty region (the mask has no voxels)")
    clipped = np.clip(values, HIST_MIN_HU, HIST_MAX_HU - 1e-6)
    counts, _ = np.histogram(clipped, bins=BIN_EDGES_HU)
    return counts


def hu_histogram(values_hu: np.ndarray) -> np.ndarray:
    """Normalised 40-bin histogram of HU values (:func:`hu_counts` over their sum)."""
    counts = hu_counts(values_hu)
    return counts / counts.sum()


def validate_histogram(histogram: np.ndarray) -> np.ndarray:
    """Check a user-supplied histogram (40 non-negative numbers) and return it normalised to sum 1."""
    hist = np.asarray(histogram, dtype=np.float64).reshape(-1)
    if hist.shape != (HIST_BINS,):
        raise InputError(f"a histogram needs {HIST_BINS} bins over {HIST_MIN_HU:.0f}..{HIST_MAX_HU:.0f} HU, got {hist.size}")
    if not np.all(np.isfinite(hist)) or np.any(hist < 0) or hist.sum() <= 0:
        raise InputError("histogram bins must be finite, non-negative and not all zero")
    return hist / hist.sum()


def histogram_mean_hu(histogram: np.ndarray) -> float:
    """Mean HU of a histogram, taking each bin at its centre."""
    return float(np.dot(validate_histogram(histogram), BIN_CENTERS_HU))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (natural log, 0..ln 2) between two histograms."""
    p, q = validate_histogram(p), validate_histogram(q)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / b[nz])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)
