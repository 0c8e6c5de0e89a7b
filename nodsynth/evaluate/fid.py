"""Frechet distance between two sets of features, per plane and averaged, with MONAI's ``FIDMetric``.

The published script calls ``FIDMetric()(synthetic, real)`` on float features; MONAI computes in
float64 (mean, covariance with ``n - 1``, ``scipy.linalg.sqrtm`` of the covariance product).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import InputError
from .planes import PLANES

MIN_SAMPLES = 2


def require_samples(count: int, side: str, what: str = "feature vectors") -> None:
    """FID (a covariance) needs at least two samples on each side."""
    if count < MIN_SAMPLES:
        raise InputError(f"the {side} side has {count} {what}; FID is undefined with fewer than "
                         f"{MIN_SAMPLES} samples per side (a covariance needs two)")


def frechet_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """MONAI ``FIDMetric`` of ``(n, features)`` arrays."""
    import torch
    from monai.metrics import FIDMetric

    require_samples(len(real), "real")
    require_samples(len(synthetic), "synthetic")
    if real.shape[1] != synthetic.shape[1]:
        raise InputError(f"real and synthetic features differ in length ({real.shape[1]} vs {synthetic.shape[1]})")
    value = FIDMetric()(torch.from_numpy(np.asarray(synthetic)), torch.from_numpy(np.asarray(real)))
    return float(value)


def fid_by_plane(real: Mapping[str, np.ndarray], synthetic: Mapping[str, np.ndarray]) -> dict[str, float]:
    """``fid_xy, fid_yz, fid_zx`` and their mean ``fid_avg``."""
    out = {f"fid_{plane}": frechet_distance(real[plane], synthetic[plane]) for plane in PLANES}
    out["fid_avg"] = float(np.mean([out[f"fid_{plane}"] for plane in PLANES]))
    return out
