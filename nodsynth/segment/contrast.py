"""How much a segmented region stands out from the lung around it (HU), and when that is too little to be
a nodule: the rule the review kit's "reproduced" and the click segmenter's "no nodule at this point" share.

The click segmenter always returns the densest cluster under the click, even in plain parenchyma (a
click given in RAS as LPS, say): there it outlines noise of about a nodule's size. Such a region is
barely denser than the lung around it; a real nodule, ground-glass included, is far denser.

Without a lung mask, "the lung around it" is the shell's aerated voxels (below
:data:`~nodsynth.place.LUNG_THRESHOLD_HU`): a nodule against the chest wall or a vessel is compared with
the lung beside it, not with the soft tissue (the real ground-glass nodule of LIDC-IDRI-0002 stands
out from its whole shell by -155 HU, from the lung in it by far more).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError
from ..place import LUNG_THRESHOLD_HU
from ..volume import Volume, nonzero_extent_kji
from .mm_morphology import dilation_mm

MIN_CONTRAST_HU = 50.0
"""A region counts as a nodule when its mean HU exceeds the median of the lung 2-5 mm around it by this much.
Click segmentations of plain lung on the real LIDC-IDRI-0001 slab (40 random points) reach a median
6 HU and a 75th percentile of 43 HU; the 76 LIDC ground-glass nodules (texture 1-2) reach at least
80 HU (5th percentile 103 HU) against the same shell."""
SHELL_MM = (2.0, 5.0)
"""The lung around a nodule: voxels this far (mm) outside its mask."""


def contrast_hu(ct: Volume, found: np.ndarray, mask: np.ndarray, lung: Optional[np.ndarray] = None) -> Optional[float]:
    """Mean HU of the segmented voxels ``found`` minus the median HU of the :data:`SHELL_MM` shell around
    ``mask`` (its ``lung`` voxels, or without ``lung`` its voxels below :data:`LUNG_THRESHOLD_HU`); None
    when nothing was segmented or there is no lung in the shell."""
    spacing_kji = ct.spacing[::-1]
    values = np.asarray(ct.array)
    shell = dilation_mm(mask, SHELL_MM[1], spacing_kji) & ~dilation_mm(mask, SHELL_MM[0], spacing_kji)
    shell &= (values < LUNG_THRESHOLD_HU) if lung is None else lung
    if not found.any() or not shell.any():
        return None
    return float(values[found].mean() - np.median(values[shell]))


def segmentation_contrast_hu(ct: Volume, mask: np.ndarray, lung: Optional[np.ndarray] = None) -> Optional[float]:
    """:func:`contrast_hu` of a segmentation ``mask`` (on the CT grid) against the shell around itself,
    computed in a crop of the mask's bounding box plus the shell."""
    extent = nonzero_extent_kji(mask)
    if extent is None:
        return None
    pad = np.ceil(SHELL_MM[1] / ct.spacing[::-1]).astype(int) + 1
    start, stop = np.maximum(extent[0] - pad, 0), np.minimum(extent[1] + pad, ct.shape_kji)
    window = tuple(slice(a, b) for a, b in zip(start, stop))
    found = np.asarray(mask[window]) > 0
    return contrast_hu(ct.crop(start, stop), found, found, None if lung is None else lung[window])


def no_nodule_error(point_lps, contrast: float, how_to_keep: str) -> InputError:
    """The refusal of a low-contrast segmentation at ``point_lps`` (LPS mm): what was measured and ``how_to_keep`` it."""
    return InputError(f"no nodule at this point {[round(float(v), 2) for v in point_lps]} mm (LPS): the segmented "
                      f"region is only {contrast:.0f} HU denser than the lung 2-5 mm around it (a nodule: >= "
                      f"{MIN_CONTRAST_HU:g} HU); check the point (LPS or RAS?) or {how_to_keep}")
