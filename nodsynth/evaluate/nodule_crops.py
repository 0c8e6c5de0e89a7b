"""Nodule-centred crops for HR-LDM's fidelity metrics.

A crop is a cube of ``size_voxels`` per side at ``spacing_mm`` (isotropic), axis-aligned in RAS
order ``[x, y, z]`` like the whole-CT pipeline, with the nodule centre on voxel ``size // 2`` of
every axis; the CT is resampled onto it linearly (SimpleITK), -1000 HU outside the scan, and
clipped to -1000..1000 HU. ``slices`` consecutive slices around the centre are taken in each of
the three planes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..volume import Volume
from .ct_prep import CLIP_RANGE_HU, PAD_HU
from .planes import PLANES, around_centre

RAS_AXES_IN_LPS = np.diag([-1.0, -1.0, 1.0])
"""Direction matrix of a grid whose i, j, k axes point to R, A, S."""


@dataclass(frozen=True)
class CropSettings:
    """Crop edge in voxels, its isotropic spacing (mm) and the slices taken around the centre per plane."""

    size_voxels: int = 64
    spacing_mm: float = 1.0
    slices: int = 5

    def __post_init__(self) -> None:
        if self.size_voxels < 8 or not self.spacing_mm > 0 or not 1 <= self.slices <= self.size_voxels:
            raise InputError(f"crop settings need size >= 8 voxels, spacing > 0 mm and 1..size slices; got "
                             f"{self.size_voxels} voxels, {self.spacing_mm} mm, {self.slices} slices")

    def slice_ranges(self) -> dict[str, tuple[int, int]]:
        return {plane: around_centre(self.size_voxels, self.slices) for plane in PLANES}

    def as_dict(self) -> dict:
        return {"crop_size_voxels": self.size_voxels, "crop_spacing_mm": self.spacing_mm, "slices": self.slices}


def mask_centre_lps(mask: Volume) -> np.ndarray:
    """Centroid (LPS mm) of the mask's non-zero voxels."""
    voxels = np.argwhere(np.asarray(mask.array) > 0)
    if not len(voxels):
        raise InputError("the nodule mask is empty: no centre to crop around")
    return mask.index_to_world(voxels.mean(axis=0)[::-1])


def centred_ras_grid(centre_lps: Sequence[float], size_xyz: Sequence[int], spacing_xyz_mm: Sequence[float]) -> Volume:
    """The (empty) RAS-aligned grid of ``size_xyz`` voxels with ``centre_lps`` on voxel ``size // 2`` of each axis."""
    size, spacing = np.asarray(size_xyz, dtype=int), np.asarray(spacing_xyz_mm, dtype=np.float64)
    origin = np.asarray(centre_lps, dtype=np.float64) - RAS_AXES_IN_LPS @ (spacing * (size // 2))
    return Volume(np.zeros(tuple(size[::-1]), dtype=np.uint8), spacing, origin, RAS_AXES_IN_LPS)


def crop_grid(centre_lps: Sequence[float], settings: CropSettings) -> Volume:
    """The (empty) RAS-aligned crop grid with ``centre_lps`` on voxel ``size // 2``."""
    return centred_ras_grid(centre_lps, (settings.size_voxels,) * 3, (settings.spacing_mm,) * 3)


def nodule_crop(ct: Volume, centre_lps: Sequence[float], settings: CropSettings) -> np.ndarray:
    """Float32 ``[x, y, z]`` HU crop around ``centre_lps`` (see the module docstring)."""
    from ..engines.maisi.grid import resample_onto

    source = ct.with_array(np.asarray(ct.array, dtype=np.float32))
    crop = resample_onto(source, crop_grid(centre_lps, settings), nearest=False, default_value=PAD_HU)
    return np.clip(np.transpose(crop.array, (2, 1, 0)), *CLIP_RANGE_HU).astype(np.float32)
