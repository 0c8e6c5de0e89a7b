"""Where a cohort nodule may go in one case: the lung, its distance to the pleura and to the other nodules.

* **Lung** and **existing nodules** from the source (:func:`nodsynth.place.resolve_lung`: label map > CT threshold).
* A nodule's **pleura distance** is the smallest distance (mm) from one of its voxels to a non-lung voxel;
  every voxel of a nodule lies in the lung (and outside every existing nodule).
* **inner**: pleura distance >= ``pleura_clearance_mm``; **subpleural**: pleura distance <= :data:`SUBPLEURAL_MM`.
* **clearance**: the smallest distance (mm) between a voxel of the nodule and one of any other nodule (existing
  or planned in the same case) is >= ``clearance_mm`` (and never 0: nodules do not overlap).

Candidate centres are drawn from a precomputed pre-filter (the centre's own pleura distance against the
nodule's bounding sphere), and each candidate mask is then checked exactly as above.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError
from ..place import _bounding_crop, _distance_mm
from ..volume import Volume
from .nodule import LocalMask

SUBPLEURAL_MM = 2.0
"""A sub-pleural nodule's surface lies within this distance (mm) of the lung boundary."""


@dataclass
class SourceLung:
    """One source's lung on the crop of its grid that holds it: distance to the pleura (mm, 0 outside the lung)
    and the existing nodules. Shared, read-only, by every case of the source."""

    grid: Volume  # the crop's geometry
    start_kji: np.ndarray  # the crop's start on the source grid
    pleura_mm: np.ndarray  # float32
    existing: np.ndarray  # bool
    by_depth: np.ndarray = field(init=False)  # flat indices of the lung voxels, by increasing pleura distance
    depths: np.ndarray = field(init=False)  # their pleura distances (mm), increasing

    def __post_init__(self) -> None:
        flat = self.pleura_mm.ravel()
        lung = np.flatnonzero(flat > 0)
        order = np.argsort(flat[lung], kind="stable")
        self.by_depth = lung[order].astype(np.int64)
        self.depths = flat[self.by_depth]

    def at_depth(self, low_mm: float, high_mm: float, low_open: bool = False) -> np.ndarray:
        """Flat indices of the lung voxels whose pleura distance lies in ``[low_mm, high_mm]`` (``(low, high]``
        with ``low_open``)."""
        low, high = np.float32(low_mm), np.float32(min(high_mm, np.finfo(np.float32).max))
        start = np.searchsorted(self.depths, low, side="right" if low_open else "left")
        return self.by_depth[start:np.searchsorted(self.depths, high, side="right")]

    @classmethod
    def from_masks(cls, lung: Volume, nodules: Optional[Volume]) -> "SourceLung":
        lung_array = np.asarray(lung.array).astype(bool)
        start, stop = _bounding_crop(lung_array, np.full(3, 2))
        crop = tuple(slice(a, b) for a, b in zip(start, stop))
        existing = (np.asarray(nodules.array).astype(bool)[crop] if nodules is not None
                    else np.zeros(tuple(stop - start), dtype=bool))
        return cls(lung.crop(start, stop), start, _distance_mm(lung_array[crop], lung.spacing[::-1]), existing)

    def max_pleura_mm(self) -> float:
        return float(self.pleura_mm.max())


@dataclass
class CaseRoom:
    """The room left in one case: the source lung plus the nodules planned so far."""

    lung: SourceLung
    clearance_mm: float
    pleura_clearance_mm: float
    taken: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.taken = self.lung.existing.copy()

    def candidates(self, location: str, diameter_mm: float, bounding_mm: float) -> np.ndarray:
        """Flat indices (on the crop) of centres where a nodule of this equivalent and bounding diameter could
        meet ``location``'s rule (inner: its bounding sphere does; sub-pleural: the centre lies deeper than half
        the equivalent sphere and no deeper than the bounding sphere reaches)."""
        if location == "inner":
            return self.lung.at_depth(0.5 * bounding_mm + self.pleura_clearance_mm, np.inf)
        return self.lung.at_depth(0.25 * diameter_mm, 0.5 * bounding_mm + SUBPLEURAL_MM, low_open=True)

    def fits(self, mask: LocalMask, location: str) -> bool:
        """Whether the mask (on the crop's grid) meets the lung, location and clearance rules."""
        voxels = mask.voxels_kji()
        if len(voxels) == 0 or np.any(voxels < 0) or np.any(voxels >= self.taken.shape):
            return False
        pleura = self.lung.pleura_mm[tuple(voxels.T)]
        if not np.all(pleura > 0):
            return False
        nearest = float(pleura.min())
        if location == "inner" and nearest < self.pleura_clearance_mm:
            return False
        if location == "subpleural" and nearest > SUBPLEURAL_MM:
            return False
        clearance = self.clearance_of(mask)
        return clearance > 0 and clearance >= self.clearance_mm

    def clearance_of(self, mask: LocalMask) -> float:
        """Smallest distance (mm) from the mask to a taken voxel (inf when none is near)."""
        spacing_kji = self.lung.grid.spacing[::-1]
        margin = np.ceil(self.clearance_mm / spacing_kji).astype(int) + 1
        start = np.maximum(mask.start_kji - margin, 0)
        stop = np.minimum(mask.start_kji + np.asarray(mask.array.shape) + margin, self.taken.shape)
        taken = np.argwhere(self.taken[tuple(slice(a, b) for a, b in zip(start, stop))])
        if len(taken) == 0:
            return float("inf")
        distance, _ = cKDTree(taken * spacing_kji).query((mask.voxels_kji() - start) * spacing_kji)
        return float(distance.min())

    def take(self, mask: LocalMask) -> None:
        self.taken[tuple(mask.voxels_kji().T)] = True


def require_lung(lung: SourceLung, bounding_mm: float, what: str) -> None:
    """Refuse a nodule whose bounding sphere cannot lie in the lung at all."""
    if 0.5 * bounding_mm >= lung.max_pleura_mm():
        raise InputError(f"{what} is larger than the lung: its bounding sphere ({bounding_mm:.1f} mm) does not fit "
                         f"anywhere (the deepest lung point is {lung.max_pleura_mm():.1f} mm from the pleura)")
