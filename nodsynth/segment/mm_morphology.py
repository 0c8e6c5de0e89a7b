"""Morphology in physical millimetres on anisotropic voxel grids.

``spacing_kji`` is the voxel size (mm) along ``k, j, i``. Balls are exact Euclidean balls built
from distance transforms, so they are right on anisotropic voxels and cost the same for any
radius. The distance transform does not treat the array border as background: structures cut by
the array border are assumed to continue.

Distance maps are computed only in a box around the voxels that can matter (a mask's bounding box
grown by one voxel for its depth, by the radius for a dilation); the values are the ones the whole
array gives: a voxel outside the box is never the nearest one (see :func:`edt_mm`, :func:`dilation_mm`).
"""
from __future__ import annotations

import itertools
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

FACE_CONNECTIVITY = ndimage.generate_binary_structure(3, 1)
"""6-connectivity: diagonal contacts do not merge objects."""

NEAREST_SEARCH_MM = 3.0
"""A click off the object still picks the nearest object voxel within this distance."""


def _edt(mask: np.ndarray, spacing_kji) -> np.ndarray:
    return ndimage.distance_transform_edt(mask, sampling=spacing_kji)


def edt_mm(mask: np.ndarray, spacing_kji) -> np.ndarray:
    """Distance (mm) from each mask voxel to the nearest non-mask voxel of the array.

    Computed in the mask's bounding box grown by one voxel: a non-mask voxel outside that box is
    never nearer than the box's own non-mask border voxel it projects onto (each axis offset is no larger).
    """
    if not mask.any():
        return np.zeros(mask.shape)
    if mask.all():
        return np.full(mask.shape, np.inf)
    box = bounding_slices(mask)
    if all(b.stop - b.start == n for b, n in zip(box, mask.shape)):
        return _edt(mask, spacing_kji)
    depth = np.zeros(mask.shape)
    depth[box] = _edt(mask[box], spacing_kji)
    return depth


BALL_SLACK = 1e-9
"""Relative slack on a radius where it bounds a search (:func:`reach_voxels`, :func:`faces_holding_balls`):
a bound, kept safe from rounding."""


def reach_voxels(distance_mm: float, spacing_kji) -> np.ndarray:
    """Per axis (``k, j, i``), the most voxel steps within ``distance_mm``: ``floor(d / spacing)``.

    A voxel more steps away along one axis alone is farther than ``distance_mm``.
    """
    steps = distance_mm / np.asarray(spacing_kji, dtype=np.float64) * (1.0 + BALL_SLACK)
    return np.floor(steps).astype(int)


def dilation_mm(mask: np.ndarray, radius_mm: float, spacing_kji) -> np.ndarray:
    """Every voxel within ``radius_mm`` of the mask (Euclidean ball dilation).

    Computed in the mask's bounding box grown by :func:`reach_voxels`; every voxel outside it is
    farther than the radius along one axis alone.
    """
    out = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return out
    box = bounding_slices(mask, reach_voxels(radius_mm, spacing_kji))
    out[box] = _edt(~mask[box], spacing_kji) <= radius_mm
    return out


def face_dilation(mask: np.ndarray) -> np.ndarray:
    """The mask and every voxel sharing a face with it (binary dilation by the 6-connected cross, the
    array border not in the mask), as shifted copies rather than a generic dilation."""
    out = mask.copy()
    for axis in range(mask.ndim):
        lead = (slice(None),) * axis
        out[lead + (slice(1, None),)] |= mask[lead + (slice(None, -1),)]
        out[lead + (slice(None, -1),)] |= mask[lead + (slice(1, None),)]
    return out


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


def _axis_projections(mask: np.ndarray) -> list[np.ndarray]:
    """Per axis, whether each index along it holds a mask voxel (two passes over the mask, not one per axis)."""
    if mask.ndim == 1:
        return [mask]
    return [mask.any(axis=tuple(range(1, mask.ndim)))] + _axis_projections(mask.any(axis=0))


