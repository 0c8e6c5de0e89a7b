"""HR-LDM's metrics: AUROC and AUPRC one-vs-rest per class and nodule-size bin, and the two-sided Mann-Whitney U
test between arms over runs.

* AUROC from mid-ranks (:func:`.delong.delong`); AUPRC is the average precision
  ``sum_k (R_k - R_(k-1)) P_k`` over the distinct score thresholds, highest first.
* Mann-Whitney U: ``U`` of the first sample from mid-ranks; the p-value is exact (all rank splits enumerated)
  when one sample has at most ``EXACT_MAX`` values and there are no ties, else the normal approximation with the tie
  correction and a continuity correction of 1/2.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from scipy.stats import norm, rankdata

from .delong import delong

SIZE_BINS_MM = ((6.0, 10.0), (10.0, 20.0), (20.0, 30.0))
EXACT_MAX = 8
MIN_RUNS = 3


def average_precision(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the precision-recall curve as average precision (step-wise, no interpolation)."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # the last case of each distinct score
    hits = np.cumsum(labels)[last]
    precision, recall = hits / (last + 1), hits / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def one_vs_rest(labels: Sequence[int], scores: np.ndarray, diameters_mm: Sequence[Optional[float]],
                class_names: Sequence[str]) -> dict:
    """``{class: {bin: {"n", "n_positive", "auroc", "auprc"}}}``; ``null`` metrics with a reason when the bin
    holds one class only."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    diameters = np.asarray([np.nan if d is None else d for d in diameters_mm], dtype=np.float64)
    out: dict = {}
    for c, name in enumerate(class_names):
        for low, high in SIZE_BINS_MM:
            inside = (diameters >= low) & (diameters < high)
            positive = labels[inside] == c
            entry = {"n": int(inside.sum()), "n_positive": int(positive.sum())}
            if positive.all() or not positive.any():
                entry.update(auroc=None, auprc=None, reason="the bin holds one class only")
            else:
                entry.update(auroc=float(delong(positive, scores[inside, c])[0][0]),
                             auprc=average_precision(positive, scores[inside, c]))
            out.setdefault(name, {})[f"{low:g}-{high:g}"] = entry
    return out


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> dict:
    """Two-sided Mann-Whitney U test of ``a`` vs ``b``: ``{"u", "p_value", "method"}`` (U of ``a``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n1, n2 = len(a), len(b)
    ranks = rankdata(np.r_[a, b])
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2)
    if min(n1, n2) <= EXACT_MAX and len(np.unique(ranks)) == n1 + n2:
        return {"u": u, "p_value": _exact_p(u, n1, n2), "method": "exact"}
    _, counts = np.unique(ranks, return_counts=True)
    n = n1 + n2
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - float((counts ** 3 - counts).sum()) / (n * (n - 1))))
    if sd == 0:
        return {"u": u, "p_value": 1.0, "method": "asymptotic"}
    z = (abs(u - n1 * n2 / 2) - 0.5) / sd
    return {"u": u, "p_value": float(min(1.0, 2 * norm.sf(max(z, 0.0)))), "method": "asymptotic"}


def _exact_p(u: float, n1: int, n2: int) -> float:
    """Two-sided exact p: twice the smaller tail of U, at most 1. U's null distribution is that of the rank sum
    of ``k = min(n1, n2)`` ranks drawn from ``1..n1+n2``, counted by dynamic programming over the ranks (U is
    symmetric about ``n1 n2 / 2``, so the smaller sample's U gives the same p)."""
    k, total = min(n1, n2), n1 + n2
    if k != n1:
        u = n1 * n2 - u
    ways = np.zeros((k + 1, k * total + 1))
    ways[0, 0] = 1.0
    for rank in range(1, total + 1):
        ways[1:, rank:] += ways[:-1, :-rank].copy()
    counts = ways[k, k * (k + 1) // 2:k * (k + 1) // 2 + n1 * n2 + 1]
    u_values = np.arange(len(counts))
    tail = min(counts[u_values >= u].sum(), counts[u_values <= u].sum()) / counts.sum()
    return float(min(1.0, 2 * tail))


def run_comparison(a: Sequence[Optional[float]], b: Sequence[Optional[float]]) -> dict:
    """Mann-Whitney between two arms' values over runs; ``null`` with the reason under ``MIN_RUNS`` values."""
    a, b = [v for v in a if v is not None], [v for v in b if v is not None]
    if min(len(a), len(b)) < MIN_RUNS:
        return {"u": None, "p_value": None,
                "reason": f"Mann-Whitney U needs >= {MIN_RUNS} runs per arm with a value (a bin holding both "
                          f"classes), got {len(a)} and {len(b)}"}
    return mann_whitney(a, b)
