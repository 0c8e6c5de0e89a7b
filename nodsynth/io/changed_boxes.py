"""Where a volume changed: boxes around the changed voxels, and taking / putting back their contents.

A result of ``inpaint`` or ``edit`` differs from its input CT in a few boxes around the nodules;
``nodsynth serve`` sends those boxes instead of the whole CT (:mod:`nodsynth.io.wire` ``patch``).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

BLOCK_VOXELS = 8
"""Changes are gathered on a grid of blocks of this many voxels a side: changed blocks that touch
(26-connected) form one box, so two nodules far apart give two small boxes, not one large one."""

Box = tuple[int, int, int, int, int, int]
"""Half-open voxel ranges ``(k0, k1, j0, j1, i0, i1)``."""


def _bits(array: np.ndarray) -> np.ndarray:
    """The array viewed as unsigned integers of its item size: compares bit patterns (-0.0 vs 0.0, NaN)."""
    array = np.ascontiguousarray(array)
    return array.view(f"u{array.dtype.itemsize}") if array.dtype.itemsize in (1, 2, 4, 8) else array


def _differing_groups(before: np.ndarray, after: np.ndarray, block: int) -> tuple[np.ndarray, int]:
    """Where the bits of two arrays differ, per group of ``width`` voxels along the last axis: groups fill
    8 bytes (4 voxels of int16) when the rows and blocks allow, so a 128 MB CT is compared in 8-byte words."""
    before, after = np.ascontiguousarray(before), np.ascontiguousarray(after)
    itemsize = before.dtype.itemsize
    if (itemsize in (1, 2, 4, 8) and (before.shape[-1] * itemsize) % 8 == 0 and block % (8 // itemsize) == 0
            and before.size):
        return before.view(np.uint64) != after.view(np.uint64), 8 // itemsize
    return _bits(before) != _bits(after), 1


def changed_boxes(before: np.ndarray, after: np.ndarray, block: int = BLOCK_VOXELS) -> list[Box]:
    """Boxes covering every voxel whose bits differ between two arrays of one shape and type."""
    if before.shape != after.shape or before.dtype != after.dtype:
        raise ValueError("changed_boxes needs two arrays of one shape and element type")
    differs, width = _differing_groups(before, after, block)
    shape = np.asarray(before.shape)
    if np.count_nonzero(differs) * 2 > differs.size:  # mostly changed: one box, the whole volume
        return [(0, int(shape[0]), 0, int(shape[1]), 0, int(shape[2]))]
    changed = np.array(np.unravel_index(np.flatnonzero(differs), differs.shape))  # few: sparse beats dense
    changed[-1] *= width  # the group's first voxel; a group never straddles two blocks (width divides block)
    coarse = np.zeros(tuple(-(-shape // block)), bool)
    coarse[tuple(changed // block)] = True
    labels, count = ndimage.label(coarse, structure=np.ones((3, 3, 3), bool))
    boxes = []
    for found in ndimage.find_objects(labels)[:count]:
        ranges = []
        for axis, part in enumerate(found):
            ranges += [part.start * block, min(part.stop * block, int(shape[axis]))]
        boxes.append(tuple(ranges))
    return boxes


def box_voxels(boxes: list[Box]) -> int:
    return sum((k1 - k0) * (j1 - j0) * (i1 - i0) for k0, k1, j0, j1, i0, i1 in boxes)


def _slices(box: Box) -> tuple[slice, slice, slice]:
    k0, k1, j0, j1, i0, i1 = box
    return slice(k0, k1), slice(j0, j1), slice(i0, i1)


def take_boxes(array: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """The boxes' voxels, box after box, each in C order, as one 1-D array."""
    if not boxes:
        return np.empty(0, array.dtype)
    return np.concatenate([array[_slices(box)].reshape(-1) for box in boxes])


def put_boxes(base: np.ndarray, boxes: list[Box], values: np.ndarray, copy: np.ndarray | None = None) -> np.ndarray:
    """A copy of ``base`` with the boxes' voxels taken from ``values`` (the inverse of :func:`take_boxes`);
    ``copy``: a copy of ``base`` made beforehand, written into and returned."""
    if values.shape != (box_voxels(boxes),):
        raise ValueError(f"{values.size} values for boxes of {box_voxels(boxes)} voxels")
    if copy is not None and (copy.shape != base.shape or copy.dtype != base.dtype):
        raise ValueError("the copy given to put_boxes is not of its base's shape and type")
    out = base.copy() if copy is None else copy
    start = 0
    for box in boxes:
        target = out[_slices(box)]
        target[...] = values[start:start + target.size].reshape(target.shape)
        start += target.size
    return out


def valid_box(box: object, shape: tuple[int, ...]) -> bool:
    """Whether ``box`` is six integers giving non-empty ranges inside ``shape``."""
    if not (isinstance(box, list) and len(box) == 6 and all(isinstance(n, int) and not isinstance(n, bool)
                                                             for n in box)):
        return False
    return all(0 <= box[2 * axis] < box[2 * axis + 1] <= shape[axis] for axis in range(3))
