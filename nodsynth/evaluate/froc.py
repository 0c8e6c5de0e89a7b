"""FROC analysis by the LUNA16 challenge's evaluation rules (Setio et al., Med Image Anal 2017).

* Per scan at most :data:`MAX_DETECTIONS_PER_SCAN` detections are kept: when there are more, those
  whose probability is above the 101st highest (LUNA16's rule; ties at that value go out).
* A detection hits a nodule when its distance to the nodule centre is below the radius
  (``|d - c|^2 < (diameter / 2)^2``).
* A nodule that is hit gives one entry with the highest probability among its hits; its other
  hits are neither true nor false positives. A nodule that is missed counts in the total but
  takes no part in the ROC. A detection that hits an excluded finding (LUNA16's irrelevant
  findings, or the nodules of other diameter strata) is ignored; every other detection is a
  false positive. A detection may hit two overlapping nodules and then counts for both.
* The curve is an ROC (scikit-learn ``roc_curve``, as LUNA16) over the remaining entries:
  FP/scan = FPR x (entries that are not hits) / scans, sensitivity = TPR x detected / total
  nodules; with no false positive at all FP/scan is 0 everywhere.
* The sensitivities at 1/8, 1/4, 1/2, 1, 2, 4, 8 FP/scan are read off that curve linearly
  interpolated on :data:`CURVE_GRID_POINTS` points from 1/8 to 8: at the grid point nearest each
  rate (not at the rate itself); their mean is the CPM (competition performance metric).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import InputError
from .froc_io import Findings

FP_RATES_PER_SCAN = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
FP_RATE_NAMES = ("1/8", "1/4", "1/2", "1", "2", "4", "8")
"""FP_RATES_PER_SCAN as written in tables and on plot axes."""
MAX_DETECTIONS_PER_SCAN = 100
CURVE_GRID_POINTS = 10001
MISSED_PROBABILITY = -1e9
"""Probability recorded for a missed nodule (LUNA16's ``minProbValue``); it never enters the ROC."""


@dataclass(frozen=True)
class FrocEntries:
    """LUNA16's FROC vectors: per hit or missed included nodule and per false positive, whether it is
    a nodule, its probability, whether it enters the ROC (missed nodules do not) and its scan index."""

    is_nodule: np.ndarray
    probability: np.ndarray
    in_roc: np.ndarray
    scan: np.ndarray

    def take(self, index: np.ndarray) -> "FrocEntries":
        return FrocEntries(self.is_nodule[index], self.probability[index], self.in_roc[index], self.scan[index])


def most_probable(probabilities: np.ndarray, limit: int = MAX_DETECTIONS_PER_SCAN) -> np.ndarray:
    """Mask of the detections a scan keeps (see the module docstring)."""
    if len(probabilities) <= limit:
        return np.ones(len(probabilities), dtype=bool)
    return probabilities > np.sort(probabilities)[::-1][limit]


def scan_entries(centres: np.ndarray, diameters_mm: np.ndarray, included: np.ndarray,
                 detections: np.ndarray, probabilities: np.ndarray) -> tuple[list, list, list]:
    """``(is_nodule, probability, in_roc)`` entries of one scan's nodules and detections."""
    hits = (((centres[:, None, :] - detections[None, :, :]) ** 2).sum(axis=2)
            < (diameters_mm[:, None] / 2.0) ** 2)
    is_nodule, probability, in_roc = [], [], []
    for row in np.flatnonzero(included):
        found = hits[row]
        is_nodule.append(True)
        probability.append(float(probabilities[found].max()) if found.any() else MISSED_PROBABILITY)
        in_roc.append(bool(found.any()))
    false_positives = ~hits.any(axis=0)
    is_nodule += [False] * int(false_positives.sum())
    probability += probabilities[false_positives].tolist()
    in_roc += [True] * int(false_positives.sum())
    return is_nodule, probability, in_roc


def rows_by_scan(findings: Optional[Findings]) -> dict[str, np.ndarray]:
    """Scan -> row indices of ``findings`` (empty when ``None``)."""
    groups: dict[str, list[int]] = {}
    for row, scan in enumerate(findings.scans if findings is not None else ()):
        groups.setdefault(scan, []).append(row)
    return {scan: np.asarray(rows, dtype=int) for scan, rows in groups.items()}


def froc_entries(annotations: Findings, detections: Findings, scans: Sequence[str],
                 excluded: Optional[Findings] = None,
                 include: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> FrocEntries:
    """The FROC vectors over ``scans``; ``include(diameters_mm)`` picks the nodules evaluated (a
    stratum), the others becoming excluded findings."""
    columns: tuple[list, list, list, list] = ([], [], [], [])
    by_scan = [rows_by_scan(f) for f in (annotations, detections, excluded)]
    none = np.zeros(0, dtype=int)
    for index, scan in enumerate(scans):
        a, d, e = (groups.get(scan, none) for groups in by_scan)
        keep = d[most_probable(detections.values[d])]
        chosen = np.ones(len(a), dtype=bool) if include is None else np.asarray(include(annotations.values[a]), bool)
        centres, diameters = annotations.centres[a], annotations.values[a]
        if len(e):
            centres = np.concatenate([centres, excluded.centres[e]])
            diameters = np.concatenate([diameters, excluded.values[e]])
            chosen = np.concatenate([chosen, np.zeros(len(e), dtype=bool)])
        entries = scan_entries(centres.reshape(-1, 3), diameters, chosen, detections.centres[keep],
                               detections.values[keep])
        for column, values in zip(columns, entries + ([index] * len(entries[0]),)):
            column.extend(values)
    return FrocEntries(np.asarray(columns[0], dtype=bool), np.asarray(columns[1], dtype=np.float64),
                       np.asarray(columns[2], dtype=bool), np.asarray(columns[3], dtype=int))


def froc_curve(entries: FrocEntries, n_scans: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fps_per_scan, sensitivity, thresholds)`` as LUNA16's ``computeFROC``."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import roc_curve

    total = int(entries.is_nodule.sum())
    if total == 0:
        raise InputError("no nodule is evaluated: sensitivity is undefined")
    truth, scores = entries.is_nodule[entries.in_roc], entries.probability[entries.in_roc]
    detected, candidates = int(truth.sum()), len(truth)
    if candidates == 0:
        return np.zeros(1), np.zeros(1), np.array([np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, tpr, thresholds = roc_curve(truth.astype(float), scores)
    fps = np.zeros(len(fpr)) if detected == candidates else fpr * (candidates - detected) / n_scans
    sensitivity = np.zeros(len(tpr)) if detected == 0 else tpr * detected / total
    return fps, sensitivity, thresholds


def curve_grid() -> np.ndarray:
    """The FP/scan points on which the curve is interpolated (1/8 .. 8)."""
    return np.linspace(FP_RATES_PER_SCAN[0], FP_RATES_PER_SCAN[-1], CURVE_GRID_POINTS)


RATE_INDICES = tuple(int(np.argmin(np.abs(curve_grid() - rate))) for rate in FP_RATES_PER_SCAN)
"""Grid points nearest 1/8, 1/4, ..., 8 FP/scan."""


def grid_sensitivity(fps: np.ndarray, sensitivity: np.ndarray) -> np.ndarray:
    """The curve linearly interpolated on :func:`curve_grid` (``numpy.interp``, as LUNA16)."""
    return np.interp(curve_grid(), fps, sensitivity)


def sensitivities_at_rates(fps: np.ndarray, sensitivity: np.ndarray) -> np.ndarray:
    """The seven sensitivities read off the interpolated curve (see the module docstring)."""
    return grid_sensitivity(fps, sensitivity)[list(RATE_INDICES)]
