"""Maximum mean discrepancy with a Gaussian kernel (Gretton et al., JMLR 2012).

``mmd2`` is the unbiased estimate of MMD^2 with ``k(a, b) = exp(-|a - b|^2 / (2 sigma^2))``.
Bandwidth rule (the median heuristic): ``sigma`` is the median Euclidean distance between distinct
rows of the pooled real and synthetic features; when more than :data:`MEDIAN_SAMPLE_ROWS` rows are
pooled the median is taken over a seeded random sample of that many rows.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError
from .kid import unbiased_mmd2

MEDIAN_SAMPLE_ROWS = 2000


def _squared_distances(a, b):
    import torch

    return torch.clamp((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, min=0.0)


def median_bandwidth(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> float:
    """The median-heuristic ``sigma`` of the pooled rows (see the module docstring)."""
    import torch

    pooled = np.concatenate([np.asarray(real, dtype=np.float64), np.asarray(synthetic, dtype=np.float64)])
    if len(pooled) > MEDIAN_SAMPLE_ROWS:
        pooled = pooled[np.random.default_rng(seed).choice(len(pooled), MEDIAN_SAMPLE_ROWS, replace=False)]
    rows = torch.from_numpy(pooled)
    upper = torch.triu_indices(len(rows), len(rows), offset=1)
    distances = _squared_distances(rows, rows)[upper[0], upper[1]].sqrt()
    return float(np.median(distances.numpy()))


def gaussian_mmd2(real: np.ndarray, synthetic: np.ndarray, bandwidth: Optional[float] = None,
                  seed: int = 0) -> tuple[float, float]:
    """``(mmd2, sigma)``: unbiased MMD^2 with the Gaussian kernel and the bandwidth used."""
    import torch

    if len(real) < 2 or len(synthetic) < 2:
        raise InputError("MMD needs at least 2 samples per side")
    sigma = median_bandwidth(real, synthetic, seed) if bandwidth is None else float(bandwidth)
    if not sigma > 0:
        raise InputError("the MMD bandwidth is zero: every feature vector is identical")
    x = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(synthetic), dtype=torch.float64)

    def kernel(a, b):
        return torch.exp(-_squared_distances(a, b) / (2.0 * sigma * sigma))

    return unbiased_mmd2(kernel(x, x), kernel(x, y), kernel(y, y)), sigma
