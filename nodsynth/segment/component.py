"""Keep the object under the click and cut away what merely touches it (vessels, chest wall).

All distances are physical millimetres; ``spacing_kji`` is the voxel size along ``k, j, i``.
Morphology uses exact Euclidean balls through distance transforms, so it is correct on
anisotropic voxels and costs the same for any radius. The distance transform does not treat
the array border as background: structures cut by the VOI border are assumed to continue.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

FACE_CONNECTIVITY = ndimage.generate_binary_structure(3, 1)
"""6-connectivity: diagonal contacts do not merge objects."""

NEAREST_SEARCH_MM = 3.0
"""A click off the object still picks the nearest object voxel within this distance."""

CUT_FRACTION = 0.5
"""Attachments thinner than this fraction of the nodule's largest inscribed ball are cut."""

SCALES_MM = (1.5, 2.25, 3.4, 5.0, 7.6, 11.4, 17.0)
"""Ball radii (mm, ratio 1.5) tried when separating the nodule from larger structures."""


def edt_mm(mask: np.ndarray, spacing_kji) -> np.ndarray:
    """Distance (mm) from each mask voxel to the nearest non-mask voxel of the array."""
    if mask.all():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(mask, sampling=spacing_kji)


def dilation_mm(mask: np.ndarray, radius_mm: float, spacing_kji) -> np.ndarray:
    """Every voxel within ``radius_mm`` of the mask (Euclidean ball dilation)."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    return edt_mm(~mask, spacing_kji) <= radius_mm


def distance_from_voxel_mm(shape, voxel_kji, spacing_kji) -> np.ndarray:
    """Physical distance (mm) of every voxel of an array of ``shape`` from ``voxel_kji``."""
    axes = [(np.arange(n) - c) * s for n, c, s in zip(shape, voxel_kji, spacing_kji)]
    return np.sqrt(axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2)


def nearest_voxel(mask: np.ndarray, seed_kji, spacing_kji, search_mm: float = NEAREST_SEARCH_MM
                  ) -> Optional[tuple[int, int, int]]:
    """``seed_kji`` if it is in ``mask``, else the nearest mask voxel within ``search_mm``, else None."""
    seed = tuple(int(v) for v in seed_kji)
    if mask[seed]:
        return seed
    candidates = np.argwhere(mask)
    if candidates.size == 0:
        return None
    dist = np.sqrt((((candidates - np.asarray(seed)) * np.asarray(spacing_kji)) ** 2).sum(axis=1))
    best = int(np.argmin(dist))
    return tuple(int(v) for v in candidates[best]) if dist[best] <= search_mm else None  # type: ignore[return-value]


def component_of(mask: np.ndarray, voxel_kji) -> np.ndarray:
    """The 6-connected component of ``mask`` holding ``voxel_kji`` (which must be in the mask)."""
    labels, _ = ndimage.label(mask, structure=FACE_CONNECTIVITY)
    return labels == labels[tuple(voxel_kji)]


def bounding_slices(mask: np.ndarray, margin: int = 1) -> tuple[slice, ...]:
    """Slices of the mask's bounding box grown by ``margin`` voxels (clipped to the array)."""
    nz = np.nonzero(mask)
    return tuple(slice(max(int(v.min()) - margin, 0), min(int(v.max()) + margin + 1, n))
                 for v, n in zip(nz, mask.shape))


def separation_scale_mm(piece: np.ndarray, seed_kji, spacing_kji, scales_mm=SCALES_MM) -> tuple[float, float]:
    """``(inner, outer)`` radii (mm): the largest scale whose ball around the seed fits in ``piece``, and the next.

    An opening with a ball of radius r keeps the seed iff some ball of radius r inside the
    piece covers it, i.e. a voxel within r of the seed lies deeper than r. ``outer`` is
    ``inf`` when the seed survives every scale.
    """
    depth = edt_mm(piece, spacing_kji)
    reach = distance_from_voxel_mm(piece.shape, seed_kji, spacing_kji)
    inner = 0.0
    for radius in scales_mm:
        if not np.any(depth[reach <= radius] > radius):
            return inner, radius
        inner = radius
    return inner, float("inf")


