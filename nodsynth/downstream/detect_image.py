"""A CT as the bundle's detector sees it, and the detector's boxes back in world LPS millimetres.

The bundle loads a raw CT with ITK and ``affine_lps_to_ras: true`` (its affine in RAS), orients it to
``RAS``, resamples it to ``pixdim`` (bilinear) and maps ``[a_min, a_max]`` HU to ``[b_min, b_max]``
(clipped); :func:`detector_image` does the same with MONAI's own transforms on a :class:`Volume` (LPS).
The detector's boxes are ``xyzxyz`` in that image's continuous voxel index; the bundle maps them with the
image's affine and flips RAS back to LPS (``AffineBoxToWorldCoordinated(affine_lps_to_ras=True)``) and
reports the box centre (``cccwhd``): :func:`box_centres_lps`.
"""
from __future__ import annotations

import numpy as np

from ..volume import Volume, ras_to_lps
from .detect_bundle import BundleSettings

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))
"""Axis letters of an affine in RAS (low to high), as the bundle's MONAI read ``axcodes``."""


def detector_image(ct: Volume, settings: BundleSettings):
    """``(1, x, y, z)`` MONAI ``MetaTensor`` (affine: voxel index -> RAS mm) of ``ct`` preprocessed as the bundle does."""
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Orientation, ScaleIntensityRange, Spacing

    hu = np.ascontiguousarray(np.asarray(ct.array, dtype=np.float32).transpose(2, 1, 0))[None]
    image = MetaTensor(torch.from_numpy(hu), affine=torch.as_tensor(RAS_FROM_LPS @ ct.index_to_world_matrix))
    image = Orientation(axcodes=settings.axcodes, labels=RAS_LABELS)(image)
    image = Spacing(pixdim=settings.spacing_mm, mode="bilinear")(image)
    return ScaleIntensityRange(**settings.intensity)(image)


def box_centres_lps(boxes_xyzxyz: np.ndarray, affine_ras: np.ndarray) -> np.ndarray:
    """``(n, 3)`` world LPS mm centres of ``(n, 6)`` boxes in the voxel index of an image with ``affine_ras``."""
    boxes = np.asarray(boxes_xyzxyz, dtype=np.float64).reshape(-1, 6)
    centres = (boxes[:, :3] + boxes[:, 3:]) / 2.0
    ras = centres @ np.asarray(affine_ras, dtype=np.float64)[:3, :3].T + np.asarray(affine_ras)[:3, 3]
    return ras_to_lps(ras)
