"""Voxel types Slicer's volume nodes accept (pure numpy).

``slicer.util.updateVolumeFromArray`` refuses 64-bit integers ("Unsupported numpy array type: long
long"), and VTK has no boolean scalar type; label maps and masks computed in numpy often are int64 or
bool, so every array is cast here before it becomes a node.
"""
from __future__ import annotations

import numpy as np

from nodsynth.errors import InputError


def slicer_voxels(array: np.ndarray) -> np.ndarray:
    """``array`` as a C-contiguous array of a type Slicer stores: bool -> uint8, (u)int64 -> (u)int32
    when every value fits (else an error naming the range), anything else unchanged."""
    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    elif array.dtype in (np.int64, np.uint64):
        target = np.dtype(np.int32 if array.dtype == np.int64 else np.uint32)
        info = np.iinfo(target)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise InputError(f"voxel values {array.min()}..{array.max()} do not fit the {target} a Slicer volume "
                             "can hold")
        array = array.astype(target)
    return np.ascontiguousarray(array)