def occupied_ranges(mask: np.ndarray) -> list[tuple[int, int]]:
    """Per axis, the first and last index holding a mask voxel (the mask must hold one)."""
    ranges = []
    for hit in _axis_projections(mask):
        first, last = int(hit.argmax()), hit.size - 1 - int(hit[::-1].argmax())
        if not hit[first]:
            raise ValueError("the mask is empty")
        ranges.append((first, last))
    return ranges


def bounding_slices(mask: np.ndarray, margin=1) -> tuple[slice, ...]:
    """Slices of the mask's bounding box grown by ``margin`` voxels (one number or per axis; clipped to the array).

    The mask must hold a voxel.
    """
    margins = [int(margin)] * mask.ndim if np.ndim(margin) == 0 else [int(m) for m in margin]
    return tuple(slice(max(first - m, 0), min(last + m + 1, n))
                 for (first, last), m, n in zip(occupied_ranges(mask), margins, mask.shape))


def largest_depth_bound_mm(mask: np.ndarray, spacing_kji) -> float:
    """An upper bound (mm) on the largest :func:`edt_mm` of a non-empty mask, from its bounding box alone.

    Along an axis, the voxels just before and after the box are not in the mask where they lie in
    the array; no mask voxel is deeper than the steps to the nearer of them (times the spacing).
    ``inf`` when the box spans the array on every axis.
    """
    bound = float("inf")
    for (first, last), n, step in zip(occupied_ranges(mask), mask.shape, spacing_kji):
        extent = last - first + 1
        closed_sides = (first > 0) + (last < n - 1)
        if closed_sides:
            bound = min(bound, float((extent + 1) // 2 if closed_sides == 2 else extent) * float(step))
    return bound


def _largest_depth_mm(mask: np.ndarray, spacing) -> float:
    """The largest :func:`edt_mm` value of ``mask`` (any number of axes; a 0-d mask is one voxel)."""
    if mask.all():
        return float("inf")
    if not mask.any():
        return 0.0
    return float(_edt(mask, spacing).max())


def faces_holding_balls(mask: np.ndarray, radius_mm: float, spacing_kji,
                        continued_faces: Sequence[tuple[bool, bool]]) -> tuple[tuple[bool, bool], ...]:
    """The ``continued_faces`` beyond which a ball of ``radius_mm`` can be centred in the extended mask.

    Beyond a face, an edge where two continued faces meet or a corner where three do, the mask
    extended by repeating its faces (:func:`opening_mm`) holds at every level the voxels of that
    face (edge, corner), so a ball centred there reaches that copy's non-mask voxels: it fits only
    if the face (edge, corner) itself, alone, is deeper than the radius somewhere. A face that
    is in no such face, edge or corner need not be extended: no ball is centred beyond it, and
    the opening inside the array is the same without it. Edges and corners of a face without
    mask voxels hold none either, so only the occupied faces are combined.
    """
    holding = [[False, False] for _ in range(mask.ndim)]

    def face_of(axes, sides):
        index = [slice(None)] * mask.ndim
        for axis, side in zip(axes, sides):
            index[axis] = 0 if side == 0 else -1
        return mask[tuple(index)]

    occupied = [[side for side in (0, 1) if continued_faces[axis][side] and face_of((axis,), (side,)).any()]
                for axis in range(mask.ndim)]
    # faces first, then edges and corners: a set whose faces all hold balls already tells nothing new
    for count in range(1, mask.ndim + 1):
        for axes in itertools.combinations(range(mask.ndim), count):
            for sides in itertools.product(*(occupied[axis] for axis in axes)):
                if all(holding[axis][side] for axis, side in zip(axes, sides)):
                    continue
                in_face = [step for axis, step in enumerate(spacing_kji) if axis not in axes]
                if _largest_depth_mm(face_of(axes, sides), in_face) > radius_mm * (1.0 - BALL_SLACK):
                    for axis, side in zip(axes, sides):
                        holding[axis][side] = True
    return tuple((before, after) for before, after in holding)


def _layers(axis: int, layers: slice, ndim: int) -> tuple[slice, ...]:
    """Index of ``layers`` along ``axis`` of an ``ndim``-D array (all of the other axes)."""
    return tuple(layers if a == axis else slice(None) for a in range(ndim))


def _centres_beyond_face(extended: np.ndarray, axis: int, width: int, at_end: bool, radius_mm: float,
                         spacing_kji) -> np.ndarray:
    """Where a ball of ``radius_mm`` fits in ``extended`` centred in the ``width`` layers added beyond one face
    (the first or, ``at_end``, the last layers along ``axis``; bool, those layers' shape).

    A ball centred there covers a disc of the radius in its own layer, and each added layer repeats
    the face (extended along the other axes too): only over the face's places deeper than the
    radius (2-D :func:`edt_mm`) can one fit. The distance map is computed around them only: within
    :func:`reach_voxels` of them along the face and ``width`` layers into the array, where every
    voxel within the radius of them lies.
    """
    n = extended.shape[axis]
    face = np.take(extended, n - 1 if at_end else 0, axis=axis)
    in_face = [step for a, step in enumerate(spacing_kji) if a != axis]
    candidates = edt_mm(face, in_face) > radius_mm
    out = np.zeros(extended.shape[:axis] + (width,) + extended.shape[axis + 1:], dtype=bool)
    if not candidates.any():
        return out
    around = bounding_slices(candidates, reach_voxels(radius_mm, in_face))
    slab = slice(max(n - 2 * width, 0), n) if at_end else slice(0, min(2 * width, n))
    box = around[:axis] + (slab,) + around[axis:]
    depth = edt_mm(extended[box], spacing_kji)
    added = _layers(axis, slice(-width, None) if at_end else slice(0, width), extended.ndim)
    out[around[:axis] + (slice(None),) + around[axis:]] = (depth[added] > radius_mm) & np.expand_dims(candidates[around], axis)
    return out


def opening_mm(mask: np.ndarray, radius_mm: float, spacing_kji,
               continued_faces: Optional[Sequence[tuple[bool, bool]]] = None,
               depth_mm: Optional[np.ndarray] = None) -> np.ndarray:
    """Morphological opening with a Euclidean ball of ``radius_mm``.

    ``continued_faces`` gives, per axis, whether the mask goes on beyond the array's first and
    last face as it is at that face. Balls may then be centred beyond those faces (the mask is
    extended there by repeating its face for the opening), so a structure that a face cuts thin -
    a chest wall at the edge of a crop - still holds the balls it holds whole. Only the balls
    centred within :func:`reach_voxels` of a face reach into the array, so the extension is that
    deep, and none where that reach is under one voxel (a radius under the slice spacing); only
    the faces beyond which a ball can fit are extended (:func:`faces_holding_balls`).

    A ball centred inside the array fits in the extension iff it fits in the mask (each voxel it
    covers beyond a face repeats a face voxel it covers too), so those centres come from the mask's
    own depth - ``depth_mm``, its :func:`edt_mm` when known - and only the centres in the added
    layers need distances of their own (:func:`_centres_beyond_face`).
    """
    reach = reach_voxels(radius_mm, spacing_kji)
    if continued_faces is not None:
        reaching = [(before and r > 0, after and r > 0) for r, (before, after) in zip(reach, continued_faces)]
        continued_faces = faces_holding_balls(mask, radius_mm, spacing_kji, reaching)
    depth = edt_mm(mask, spacing_kji) if depth_mm is None else depth_mm
    if continued_faces is None or not any(before or after for before, after in continued_faces):
        return dilation_mm(depth > radius_mm, radius_mm, spacing_kji) & mask
    widths = [(int(r) if before else 0, int(r) if after else 0) for r, (before, after) in zip(reach, continued_faces)]
    extended = np.pad(mask, widths, mode="edge")
    inside = tuple(slice(w[0], w[0] + n) for w, n in zip(widths, mask.shape))
    centres = np.zeros(extended.shape, dtype=bool)
    centres[inside] = depth > radius_mm
    for axis, (before, after) in enumerate(widths):
        for width, at_end in ((before, False), (after, True)):
            if width:
                added = _layers(axis, slice(-width, None) if at_end else slice(0, width), mask.ndim)
                centres[added] |= _centres_beyond_face(extended, axis, width, at_end, radius_mm, spacing_kji)
    return dilation_mm(centres, radius_mm, spacing_kji)[inside] & mask
