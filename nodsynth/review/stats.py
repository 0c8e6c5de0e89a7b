"""Statistics of a reading study: proportions, tests against chance, McNemar, ROC AUC.

* :func:`wilson_interval` - Wilson score interval of a proportion (95 % by default);
* :func:`binomial_p_two_sided` - exact two-sided binomial test (SciPy's ``binomtest``): probability,
  under ``p0``, of an outcome no more likely than the one observed;
* :func:`mcnemar_exact` - exact McNemar test of paired correct / wrong outcomes: the discordant pairs
  tested against an even split;
* :func:`roc_auc` - area under the ROC curve from scores (Mann-Whitney, ties counted half).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

Z_95 = 1.959963984540054
"""Standard normal quantile of 0.975."""


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[Optional[float], Optional[float]]:
    """Wilson score interval ``(low, high)`` of ``successes / n``; ``(None, None)`` for ``n = 0``."""
    if n == 0:
        return None, None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_p_two_sided(successes: int, n: int, p0: float = 0.5) -> Optional[float]:
    """Exact two-sided binomial test p-value of ``successes`` in ``n`` against ``p0``; None for ``n = 0``."""
    from scipy.stats import binomtest

    if n == 0:
        return None
    return float(binomtest(int(successes), int(n), p0, alternative="two-sided").pvalue)


def mcnemar_exact(only_first: int, only_second: int) -> dict:
    """Exact McNemar test from the discordant pair counts (right only in the first / only in the second)."""
    discordant = only_first + only_second
    return {"only_first_correct": int(only_first), "only_second_correct": int(only_second),
            "p_value": 1.0 if discordant == 0 else binomial_p_two_sided(only_first, discordant)}


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> Optional[float]:
    """Area under the ROC curve of ``scores`` for the ``positive`` class; None without both classes."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
