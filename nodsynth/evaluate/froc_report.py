"""The FROC report of one detection file: the LUNA16 numbers, a bootstrap CI and diameter strata.

JSON keys: ``sensitivities`` (at the seven rates ``fps`` = 1/8 .. 8 FP/scan, in that order),
``cpm`` (their mean), ``curve`` (the ROC-derived points: ``fps_per_scan``, ``sensitivity``,
``threshold``; the first threshold, infinite, is ``null``), counts, ``ci95`` (bootstrap over scans,
or ``null`` without resampling) and ``strata``: the same numbers per nodule diameter (< 10,
10 - < 20, >= 20 mm), the other strata's nodules being excluded findings (detections on them are
neither hits nor false positives).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .froc import (FP_RATES_PER_SCAN, RATE_INDICES, FrocEntries, curve_grid, froc_curve, froc_entries,
                   grid_sensitivity)
from .froc_bootstrap import DEFAULT_RESAMPLES, bootstrap_froc
from .froc_io import Findings

DIAMETER_STRATA_MM = (("<10 mm", 0.0, 10.0), ("10-<20 mm", 10.0, 20.0), (">=20 mm", 20.0, math.inf))


@dataclass(frozen=True)
class PlotCurve:
    """What the FROC plot draws of one system: its sensitivity on the FP/scan grid and a CI band."""

    label: str
    cpm: float
    fps: np.ndarray
    sensitivity: np.ndarray
    lower: Optional[np.ndarray] = None
    upper: Optional[np.ndarray] = None


def _numbers(entries: FrocEntries, n_scans: int, resamples: int, seed: int) -> tuple[dict, np.ndarray, object]:
    fps, sensitivity, thresholds = froc_curve(entries, n_scans)
    on_grid = grid_sensitivity(fps, sensitivity)
    rates = on_grid[list(RATE_INDICES)]
    boot = bootstrap_froc(entries, n_scans, resamples, seed) if resamples > 0 else None
    numbers = {
        "sensitivities": rates.tolist(), "fps": list(FP_RATES_PER_SCAN), "cpm": float(rates.mean()),
        "curve": {"fps_per_scan": fps.tolist(), "sensitivity": sensitivity.tolist(),
                  "threshold": [None if not np.isfinite(t) else float(t) for t in thresholds]},
        "n_nodules": int(entries.is_nodule.sum()),
        "n_nodules_detected": int((entries.is_nodule & entries.in_roc).sum()),
        "n_false_positives": int((~entries.is_nodule).sum()),
        "ci95": boot.summary() if boot is not None else None,
    }
    return numbers, on_grid, boot


def froc_report(label: str, annotations: Findings, detections: Findings, scans: Sequence[str],
                excluded: Optional[Findings] = None, resamples: int = DEFAULT_RESAMPLES,
                seed: int = 0) -> tuple[dict, PlotCurve]:
    """``(report, plot curve)`` of one detection file (see the module docstring)."""
    entries = froc_entries(annotations, detections, scans, excluded)
    numbers, on_grid, boot = _numbers(entries, len(scans), resamples, seed)
    report = {"system": label, "detections": detections.source, **numbers, "n_scans": len(scans),
              "n_detections": len(detections), "strata": {}}
    for name, low, high in DIAMETER_STRATA_MM:
        stratum = froc_entries(annotations, detections, scans, excluded,
                               include=lambda d, low=low, high=high: (d >= low) & (d < high))
        if not stratum.is_nodule.any():
            report["strata"][name] = {"n_nodules": 0, "skipped": "no nodule of this diameter"}
            continue
        stratum_numbers, _, _ = _numbers(stratum, len(scans), resamples, seed)
        stratum_numbers.pop("curve")
        report["strata"][name] = stratum_numbers
    band = boot.bounds(boot.curves) if boot is not None and len(boot.curves) else (None, None)
    return report, PlotCurve(label, report["cpm"], curve_grid(), on_grid, *band)
