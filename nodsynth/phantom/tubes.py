"""Tapering tubes (vessels, airways, aorta) and branching trees of them, rasterised on a grid.

A tree is a list of :class:`TubeSegment` in depth-first order: a segment's parent always
comes before it, so pruning a segment can drop its whole subtree in one pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..volume import Volume

InsideFn = Callable[[np.ndarray], np.ndarray]
"""Maps LPS points ``(n, 3)`` (mm) to a boolean array ``(n,)``: may a tube go there?"""

CHILD_RADIUS_RATIOS = (0.8, 0.7)
"""Radius of the two children of a bifurcation relative to their parent."""
CHILD_LENGTH_RATIO = 0.85
BRANCH_ANGLE_DEG = (22.0, 40.0)
"""Each child turns away from its parent's direction by an angle drawn in this range."""
OUTWARD_PULL = 0.35
"""Weight of the direction away from the tree root mixed into each child (trees spread out)."""
SEGMENT_TAPER = 0.92
"""Radius at the end of a segment relative to its start."""
CLIP_STEP_MM = 1.0


@dataclass(frozen=True)
class TubeSegment:
    """A straight tube from ``start_mm`` to ``end_mm`` (LPS) whose radius tapers linearly."""

    start_mm: np.ndarray
    end_mm: np.ndarray
    radius_start_mm: float
    radius_end_mm: float
    depth: int = 0
    parent: int = -1

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(self.end_mm - self.start_mm))


