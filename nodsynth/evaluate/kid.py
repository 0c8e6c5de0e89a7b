"""Kernel Inception Distance (Binkowski et al., ICLR 2018): the unbiased estimate of the squared
maximum mean discrepancy with the polynomial kernel ``k(a, b) = (gamma * a.b + coef) ** degree``
(``gamma = 1 / features``, ``coef = 1``, ``degree = 3``), averaged over random subsets.

Subsets are drawn as torchmetrics' ``KernelInceptionDistance`` draws them (per subset a
``torch.randperm`` of the real rows, then one of the synthetic rows, the first ``subset_size``
kept), from a generator seeded with ``seed``; the spread is the population standard deviation
over subsets, as torchmetrics reports it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError

DEFAULT_SUBSETS = 100
DEFAULT_SUBSET_SIZE = 1000


def polynomial_kernel(a, b, degree: int = 3, gamma: Optional[float] = None, coef: float = 1.0):
    """Kernel matrix of rows of ``a`` against rows of ``b`` (torch tensors)."""
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    return (a @ b.T * gamma + coef) ** degree


def unbiased_mmd2(k_xx, k_xy, k_yy) -> float:
    """Unbiased MMD^2 from the three kernel matrices (diagonals of ``k_xx``, ``k_yy`` left out)."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.sum() / (m * n))


def kernel_inception_distance(real: np.ndarray, synthetic: np.ndarray, subsets: int = DEFAULT_SUBSETS,
                              subset_size: int = DEFAULT_SUBSET_SIZE, seed: int = 0, degree: int = 3,
                              gamma: Optional[float] = None, coef: float = 1.0) -> tuple[float, float]:
    """``(mean, std)`` of the polynomial-kernel unbiased MMD^2 over ``subsets`` random subsets (float64)."""
    import torch

    if subsets < 1:
        raise InputError(f"KID needs at least one subset, got {subsets}")
    if subset_size < 2:
        raise InputError(f"a KID subset needs at least 2 samples per side, got {subset_size}")
    for side, rows in (("real", real), ("synthetic", synthetic)):
        if len(rows) < subset_size:
            raise InputError(f"the KID subset size {subset_size} is larger than the {len(rows)} {side} samples")
    x = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(synthetic), dtype=torch.float64)
    generator = torch.Generator().manual_seed(int(seed))
    scores = []
    for _ in range(subsets):
        xs = x[torch.randperm(len(x), generator=generator)[:subset_size]]
        ys = y[torch.randperm(len(y), generator=generator)[:subset_size]]
        scores.append(unbiased_mmd2(polynomial_kernel(xs, xs, degree, gamma, coef),
                                    polynomial_kernel(xs, ys, degree, gamma, coef),
                                    polynomial_kernel(ys, ys, degree, gamma, coef)))
    values = np.asarray(scores)
    return float(values.mean()), float(values.std())
