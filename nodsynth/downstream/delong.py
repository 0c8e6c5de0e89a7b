"""ROC AUC with DeLong's variance (DeLong, DeLong & Clarke-Pearson 1988), by the fast algorithm of Sun & Xu
(IEEE Signal Process. Lett. 2014): the structural components come from mid-ranks, O(N log N).

For ``k`` score vectors on the same cases, :func:`delong` returns the AUCs and their ``k x k`` covariance
``S10 / m + S01 / n`` (``m`` positives, ``n`` negatives). The 95 % CI is ``AUC -/+ 1.96 sqrt(var)`` clipped
to [0, 1]; the paired test of two AUCs is ``z = (A1 - A2) / sqrt(var1 + var2 - 2 cov)``, two-sided.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy.stats import norm, rankdata

CI_LEVEL = 0.95


def delong(labels: Sequence[int], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(aucs [k], covariance [k, k])`` of ``scores`` (``[k, N]`` or ``[N]``) for binary ``labels`` (1 positive).

    Needs at least one positive and one negative case (ValueError otherwise).
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    m, n = int(labels.sum()), int((~labels).sum())
    if m == 0 or n == 0:
        raise ValueError("DeLong's AUC needs positive and negative cases")
    positives, negatives = scores[:, labels], scores[:, ~labels]
    rank_all = rankdata(np.concatenate([positives, negatives], axis=1), axis=1)
    rank_pos, rank_neg = rankdata(positives, axis=1), rankdata(negatives, axis=1)
    v10 = (rank_all[:, :m] - rank_pos) / n
    v01 = 1.0 - (rank_all[:, m:] - rank_neg) / m
    aucs = v10.mean(axis=1)
    return aucs, _sample_covariance(v10) / m + _sample_covariance(v01) / n


def _sample_covariance(components: np.ndarray) -> np.ndarray:
    """``k x k`` sample covariance (ddof 1) of structural components ``[k, cases]``; 0 for a single case."""
    k, cases = components.shape
    return np.atleast_2d(np.cov(components)) if cases > 1 else np.zeros((k, k))


def auc_ci(auc: float, variance: float, level: float = CI_LEVEL) -> list[float]:
    """The DeLong confidence interval ``[lo, hi]`` of one AUC, clipped to [0, 1]."""
    half = norm.ppf(0.5 + level / 2) * np.sqrt(max(variance, 0.0))
    return [float(max(auc - half, 0.0)), float(min(auc + half, 1.0))]


def paired_test(labels: Sequence[int], scores_a: np.ndarray, scores_b: np.ndarray) -> dict:
    """DeLong's paired test of two classifiers' AUCs on the same cases: ``auc_a, auc_b, z, p_value``.

    ``z`` and ``p_value`` are ``None`` (with ``reason``) when the difference has no variance.
    """
    aucs, cov = delong(labels, np.stack([scores_a, scores_b]))
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    result: dict[str, Optional[float] | str] = {"auc_a": float(aucs[0]), "auc_b": float(aucs[1])}
    if variance <= 0:
        return {**result, "z": None, "p_value": None, "reason": "the AUC difference has zero variance"}
    z = float((aucs[0] - aucs[1]) / np.sqrt(variance))
    return {**result, "z": z, "p_value": float(2 * norm.sf(abs(z)))}
