"""Keep the object under the click and cut away what merely touches it (vessels, chest wall).

All distances are physical millimetres; ``spacing_kji`` is the voxel size along ``k, j, i``;
the ball morphology is :mod:`.mm_morphology`.
"""
from __future__ import annotations

import numpy as np

from .mm_morphology import (bounding_slices, component_of, dilation_mm, distance_from_voxel_mm, edt_mm,
                            nearest_voxel, opening_mm)
from .passing_vessels import remove_passing_vessels

CUT_FRACTION = 0.5
"""Attachments thinner than this fraction of the nodule's largest inscribed ball are cut."""

SCALES_MM = (1.5, 2.25, 3.4, 5.0, 7.6, 11.4, 17.0)
"""Ball radii (mm, ratio 1.5) tried when separating the nodule from larger structures."""


def separation_scale_mm(depth_mm: np.ndarray, reach_mm: np.ndarray, scales_mm=SCALES_MM) -> tuple[float, float]:
    """``(inner, outer)`` radii (mm): the largest scale whose ball around the seed fits in the piece, and the next.

    ``depth_mm`` is the piece's distance map (:func:`edt_mm`), ``reach_mm`` every voxel's distance
    from the seed. An opening with a ball of radius r keeps the seed iff some ball of radius r
    inside the piece covers it, i.e. a voxel within r of the seed lies deeper than r. ``outer`` is
    ``inf`` when the seed survives every scale (ascending radii).
    """
    deep = depth_mm > scales_mm[0]  # only these can lie deeper than any scale
    depth, reach = depth_mm[deep], reach_mm[deep]
    inner = 0.0
    for radius in scales_mm:
        if not np.any((reach <= radius) & (depth > radius)):
            return inner, radius
        inner = radius
    return inner, float("inf")


def faces_beyond_mm(shape, seed_kji, spacing_kji, distance_mm: float) -> tuple[tuple[bool, bool], ...]:
    """Per axis, whether the array's first and last faces lie more than ``distance_mm`` from the seed.

    A face farther from the click than the nodule's radius cuts what lies around the nodule (chest
    wall, mediastinum), which goes on beyond it; a nearer face may cut the nodule itself, which
    does not (a thin slab of a few slices through it).
    """
    spacing = np.asarray(spacing_kji, dtype=np.float64)
    return tuple((seed * step > distance_mm, (n - 1 - seed) * step > distance_mm)
                 for n, seed, step in zip(shape, seed_kji, spacing))


def cap_height_mm(ball_radius_mm: float, base_radius_mm: float) -> float:
    """Height of the cap a ball of ``ball_radius_mm`` pushes through a disc of ``base_radius_mm``.

    Balls of the top-hat opening centred in the wall reach this far into a juxta-pleural
    nodule's base; that sliver is given back to the nodule.
    """
    base = min(base_radius_mm, ball_radius_mm)
    return ball_radius_mm - float(np.sqrt(ball_radius_mm ** 2 - base ** 2))


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
    box = bounding_slices(piece)  # nothing outside the piece floods: same basins in its box
    markers = core[box].astype(np.int32) + 2 * removed[box].astype(np.int32)
    kept = np.zeros_like(opened)
    kept[box] = opened[box] & (watershed(-depth_mm[box], markers, mask=piece[box]) == 1)
    return kept


def wall_tophat(piece: np.ndarray, depth: np.ndarray, seed_kji, spacing_kji, inner_mm: float,
                outer_mm: float) -> np.ndarray:
    """The seed's part of what an opening at ``outer_mm`` removes from ``piece`` (a white top-hat), plus the
    base sliver the wall's balls covered (:func:`cap_height_mm`); faces farther than ``inner_mm`` from the
    seed are continued (:func:`faces_beyond_mm`). ``depth`` is the piece's distance map (mm)."""
    opened = opening_mm(piece, outer_mm, spacing_kji, faces_beyond_mm(piece.shape, seed_kji, spacing_kji, inner_mm),
                        depth)
    if not opened.any():  # nothing holds the ball: the piece (one component, the seed's) is the top-hat
        return piece
    tophat = component_of(piece & ~opened, seed_kji)
    if inner_mm <= 0:
        return tophat
    return tophat | (opened & dilation_mm(tophat, cap_height_mm(outer_mm, inner_mm), spacing_kji))


