"""Mask clean-up after segmentation: fill holes, expand by a physical distance, restrict to the lungs."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..labels import LOBE_IDS, LUNG, NODULE
from ..volume import Volume, require_same_grid
from .mm_morphology import FACE_CONNECTIVITY, bounding_slices, dilation_mm

LUNG_IDS = (*LOBE_IDS, LUNG, NODULE)
"""MAISI ids that count as lung: the five lobes, lung (20) and lung nodules (23)."""


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill cavities fully enclosed by the mask in 3-D (``ndimage.binary_fill_holes``: background
    6-connected to the array border stays background).

    The background of the mask's bounding box, framed by one background voxel on every side, is
    labelled once; every background voxel not in the frame's component is a hole. Outside that box
    the background is one region joined to the frame.
    """
    out = np.zeros(mask.shape, dtype=bool)
    if mask.any():
        box = bounding_slices(mask, 0)
        framed = np.zeros(tuple(b.stop - b.start + 2 for b in box), dtype=bool)
        inner = tuple(slice(1, -1) for _ in box)
        framed[inner] = mask[box]
        background, _ = ndimage.label(~framed, structure=FACE_CONNECTIVITY)
        out[box] = background[inner] != background[(0,) * mask.ndim]
    return out


def expand_mm(mask: np.ndarray, spacing_kji, distance_mm: float) -> np.ndarray:
    """Add every voxel within ``distance_mm`` (physical, so ellipsoidal in voxels) of the mask."""
    if distance_mm < 0:
        raise InputError(f"expansion must be >= 0 mm, got {distance_mm}")
    if distance_mm == 0:
        return mask.copy()
    return dilation_mm(mask, distance_mm, spacing_kji)


def lung_region(lung: Volume, ct: Volume) -> np.ndarray:
    """Boolean lung region on the CT grid from a MAISI label map (lobes 28-32, lung 20, nodule 23) or a 0/1 mask."""
    require_same_grid(ct, lung, "CT", "lung mask / label map")
    values = np.asarray(lung.array)
    if values.size and float(values.max()) <= 1:
        region = values > 0
    else:
        ids = values if np.issubdtype(values.dtype, np.integer) else np.rint(values).astype(np.int32)
        if int(ids.min()) < 0:
            region = np.isin(ids, LUNG_IDS)
        else:  # a lookup table: several times faster than np.isin on a whole CT's label map
            lookup = np.zeros(max(int(ids.max()), max(LUNG_IDS)) + 1, bool)
            lookup[list(LUNG_IDS)] = True
            region = lookup[ids]
    if not region.any():
        raise InputError("the lung mask / label map holds no lung voxels (expected lobes 28-32, lung 20 or a 0/1 mask)")
    return region
