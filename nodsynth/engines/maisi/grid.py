"""Resampling between a volume's grid and another grid centred on the same point (SimpleITK)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...volume import Volume


def centred_grid(volume: Volume, size_ijk: Sequence[int], spacing_mm: Sequence[float]) -> Volume:
    """An empty (zero) volume of ``size_ijk`` x ``spacing_mm``, same direction and centre as ``volume``."""
    size = np.asarray(size_ijk, dtype=int)
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    centre = volume.index_to_world((np.asarray(volume.size_ijk) - 1) / 2.0)
    origin = centre - volume.direction @ (spacing * (size - 1) / 2.0)
    return Volume(np.zeros(size[::-1], dtype=np.uint8), spacing, origin, volume.direction.copy())


def resample_onto(volume: Volume, reference: Volume, nearest: bool, default_value: float) -> Volume:
    """``volume`` resampled onto ``reference``'s grid (nearest neighbour for labels, linear otherwise)."""
    import SimpleITK as sitk

    image = volume.to_sitk()
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    out = sitk.Resample(image, reference.to_sitk(), sitk.Transform(), interpolator, float(default_value),
                        image.GetPixelID())
    return reference.with_array(sitk.GetArrayFromImage(out))