def cut_attachments(local: np.ndarray, depth: np.ndarray, reach: np.ndarray, seed_kji, spacing_kji,
                    inner_mm: float) -> np.ndarray:
    """``local`` without the attachments thinner than ``CUT_FRACTION`` of the nodule's radius (steps 3-4 of
    :func:`isolate_nodule`); unchanged when no core voxel lies within ``inner_mm`` of the seed.
    ``depth`` is ``local``'s distance map (mm), ``reach`` every voxel's distance (mm) from the seed."""
    radius = float(depth[reach <= inner_mm].max())  # the nodule's radius
    cut = CUT_FRACTION * radius
    core = depth > cut
    core_seed = nearest_voxel(core, seed_kji, spacing_kji, search_mm=inner_mm)
    if core_seed is None:
        return local
    nodule_core = component_of(core, core_seed)
    nodule = split_at_necks(depth, nodule_core, local & dilation_mm(nodule_core, cut, spacing_kji))
    return remove_passing_vessels(nodule, local & ~nodule, seed_kji, spacing_kji, radius, cut)


def isolate_nodule(candidate: np.ndarray, seed_kji, spacing_kji) -> np.ndarray:
    """The nodule at ``seed_kji`` in a thresholded ``candidate`` mask, without the structures it touches.

    1. Scale: the first ball radius ``outer`` (:data:`SCALES_MM`) that no longer fits around the
       seed - the nodule is smaller than that; ``inner`` is the previous radius.
    2. Wall and large vessels survive an opening at ``outer``; the nodule is the seed's
       component of what that opening removes (a white top-hat), plus the thin sliver of its
       base that the wall's balls covered (:func:`cap_height_mm`). Structures cut by an array
       face farther than ``inner`` from the seed are taken to go on beyond it
       (:func:`faces_beyond_mm`), so a wall at the edge of a crop survives the opening too.
    3. Thinner attachments (vessels) are cut by an opening at ``CUT_FRACTION * R``, R the depth
       of the deepest voxel within ``inner`` of the seed (the nodule's radius), keeping the seed's
       part, dilated back by the same ball inside the piece; a depth watershed between that core and
       the cut-off attachments then hands back vessel stretches running alongside the nodule
       (:func:`split_at_necks`).
    4. A vessel running past the nodule, fused to it without any neck, gives its stretch back when
       the cut-off parts on either side form one straight tube
       (:func:`.passing_vessels.remove_passing_vessels`).
    Returns an all-False array when no candidate voxel lies within 3 mm of the seed.
    """
    seed = nearest_voxel(candidate, seed_kji, spacing_kji)
    if seed is None:
        return np.zeros_like(candidate, dtype=bool)
    piece = component_of(candidate, seed)
    box = bounding_slices(piece)
    local_seed = tuple(s - b.start for s, b in zip(seed, box))
    local = piece[box]
    depth = edt_mm(local, spacing_kji)
    reach = distance_from_voxel_mm(local.shape, local_seed, spacing_kji)
    inner, outer = separation_scale_mm(depth, reach)
    if np.isfinite(outer):
        tophat = wall_tophat(local, depth, local_seed, spacing_kji, inner, outer)
        if inner > 0 and not np.array_equal(tophat, local):
            depth = edt_mm(tophat, spacing_kji)
        local = tophat
    if inner > 0:
        local = cut_attachments(local, depth, reach, local_seed, spacing_kji, inner)
    out = np.zeros_like(candidate, dtype=bool)
    out[box] = local
    return out
