"""Morphology in physical millimetres on anisotropic voxel grids.

``spacing_kji`` is the voxel size (mm) along ``k, j, i``. Balls are exact Euclidean balls built
from distance transforms, so they are right on anisotropic voxels and cost the same for any
radius. The distance transform does not treat the array border as background: structures cut by
the array border are assumed to continue.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

FACE_CONNECTIVITY = ndimage.generate_binary_structure(3, 1)
"""6-connectivity: diagonal contacts do not merge objects."""

NEAREST_SEARCH_MM = 3.0
"""A click off the object still picks the nearest object voxel within this distance."""


def edt_mm(mask: np.ndarray, spacing_kji) -> np.ndarray:
    """Distance (mm) from each mask voxel to the nearest non-mask voxel of the array."""
    if mask.all():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(mask, sampling=spacing_kji)


def dilation_mm(mask: np.ndarray, radius_mm: float, spacing_kji) -> np.ndarray:
    """Every voxel within ``radius_mm`` of the mask (Euclidean ball dilation)."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    return edt_mm(~mask, spacing_kji) <= radius_mm


def distance_from_voxel_mm(shape, voxel_kji, spacing_kji) -> np.ndarray:
    """Physical distance (mm) of every voxel of an array of ``shape`` from ``voxel_kji``."""
    axes = [(np.arange(n) - c) * s for n, c, s in zip(shape, voxel_kji, spacing_kji)]
    return np.sqrt(axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2)


def nearest_voxel(mask: np.ndarray, seed_kji, spacing_kji, search_mm: float = NEAREST_SEARCH_MM
                  ) -> Optional[tuple[int, int, int]]:
    """``seed_kji`` if it is in ``mask``, else the nearest mask voxel within ``search_mm``, else None."""
    seed = tuple(int(v) for v in seed_kji)
    if mask[seed]:
        return seed
    candidates = np.argwhere(mask)
    if candidates.size == 0:
        return None
    dist = np.sqrt((((candidates - np.asarray(seed)) * np.asarray(spacing_kji)) ** 2).sum(axis=1))
    best = int(np.argmin(dist))
    return tuple(int(v) for v in candidates[best]) if dist[best] <= search_mm else None  # type: ignore[return-value]


def component_of(mask: np.ndarray, voxel_kji) -> np.ndarray:
    """The 6-connected component of ``mask`` holding ``voxel_kji`` (which must be in the mask)."""
    labels, _ = ndimage.label(mask, structure=FACE_CONNECTIVITY)
    return labels == labels[tuple(voxel_kji)]


def bounding_slices(mask: np.ndarray, margin: int = 1) -> tuple[slice, ...]:
    """Slices of the mask's bounding box grown by ``margin`` voxels (clipped to the array)."""
    nz = np.nonzero(mask)
    return tuple(slice(max(int(v.min()) - margin, 0), min(int(v.max()) + margin + 1, n))
                 for v, n in zip(nz, mask.shape))


def opening_mm(mask: np.ndarray, radius_mm: float, spacing_kji,
               continued_faces: Optional[Sequence[tuple[bool, bool]]] = None) -> np.ndarray:
    """Morphological opening with a Euclidean ball of ``radius_mm``.

    ``continued_faces`` gives, per axis, whether the mask goes on beyond the array's first and
    last face as it is at that face. Balls may then be centred beyond those faces (the mask is
    extended there by repeating its face for the opening), so a structure that a face cuts thin -
    a chest wall at the edge of a crop - still holds the balls it holds whole.
    """
    if continued_faces is None:
        return dilation_mm(edt_mm(mask, spacing_kji) > radius_mm, radius_mm, spacing_kji) & mask
    reach = np.ceil(radius_mm / np.asarray(spacing_kji, dtype=np.float64)).astype(int) + 1
    widths = [(int(r) if before else 0, int(r) if after else 0) for r, (before, after) in zip(reach, continued_faces)]
    opened = opening_mm(np.pad(mask, widths, mode="edge"), radius_mm, spacing_kji)
    return opened[tuple(slice(w[0], w[0] + n) for w, n in zip(widths, mask.shape))]
