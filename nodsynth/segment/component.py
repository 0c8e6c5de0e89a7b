"""Keep the object under the click and cut away what merely touches it (vessels, chest wall).

All distances are physical millimetres; ``spacing_kji`` is the voxel size along ``k, j, i``.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

FACE_CONNECTIVITY = ndimage.generate_binary_structure(3, 1)
"""6-connectivity: diagonal contacts do not merge objects."""

NEAREST_SEARCH_MM = 3.0
"""A click off the object still picks the nearest object voxel within this distance."""

OPENING_FRACTION = 0.5
"""Opening radius as a fraction of the nodule's inscribed radius: thinner attachments are cut."""


def ball_structure(radius_mm: float, spacing_kji) -> np.ndarray:
    """Boolean ellipsoidal structuring element holding the voxels within ``radius_mm`` of its centre."""
    spacing = np.asarray(spacing_kji, dtype=np.float64)
    half = np.floor(radius_mm / spacing + 1e-9).astype(int)
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing)], indexing="ij")
    return sum(g ** 2 for g in grids) <= radius_mm ** 2 + 1e-9


def component_at(mask: np.ndarray, seed_kji, spacing_kji, search_mm: float = NEAREST_SEARCH_MM) -> np.ndarray:
    """The 6-connected component of ``mask`` holding ``seed_kji`` or, failing that, the nearest one.

    Returns an all-False array when no mask voxel lies within ``search_mm`` of the seed.
    """
    seed = tuple(int(v) for v in seed_kji)
    if not mask[seed]:
        if not mask.any():
            return np.zeros_like(mask, dtype=bool)
        dist, nearest = ndimage.distance_transform_edt(~mask, sampling=spacing_kji, return_indices=True)
        if dist[seed] > search_mm:
            return np.zeros_like(mask, dtype=bool)
        seed = tuple(int(nearest[axis][seed]) for axis in range(3))
    labels, _ = ndimage.label(mask, structure=FACE_CONNECTIVITY)
    return labels == labels[seed]


def climb_to_centre(distance_mm: np.ndarray, start_kji) -> tuple[int, int, int]:
    """Steepest ascent on a distance map from ``start_kji`` to a local maximum (the object's centre)."""
    here = tuple(int(v) for v in start_kji)
    shape = distance_mm.shape
    while True:
        sl = tuple(slice(max(c - 1, 0), min(c + 2, n)) for c, n in zip(here, shape))
        window = distance_mm[sl]
        best = np.unravel_index(int(np.argmax(window)), window.shape)
        step = tuple(s.start + b for s, b in zip(sl, best))
        if window[best] <= distance_mm[here]:
            return here
        here = step


def cut_attachments(component: np.ndarray, seed_kji, spacing_kji,
                    fraction: float = OPENING_FRACTION) -> np.ndarray:
    """Remove structures attached to the object at ``seed_kji`` through necks thinner than its core.

    The object's inscribed radius R (mm) is found by climbing the distance map from the seed;
    an opening with a ball of radius ``fraction * R`` disconnects vessels and thin bridges, the
    piece holding the centre is kept and dilated back by the same ball inside the original
    component (so the nodule's own surface is restored).
    """
    if not component.any():
        return component
    distance = ndimage.distance_transform_edt(component, sampling=spacing_kji)
    seed = tuple(int(v) for v in seed_kji)
    if not component[seed]:
        seed = tuple(int(v) for v in np.unravel_index(int(np.argmax(distance)), distance.shape))
    centre = climb_to_centre(distance, seed)
    radius_mm = fraction * float(distance[centre])
    ball = ball_structure(radius_mm, spacing_kji)
    if ball.sum() <= 1:
        return component
    opened = ndimage.binary_opening(component, structure=ball)
    if not opened[centre]:
        return component
    labels, _ = ndimage.label(opened, structure=FACE_CONNECTIVITY)
    core = labels == labels[centre]
    return component & ndimage.binary_dilation(core, structure=ball)
