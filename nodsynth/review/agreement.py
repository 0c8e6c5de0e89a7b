"""Agreement between readers: Cohen's kappa for two, Fleiss' kappa for more.

Both take the cases every reader answered. Kappa is ``(p_observed - p_chance) / (1 - p_chance)``;
it is undefined (None) when chance agreement is already 1 (every answer the same).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

CATEGORIES = ("real", "synthetic")


def cohen_kappa(first: Sequence[str], second: Sequence[str], categories: Sequence[str] = CATEGORIES) -> Optional[float]:
    """Cohen's kappa of two readers' answers to the same cases (same order)."""
    a, b = np.asarray(first), np.asarray(second)
    if a.size == 0 or a.shape != b.shape:
        return None
    observed = float(np.mean(a == b))
    chance = float(sum(np.mean(a == c) * np.mean(b == c) for c in categories))
    return None if chance >= 1.0 else (observed - chance) / (1.0 - chance)


def fleiss_kappa(counts: np.ndarray) -> Optional[float]:
    """Fleiss' kappa from an ``(n_cases, n_categories)`` table of how many readers chose each category.

    Every row must sum to the same number of readers (>= 2).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return None
    raters = counts.sum(axis=1)
    if raters.min() != raters.max() or raters[0] < 2:
        return None
    m = raters[0]
    per_case = (np.sum(counts ** 2, axis=1) - m) / (m * (m - 1))
    observed = float(per_case.mean())
    shares = counts.sum(axis=0) / counts.sum()
    chance = float(np.sum(shares ** 2))
    return None if chance >= 1.0 else (observed - chance) / (1.0 - chance)


def readers_agreement(answers_by_reader: Mapping[str, Mapping[str, str]]) -> Optional[dict]:
    """``{"kappa", "method"}`` over the cases all readers answered; None for fewer than two readers."""
    readers = sorted(answers_by_reader)
    if len(readers) < 2:
        return None
    common = sorted(set.intersection(*(set(answers_by_reader[r]) for r in readers)))
    if len(readers) == 2:
        kappa = cohen_kappa([answers_by_reader[readers[0]][c] for c in common],
                            [answers_by_reader[readers[1]][c] for c in common])
        return {"kappa": kappa, "method": "cohen"}
    table = np.array([[sum(answers_by_reader[r][c] == k for r in readers) for k in CATEGORIES] for c in common])
    return {"kappa": fleiss_kappa(table) if common else None, "method": "fleiss"}
