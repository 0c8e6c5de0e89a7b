"""The three planes of a 2.5D evaluation and the slices cut through an ``[x, y, z]`` RAS array.

As the published script (``get_features_2p5d`` on an ``(H, W, D) = (x, y, z)`` image):

* ``xy``: slices along z, each indexed ``[x, y]`` (axial);
* ``yz``: slices along x, each indexed ``[y, z]`` (sagittal);
* ``zx``: slices along y, each indexed ``[x, z]`` (coronal).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError

PLANES = ("xy", "yz", "zx")
SLICE_AXIS = {"xy": 2, "yz": 0, "zx": 1}
"""Axis of the ``[x, y, z]`` array along which each plane's slices are cut."""


def central_range(count: int, ratio: Optional[float]) -> tuple[int, int]:
    """Slice indices ``[start, stop)`` kept by the central-slice ratio (all when ``ratio`` is None),
    computed as the script: ``int((1 - r) / 2 * n)`` .. ``int((1 + r) / 2 * n)``."""
    if ratio is None:
        return 0, count
    if not 0.0 < float(ratio) <= 1.0:
        raise InputError(f"the central-slice ratio must lie in (0, 1], got {ratio}")
    return int((1.0 - ratio) / 2.0 * count), int((1.0 + ratio) / 2.0 * count)


def around_centre(count: int, slices: int) -> tuple[int, int]:
    """``slices`` consecutive indices centred on ``count // 2`` (the voxel under a crop's centre)."""
    if not 1 <= slices <= count:
        raise InputError(f"cannot take {slices} slices around the centre of {count}")
    start = count // 2 - slices // 2
    return start, start + slices


def plane_stack(array_xyz: np.ndarray, plane: str, start: int, stop: int) -> np.ndarray:
    """Slices ``start..stop-1`` of ``plane`` as an ``(n, rows, columns)`` view of ``array_xyz``."""
    axis = SLICE_AXIS[plane]
    index = [slice(None)] * 3
    index[axis] = slice(start, stop)
    return np.moveaxis(array_xyz[tuple(index)], axis, 0)