def polyline_tube(points_mm: Sequence[Sequence[float]], radius_mm: float) -> list[TubeSegment]:
    """A tube of constant radius through consecutive LPS points (aorta, trachea, main bronchi)."""
    pts = np.asarray(points_mm, dtype=np.float64)
    return [TubeSegment(pts[n], pts[n + 1], radius_mm, radius_mm, 0, n - 1) for n in range(len(pts) - 1)]


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (``np.cross`` is slow for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _turned(direction: np.ndarray, axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rotate a unit vector by ``angle_rad`` about a unit ``axis`` perpendicular to it."""
    return direction * np.cos(angle_rad) + _cross(axis, direction) * np.sin(angle_rad)


def _random_perpendicular(direction: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return _unit(v - v.dot(direction) * direction)


def _clip_to_inside(start: np.ndarray, end: np.ndarray, inside: InsideFn) -> tuple[np.ndarray, bool]:
    """Shorten ``start -> end`` to its part inside; returns the new end and whether it was cut."""
    steps = max(2, int(np.ceil(np.linalg.norm(end - start) / CLIP_STEP_MM)) + 1)
    points = start + np.linspace(0.0, 1.0, steps)[:, None] * (end - start)
    ok = inside(points)
    if ok.all():
        return end, False
    first_out = int(np.argmin(ok))
    return points[max(first_out - 1, 0)], True


def grow_tree(root_start_mm: Sequence[float], root_direction: Sequence[float], length_mm: float,
              radius_mm: float, max_depth: int, rng: np.random.Generator, inside: InsideFn,
              min_radius_mm: float = 0.6) -> list[TubeSegment]:
    """A bifurcating tree from a root segment; every segment below the root stays ``inside``.

    The root may start outside (in the mediastinum); a child starting outside is dropped, a
    segment leaving the region is cut at its border and ends its branch there.
    """
    origin = np.asarray(root_start_mm, dtype=np.float64)
    segments: list[TubeSegment] = []

    def grow(start, direction, length, radius, depth, parent):
        end = start + direction * length
        cut = False
        if depth > 0:
            if not inside(start[None])[0]:
                return
            end, cut = _clip_to_inside(start, end, inside)
            if np.linalg.norm(end - start) < radius:
                return
        segments.append(TubeSegment(start, end, radius, radius * SEGMENT_TAPER, depth, parent))
        index = len(segments) - 1
        if cut or depth >= max_depth:
            return
        axis = _random_perpendicular(direction, rng)
        outward = _unit(end - origin) if np.linalg.norm(end - origin) > 1e-6 else direction
        for sign, ratio in zip((1.0, -1.0), CHILD_RADIUS_RATIOS):
            angle = np.deg2rad(rng.uniform(*BRANCH_ANGLE_DEG))
            child_dir = _unit(_turned(direction, axis, sign * angle) + OUTWARD_PULL * outward)
            if radius * ratio >= min_radius_mm:
                grow(end, child_dir, length * CHILD_LENGTH_RATIO, radius * ratio, depth + 1, index)

    grow(origin, _unit(np.asarray(root_direction, dtype=np.float64)), length_mm, radius_mm, 0, -1)
    return segments


def distance_to_segment_mm(segment: TubeSegment, point_mm: np.ndarray) -> float:
    """Distance (mm) from an LPS point to the segment's axis."""
    a, b = segment.start_mm, segment.end_mm
    ab = b - a
    t = np.clip((point_mm - a).dot(ab) / max(ab.dot(ab), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(point_mm - (a + t * ab)))


def prune_near(segments: Sequence[TubeSegment], center_mm: np.ndarray, clearance_mm: float,
               keep: frozenset[int] = frozenset()) -> list[TubeSegment]:
    """Drop every segment whose wall comes within ``clearance_mm`` of ``center_mm``, with its subtree.

    Indices in ``keep`` are never dropped (nor, therefore, made orphans). Parents are re-indexed.
    """
    new_index: dict[int, int] = {}
    kept: list[TubeSegment] = []
    for n, seg in enumerate(segments):
        orphan = seg.parent >= 0 and seg.parent not in new_index
        near = distance_to_segment_mm(seg, center_mm) - seg.radius_start_mm < clearance_mm
        if n not in keep and (orphan or near):
            continue
        new_index[n] = len(kept)
        kept.append(TubeSegment(seg.start_mm, seg.end_mm, seg.radius_start_mm, seg.radius_end_mm,
                                seg.depth, new_index.get(seg.parent, -1)))
    return kept


def rasterise_tubes(segments: Sequence[TubeSegment], grid: Volume, extra_radius_mm: float = 0.0) -> np.ndarray:
    """Boolean ``[k, j, i]`` mask of the voxel centres inside any tube (grid direction: identity)."""
    mask = np.zeros(grid.shape_kji, dtype=bool)
    spacing, origin = grid.spacing, grid.origin
    size_ijk = np.asarray(grid.size_ijk)
    for seg in segments:
        reach = max(seg.radius_start_mm, seg.radius_end_mm) + extra_radius_mm
        lo = np.floor((np.minimum(seg.start_mm, seg.end_mm) - reach - origin) / spacing).astype(int)
        hi = np.ceil((np.maximum(seg.start_mm, seg.end_mm) + reach - origin) / spacing).astype(int) + 1
        lo, hi = np.clip(lo, 0, size_ijk), np.clip(hi, 0, size_ijk)
        if np.any(hi <= lo):
            continue
        x = origin[0] + spacing[0] * np.arange(lo[0], hi[0])[None, None, :] - seg.start_mm[0]
        y = origin[1] + spacing[1] * np.arange(lo[1], hi[1])[None, :, None] - seg.start_mm[1]
        z = origin[2] + spacing[2] * np.arange(lo[2], hi[2])[:, None, None] - seg.start_mm[2]
        ab = seg.end_mm - seg.start_mm
        t = np.clip((x * ab[0] + y * ab[1] + z * ab[2]) / max(ab.dot(ab), 1e-12), 0.0, 1.0)
        d2 = (x - t * ab[0]) ** 2 + (y - t * ab[1]) ** 2 + (z - t * ab[2]) ** 2
        radius = seg.radius_start_mm + (seg.radius_end_mm - seg.radius_start_mm) * t + extra_radius_mm
        mask[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]] |= d2 <= radius ** 2
    return mask