def cap_height_mm(ball_radius_mm: float, base_radius_mm: float) -> float:
    """Height of the cap a ball of ``ball_radius_mm`` pushes through a disc of ``base_radius_mm``.

    Balls of the top-hat opening centred in the wall reach this far into a juxta-pleural
    nodule's base; that sliver is given back to the nodule.
    """
    base = min(base_radius_mm, ball_radius_mm)
    return ball_radius_mm - float(np.sqrt(ball_radius_mm ** 2 - base ** 2))


def opening_mm(mask: np.ndarray, radius_mm: float, spacing_kji) -> np.ndarray:
    """Morphological opening with a Euclidean ball of ``radius_mm``."""
    return dilation_mm(edt_mm(mask, spacing_kji) > radius_mm, radius_mm, spacing_kji) & mask


def split_at_necks(depth_mm: np.ndarray, core: np.ndarray, opened: np.ndarray) -> np.ndarray:
    """The part of ``opened`` that a depth watershed gives to ``core`` rather than to what the opening cut off.

    ``opened`` (the core dilated back inside ``piece``) still holds vessel voxels where a vessel runs
    alongside the nodule: nodule and vessel together are thick enough there for the opening's balls.
    Flooding the piece's depth map (deepest first) from two markers - the core, and every piece voxel
    the opening removed (the attachments) - lets each voxel go to the marker whose basin it drains
    to, so the vessel's own stretch is won back by the vessel beyond it and the split falls on the
    neck (the saddle of the depth map) between the two. ``depth_mm`` is the piece's distance map
    (:func:`edt_mm`; the piece is where it is > 0).
    """
    from skimage.segmentation import watershed  # deferred: keeps ``import nodsynth`` light

    piece = depth_mm > 0
    removed = piece & ~opened
    if not removed.any():
        return opened
    markers = core.astype(np.int32) + 2 * removed.astype(np.int32)
    basins = watershed(-depth_mm, markers, mask=piece)
    return opened & (basins == 1)


def isolate_nodule(candidate: np.ndarray, seed_kji, spacing_kji) -> np.ndarray:
    """The nodule at ``seed_kji`` in a thresholded ``candidate`` mask, without the structures it touches.

    1. Scale: the first ball radius ``outer`` (:data:`SCALES_MM`) that no longer fits around the
       seed - the nodule is smaller than that; ``inner`` is the previous radius.
    2. Wall and large vessels survive an opening at ``outer``; the nodule is the seed's
       component of what that opening removes (a white top-hat), plus the thin sliver of its
       base that the wall's balls covered (:func:`cap_height_mm`).
    3. Thinner attachments (vessels) are cut by an opening at ``CUT_FRACTION * R``, R the depth
       of the deepest voxel within ``inner`` of the seed (the nodule's radius), keeping the seed's
       part, dilated back by the same ball inside the piece; a depth watershed between that core and
       the cut-off attachments then hands back vessel stretches running alongside the nodule
       (:func:`split_at_necks`).
    Returns an all-False array when no candidate voxel lies within 3 mm of the seed.
    """
    seed = nearest_voxel(candidate, seed_kji, spacing_kji)
    if seed is None:
        return np.zeros_like(candidate, dtype=bool)
    piece = component_of(candidate, seed)
    box = bounding_slices(piece)
    local_seed = tuple(s - b.start for s, b in zip(seed, box))
    local = piece[box]
    inner, outer = separation_scale_mm(local, local_seed, spacing_kji)
    if np.isfinite(outer):
        opened = opening_mm(local, outer, spacing_kji)
        tophat = component_of(local & ~opened, local_seed)
        local = tophat
        if inner > 0:  # give back the base sliver the wall's balls covered
            local = tophat | (opened & dilation_mm(tophat, cap_height_mm(outer, inner), spacing_kji))
    if inner > 0:
        depth = edt_mm(local, spacing_kji)
        reach = distance_from_voxel_mm(local.shape, local_seed, spacing_kji)
        cut = CUT_FRACTION * float(depth[reach <= inner].max())  # fraction of the nodule's radius
        core = depth > cut
        core_seed = nearest_voxel(core, local_seed, spacing_kji, search_mm=inner)
        if core_seed is not None:
            nodule_core = component_of(core, core_seed)
            local = split_at_necks(depth, nodule_core, local & dilation_mm(nodule_core, cut, spacing_kji))
    out = np.zeros_like(candidate, dtype=bool)
    out[box] = local
    return out
