"""The real nodules of a MAISI label map and what resizing made of them (the NodMAISI recipe's nodules).

A real nodule is one 6-connected label-23 component, numbered as :func:`nodsynth.augment.nodule_components`
numbers them (1-based, raster order). After a resize (:func:`nodsynth.augment.resize_series`) each resized
nodule keeps that number: :func:`resized_ids` is the id mask of the resized map, every label-23 voxel carrying
the number of the real nodule it was shrunk from (or grown from).
"""
from __future__ import annotations

import numpy as np

from ..augment import nodule_components
from ..labels import LOBE_IDS, NODULE
from ..place import _distance_mm
from ..volume import Volume
from .room import SUBPLEURAL_MM


def resized_ids(before: Volume, after: Volume) -> Volume:
    """The id mask (uint16) of ``after``'s nodules: each label-23 component of ``after`` takes the number of the
    real nodule of ``before`` it overlaps (0 for one that overlaps none); worked out on the nodules' voxels only."""
    shape = before.shape_kji
    real = [np.ravel_multi_index(tuple(coords.T), shape) for coords in nodule_components(before)]
    ids = np.zeros(shape, dtype=np.uint16)
    for coords in nodule_components(after):
        flat = np.ravel_multi_index(tuple(coords.T), shape)
        ids[tuple(coords.T)] = max((n for n, voxels in enumerate(real, start=1) if np.isin(flat, voxels).any()),
                                   default=0)
    return after.with_array(ids)


def pleura_location(labelmap: Volume, mine: np.ndarray) -> str:
    """``subpleural`` when a voxel of the nodule ``mine`` (bool, on the map's grid) lies within
    :data:`~nodsynth.cohort.room.SUBPLEURAL_MM` of a voxel outside the lung (lobes 28-32 and nodules), else
    ``inner``; worked out on a box around the nodule wide enough for that distance."""
    spacing_kji = labelmap.spacing[::-1]
    margin = np.ceil(SUBPLEURAL_MM / spacing_kji).astype(int) + 1
    voxels = np.argwhere(mine)
    start = np.maximum(voxels.min(axis=0) - margin, 0)
    stop = np.minimum(voxels.max(axis=0) + 1 + margin, mine.shape)
    box = tuple(slice(a, b) for a, b in zip(start, stop))
    lung = np.isin(np.asarray(labelmap.array)[box], LOBE_IDS + (NODULE,))
    nearest = float(_distance_mm(lung, spacing_kji)[mine[box]].min())
    return "subpleural" if nearest <= SUBPLEURAL_MM else "inner"
