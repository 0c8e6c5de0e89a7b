"""The PiNS seed protocol (NodMAISI paper, Supplement S3), reproduced for comparison.

A box (w, h, d in mm) is turned into voxels by truncating ``mm / spacing``; the VOI spans
``centre - n//2 - 5 .. centre + n//2 + 5`` voxels on each axis (clipped to the image); k-means
with k=2 on the raw HU (scikit-learn, ``n_init=10, random_state=0``) labels the VOI; the cluster
with the higher mean is the nodule; a binary closing with a 3x3x3 cube and an opening with a
2x2x2 cube clean it; the VOI mask is placed back in an empty volume. Every bright voxel in the
VOI is kept: vessels, chest wall and other nodules too.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

PINS_MARGIN_VOXELS = 5


def pins_box_voxels_kji(box_size_mm, spacing_ijk) -> tuple[int, int, int]:
    """Box size in whole voxels (``k, j, i``) by truncating ``mm / spacing`` as PiNS does."""
    w, h, d = (int(float(s) / float(sp)) for s, sp in zip(box_size_mm, spacing_ijk))
    return d, h, w


def pins_voi_slices(center_kji, box_voxels_kji, shape_kji) -> tuple[slice, slice, slice]:
    """The PiNS VOI: ``centre -/+ (n // 2 + 5)`` voxels per axis, clipped to the array."""
    return tuple(slice(max(0, c - n // 2 - PINS_MARGIN_VOXELS), min(size, c + n // 2 + PINS_MARGIN_VOXELS))
                 for c, n, size in zip(center_kji, box_voxels_kji, shape_kji))  # type: ignore[return-value]


def pins_mask(hu_kji: np.ndarray, center_kji, box_voxels_kji) -> np.ndarray:
    """The PiNS nodule mask (uint8 0/1, shape of ``hu_kji``) for one box centre (voxel ``k, j, i``)."""
    from sklearn.cluster import KMeans

    sl = pins_voi_slices(center_kji, box_voxels_kji, hu_kji.shape)
    region = hu_kji[sl]
    kmeans = KMeans(n_clusters=2, n_init=10, random_state=0).fit(region.reshape(-1, 1))
    nodule = kmeans.labels_.reshape(region.shape) == int(np.argmax(kmeans.cluster_centers_))
    nodule = ndimage.binary_closing(nodule, structure=np.ones((3, 3, 3)))
    nodule = ndimage.binary_opening(nodule, structure=np.ones((2, 2, 2)))
    out = np.zeros(hu_kji.shape, dtype=np.uint8)
    out[sl] = nodule
    return out
