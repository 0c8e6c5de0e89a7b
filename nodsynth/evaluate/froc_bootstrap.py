"""Bootstrap confidence intervals of a FROC analysis, over scans (LUNA16's ``computeFROC_bootstrap``).

Each resample draws as many scans as were evaluated, with replacement (a scan drawn twice brings
its entries twice), from ``numpy.random.default_rng(seed)``; its FROC uses the same number of
scans. A resample without any nodule (sensitivity undefined) is left out and the count of used
resamples reported. Bounds are read as LUNA16 reads them: of the sorted values, the one at index
``floor((1 - confidence) / 2 * n)`` and the one at ``floor((1 + confidence) / 2 * n)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .froc import RATE_INDICES, FrocEntries, curve_grid, froc_curve, grid_sensitivity

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class BootstrapResult:
    """Per used resample: the seven sensitivities (``rates``) and the sensitivity on the whole FP/scan
    grid (``curves``, float32, for plotting a band)."""

    rates: np.ndarray
    curves: np.ndarray
    seed: int
    confidence: float
    requested: int

    def bounds(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds along axis 0 of ``values`` (one row per resample)."""
        ordered = np.sort(values, axis=0)
        n = len(ordered)
        tail = (1.0 - self.confidence) / 2.0
        return ordered[int(math.floor(tail * n))], ordered[min(int(math.floor((1.0 - tail) * n)), n - 1)]

    def summary(self) -> dict:
        """JSON part: bounds of the seven sensitivities and of the CPM."""
        out = {"confidence": self.confidence, "resamples": self.requested,
               "resamples_used": int(len(self.rates)), "seed": self.seed}
        if not len(self.rates):
            return {**out, "sensitivities_lower": None, "sensitivities_upper": None, "cpm_lower": None,
                    "cpm_upper": None}
        low, high = self.bounds(self.rates)
        cpm_low, cpm_high = self.bounds(self.rates.mean(axis=1))
        return {**out, "sensitivities_lower": low.tolist(), "sensitivities_upper": high.tolist(),
                "cpm_lower": float(cpm_low), "cpm_upper": float(cpm_high)}


def bootstrap_froc(entries: FrocEntries, n_scans: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                   confidence: float = DEFAULT_CONFIDENCE) -> BootstrapResult:
    """Resample scans ``resamples`` times (see the module docstring)."""
    rng = np.random.default_rng(seed)
    per_scan = [np.flatnonzero(entries.scan == scan) for scan in range(n_scans)]
    grid = curve_grid()
    rates, curves = [], []
    for _ in range(resamples):
        drawn = rng.integers(0, n_scans, size=n_scans)
        sample = entries.take(np.concatenate([per_scan[s] for s in drawn]))
        if not sample.is_nodule.any():
            continue
        fps, sensitivity, _ = froc_curve(sample, n_scans)
        curve = grid_sensitivity(fps, sensitivity)
        rates.append(curve[list(RATE_INDICES)])
        curves.append(curve.astype(np.float32))
    return BootstrapResult(np.asarray(rates, dtype=np.float64).reshape(-1, len(RATE_INDICES)),
                           np.asarray(curves, dtype=np.float32).reshape(-1, len(grid)), int(seed),
                           float(confidence), int(resamples))
