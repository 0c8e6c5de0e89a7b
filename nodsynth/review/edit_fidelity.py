"""Numbers for ROI edits: what stayed bit-identical outside the change, and how the box compares.

An ROI edit (NodMAISI's ``edit``, the model-free re-render, an inpainted nodule) may change only
the voxels near the edited labels. The **changed region** is the set of voxels whose label changed
(or a given mask of them) grown by ``margin_mm``; outside it every voxel should be bit-identical to
the real CT. Inside the **box** (the changed region's bounding box, at least
:data:`MIN_BOX_VOXELS` a side where the grid allows) PSNR and SSIM (scikit-image) compare the two
CTs with both clipped to :data:`COMPARE_RANGE_HU`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError
from ..labelmap import as_integer_labelmap
from ..segment.mm_morphology import dilation_mm
from ..volume import Volume, require_same_grid

COMPARE_RANGE_HU = (-1000.0, 1000.0)
"""Both CTs are clipped to this range for PSNR / SSIM; its width is the data range (2000 HU)."""
MIN_BOX_VOXELS = 7
"""SSIM's 7-voxel window needs a box at least this large along each axis."""


def changed_labels(labelmap: Volume, edited_labelmap: Volume) -> np.ndarray:
    """Boolean array of the voxels whose label differs between the two label maps."""
    require_same_grid(labelmap, edited_labelmap, "label map", "edited label map")
    before = as_integer_labelmap(labelmap).array
    return before != as_integer_labelmap(edited_labelmap, name="edited label map").array


def grow_mm(mask: np.ndarray, spacing_kji: np.ndarray, margin_mm: float) -> np.ndarray:
    """``mask`` plus every voxel within ``margin_mm`` of it (:func:`~nodsynth.segment.mm_morphology.dilation_mm`)."""
    if not (np.isfinite(margin_mm) and margin_mm >= 0):
        raise InputError(f"the margin must be >= 0 mm, got {margin_mm}")
    return dilation_mm(mask, margin_mm, spacing_kji)


def psnr_db(real: np.ndarray, synthetic: np.ndarray) -> Optional[float]:
    """PSNR (dB) over :data:`COMPARE_RANGE_HU`; None when the two are identical (infinite PSNR)."""
    low, high = COMPARE_RANGE_HU
    diff = np.clip(synthetic, low, high).astype(np.float64) - np.clip(real, low, high)
    mse = float(np.mean(diff ** 2))
    return None if mse == 0 else float(10.0 * np.log10((high - low) ** 2 / mse))


def ssim(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Mean 3-D SSIM (scikit-image, uniform 7-voxel window or the largest odd one that fits)."""
    from skimage.metrics import structural_similarity

    low, high = COMPARE_RANGE_HU
    window = min(MIN_BOX_VOXELS, *[n if n % 2 else n - 1 for n in real.shape])
    if window < 3:
        raise InputError(f"the box {list(real.shape)} is too thin for SSIM (needs >= 3 voxels per axis)")
    return float(structural_similarity(np.clip(real, low, high).astype(np.float64),
                                       np.clip(synthetic, low, high).astype(np.float64),
                                       win_size=window, data_range=high - low))


def box_around(mask: np.ndarray) -> tuple[slice, ...]:
    """Bounding box of ``mask`` widened to :data:`MIN_BOX_VOXELS` per axis where the grid allows."""
    nz = np.argwhere(mask)
    box = []
    for lo, hi, size in zip(nz.min(axis=0), nz.max(axis=0) + 1, mask.shape):
        need = min(MIN_BOX_VOXELS, size)
        if hi - lo < need:
            lo = max(int(lo) - (need - (hi - lo)) // 2, 0)
            hi = min(lo + need, size)
            lo = hi - need
        box.append(slice(int(lo), int(hi)))
    return tuple(box)


def edit_fidelity(real: Volume, synthetic: Volume, changed: np.ndarray, margin_mm: float = 3.0) -> dict:
    """Bit-identical fraction outside the changed region and PSNR / SSIM inside its box.

    ``changed`` is a boolean array on the CT grid (e.g. :func:`changed_labels`, or an inserted
    nodule's mask); it is grown by ``margin_mm`` first.
    """
    require_same_grid(real, synthetic, "real CT", "synthetic CT")
    changed = np.asarray(changed).astype(bool)
    if changed.shape != real.shape_kji:
        raise InputError(f"the changed-region mask has shape {changed.shape}, the CTs {real.shape_kji}")
    if not changed.any():
        raise InputError("nothing changed: the label maps (or the changed-region mask) do not differ")
    region = grow_mm(changed, real.spacing[::-1], margin_mm)
    a, b = np.asarray(real.array), np.asarray(synthetic.array)
    outside = ~region
    outside_count = int(outside.sum())
    identical = int(np.count_nonzero(a[outside] == b[outside]))
    box = box_around(region)
    return {"changed_voxels": int(changed.sum()), "margin_mm": float(margin_mm), "region_voxels": int(region.sum()),
            "outside_voxels": outside_count,
            "bit_identical_fraction_outside": 1.0 if outside_count == 0 else identical / outside_count,
            "box_start_kji": [s.start for s in box], "box_stop_kji": [s.stop for s in box],
            "psnr_db_box": psnr_db(a[box], b[box]), "ssim_box": ssim(a[box], b[box])}
