"""Axial, coronal and sagittal planes through a voxel, oriented for display.

Arrays are ``[k, j, i]`` on an LPS grid. Axial = constant ``k`` (rows ``j``: posterior down,
columns ``i``: patient left on the right, the radiological view); coronal = constant ``j`` (rows
``k`` flipped so superior is up, columns ``i``); sagittal = constant ``i`` (rows ``k`` flipped,
columns ``j``: anterior left). The planes follow the grid axes, so an oblique scan shows its own
slices. Each cut comes with its pixel size (row, column) in mm for drawing to scale.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..volume import Volume

PLANES = ("axial", "coronal", "sagittal")


def plane_slices(volume: Volume, centre_kji: Sequence[int], plane: str,
                 half_width_mm: Optional[float] = None) -> tuple:
    """Index ``(k, j, i)`` (one int, two slices) of a plane through ``centre_kji``, cropped to a square
    of ``2 * half_width_mm`` around it when given."""
    axis = PLANES.index(plane)
    index: list = []
    for a, (c, n, s) in enumerate(zip(centre_kji, volume.shape_kji, volume.spacing[::-1])):
        if a == axis:
            index.append(int(c))
        elif half_width_mm is None:
            index.append(slice(None))
        else:
            half = int(np.ceil(half_width_mm / s))
            index.append(slice(max(int(c) - half, 0), min(int(c) + half + 1, n)))
    return tuple(index)


def cut(array: np.ndarray, index: tuple, plane: str) -> np.ndarray:
    """The 2-D plane ``array[index]`` oriented for display (superior up in coronal and sagittal)."""
    section = np.asarray(array)[index]
    return section if plane == "axial" else section[::-1]


def pixel_size_mm(volume: Volume, plane: str) -> tuple[float, float]:
    """(row, column) pixel size of a plane's display image."""
    si, sj, sk = (float(v) for v in volume.spacing)
    return {"axial": (sj, si), "coronal": (sk, si), "sagittal": (sk, sj)}[plane]
