"""Nodule-centred training patches: resampled to a fixed spacing, clipped, z-scored.

A patch is ``size_xyz`` voxels at ``spacing_xyz_mm`` on a RAS-aligned grid (array ``[x, y, z]``) with the
nodule centre on voxel ``size // 2`` of each axis; the CT is resampled onto it linearly. Where the patch
reaches beyond the CT (tight crops), it is **padded with -1000 HU** (air). The HU are clipped to
``clip_hu`` and the patch is z-scored by its own mean and SD (MONAI ``NormalizeIntensity``) or, for
``normalisation="unit"``, scaled from the clip range to [0, 1] (MONAI ``ScaleIntensityRange``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import InputError
from ..volume import Volume
from .cases import Nodule

PAD_HU = -1000.0


@dataclass(frozen=True)
class PatchSettings:
    """Patch size (voxels x, y, z), spacing (mm x, y, z) and HU clip range."""

    size_xyz: tuple[int, int, int]
    spacing_xyz_mm: tuple[float, float, float]
    clip_hu: tuple[float, float]
    normalisation: str = "z-score"

    def __post_init__(self) -> None:
        if len(self.size_xyz) != 3 or any(int(n) < 4 for n in self.size_xyz):
            raise InputError(f"--patch-voxels must be one or three sizes of at least 4 voxels, got {list(self.size_xyz)}")

    def as_dict(self) -> dict:
        return {"patch_voxels_xyz": [int(n) for n in self.size_xyz],
                "patch_spacing_mm_xyz": [float(s) for s in self.spacing_xyz_mm],
                "clip_hu": [float(c) for c in self.clip_hu], "pad_hu": PAD_HU, "normalisation": self.normalisation}


def hu_patch(ct: Volume, centre_lps: Sequence[float], settings: PatchSettings) -> np.ndarray:
    """Float32 ``[x, y, z]`` HU patch around ``centre_lps``, padded with -1000 HU and clipped."""
    from ..engines.maisi.grid import resample_onto
    from ..evaluate.nodule_crops import centred_ras_grid

    source = ct.with_array(np.asarray(ct.array, dtype=np.float32))
    grid = centred_ras_grid(centre_lps, settings.size_xyz, settings.spacing_xyz_mm)
    patch = resample_onto(source, grid, nearest=False, default_value=PAD_HU)
    return np.clip(np.transpose(patch.array, (2, 1, 0)), *settings.clip_hu).astype(np.float32)


def z_score(patch: np.ndarray) -> np.ndarray:
    """``(patch - mean) / SD``; a constant patch becomes zeros."""
    sd = float(patch.std())
    return ((patch - patch.mean()) / sd if sd > 0 else np.zeros_like(patch)).astype(np.float32)


def normalised(patch: np.ndarray, settings: PatchSettings) -> np.ndarray:
    """The clipped HU patch z-scored, or scaled from the clip range to [0, 1] (``normalisation="unit"``)."""
    if settings.normalisation == "unit":
        low, high = settings.clip_hu
        return ((patch - low) / (high - low)).astype(np.float32)
    return z_score(patch)


def load_patches(nodules: Sequence[Nodule], settings: PatchSettings,
                 read_ct: Callable[[object], Volume], progress: Optional[Callable[[float, str], None]] = None
                 ) -> dict[tuple[str, str], np.ndarray]:
    """Normalised patch of every nodule by its key; each CT file is read once."""
    patches, by_ct = {}, {}
    for nodule in nodules:
        by_ct.setdefault(nodule.ct, []).append(nodule)
    for n, (path, group) in enumerate(sorted(by_ct.items())):
        if progress:
            progress(n / len(by_ct), path.name)
        ct = read_ct(path)
        for nodule in group:
            patches[nodule.key] = normalised(hu_patch(ct, nodule.centre_lps, settings), settings)
    return patches
