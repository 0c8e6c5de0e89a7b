"""Nodules of the demo patient: lobulated shapes, their HU, and placement against wall or vessel."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..volume import Volume
from .tubes import TubeSegment, distance_to_segment_mm

SUBTYPE_OF_KIND = {
    "solid": "solid",
    "part-solid": "part-solid",
    "ground-glass": "ground-glass",
    "juxta-pleural": "solid",
    "juxta-vascular": "solid",
}
"""Each phantom nodule kind and the HR-LDM subtype (solid / part-solid / ground-glass) it has."""

LOBULATION = 0.07
"""Relative amplitude of the low-order bumps on a nodule's surface."""
PART_SOLID_CORE_FRACTION = 0.6
"""Radius of a part-solid nodule's solid core relative to the whole nodule: 0.6^3 = 22 % of its
volume, the median solid fraction of the LIDC "Part Solid/Mixed" reader masks (:mod:`nodsynth.measure`)."""

SOLID_HU = (25.0, 18.0)
"""Mean and texture amplitude (HU) of solid nodule tissue."""
GROUND_GLASS_HU = (-530.0, 30.0)
"""Mean and texture amplitude (HU) of ground-glass tissue."""

WALL_SEARCH_STEP_MM = 0.25
WALL_OVERLAP_MM = 2.0
"""A juxta-pleural nodule's sphere reaches this far past the pleura (cut off: broad pleural base)."""
VESSEL_OVERLAP_MM = 0.6
"""A juxta-vascular nodule's surface overlaps the vessel wall by this much (they touch)."""


@dataclass(frozen=True)
class NoduleSpec:
    """Where and what a phantom nodule is, before it is rasterised."""

    name: str
    kind: str
    lobe: int
    center_mm: np.ndarray
    radius_mm: float
    bumps: np.ndarray
    """Three unit vectors orienting the surface bumps (rows)."""
    core_offset_mm: np.ndarray
    """Offset of a part-solid core from the centre."""

    @property
    def subtype(self) -> str:
        return SUBTYPE_OF_KIND[self.kind]


def random_bumps(rng: np.random.Generator) -> np.ndarray:
    """Three random unit vectors (rows) that orient a nodule's lobulation."""
    v = rng.normal(size=(3, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _local_offsets(grid: Volume, center_mm: np.ndarray, reach_mm: float):
    """Index bounds ``(lo, hi)`` (i, j, k) of a box around a point and the offsets (mm) of its voxels."""
    size = np.asarray(grid.size_ijk)
    lo = np.clip(np.floor((center_mm - reach_mm - grid.origin) / grid.spacing).astype(int), 0, size)
    hi = np.clip(np.ceil((center_mm + reach_mm - grid.origin) / grid.spacing).astype(int) + 1, 0, size)
    axes = [grid.origin[a] + grid.spacing[a] * np.arange(lo[a], hi[a]) - center_mm[a] for a in range(3)]
    return lo, hi, (axes[0][None, None, :], axes[1][None, :, None], axes[2][:, None, None])


def surface_radius_mm(spec: NoduleSpec, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """Radius (mm) of the lobulated surface in the direction of each offset."""
    norm = np.sqrt(dx * dx + dy * dy + dz * dz) + 1e-9
    c = [(dx * b[0] + dy * b[1] + dz * b[2]) / norm for b in spec.bumps]
    wobble = (1.5 * c[0] ** 2 - 0.5) + c[1] * c[2]
    return spec.radius_mm * (1.0 + LOBULATION * wobble)


def nodule_masks(spec: NoduleSpec, grid: Volume) -> tuple[np.ndarray, np.ndarray]:
    """``(whole, core)`` boolean ``[k, j, i]`` masks; ``core`` is the solid core (part-solid only)."""
    lo, hi, (dx, dy, dz) = _local_offsets(grid, spec.center_mm, spec.radius_mm * (1.0 + 2 * LOBULATION) + 1.0)
    whole = np.zeros(grid.shape_kji, bool)
    core = np.zeros(grid.shape_kji, bool)
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    whole[box] = dx * dx + dy * dy + dz * dz <= surface_radius_mm(spec, dx, dy, dz) ** 2
    if spec.kind == "part-solid":
        cx, cy, cz = dx - spec.core_offset_mm[0], dy - spec.core_offset_mm[1], dz - spec.core_offset_mm[2]
        core_r = PART_SOLID_CORE_FRACTION * surface_radius_mm(spec, cx, cy, cz)
        core[box] = (cx * cx + cy * cy + cz * cz <= core_r ** 2) & whole[box]
    return whole, core


def nodule_hu(spec: NoduleSpec, texture: np.ndarray, core: np.ndarray) -> np.ndarray:
    """HU of a nodule's voxels from a unit-variance texture field (same shape as ``texture``)."""
    solid = SOLID_HU[0] + SOLID_HU[1] * texture
    glass = GROUND_GLASS_HU[0] + GROUND_GLASS_HU[1] * texture
    if spec.subtype == "solid":
        return solid
    if spec.subtype == "ground-glass":
        return glass
    return np.where(core, solid, glass)


def wall_contact_center_mm(start_mm: Sequence[float], direction: Sequence[float], radius_mm: float,
                           inside: Callable[[np.ndarray], np.ndarray], max_mm: float = 150.0) -> np.ndarray:
    """Centre for a juxta-pleural nodule: march from ``start_mm`` to the lung border, step back.

    The sphere then crosses the pleura by :data:`WALL_OVERLAP_MM`.
    """
    start = np.asarray(start_mm, dtype=np.float64)
    unit = np.asarray(direction, dtype=np.float64)
    unit = unit / np.linalg.norm(unit)
    steps = np.arange(0.0, max_mm, WALL_SEARCH_STEP_MM)
    ok = inside(start + steps[:, None] * unit)
    if ok.all() or not ok[0]:
        raise ValueError("the wall search must start inside the lung and reach its border")
    border = steps[int(np.argmin(ok))]
    return start + (border - (radius_mm - WALL_OVERLAP_MM)) * unit


def vessel_contact_center_mm(segments: Sequence[TubeSegment], radius_mm: float,
                             fits: Callable[[np.ndarray], bool], rng: np.random.Generator,
                             min_vessel_radius_mm: float = 1.0, max_vessel_radius_mm: float = 2.2,
                             min_length_mm: float = 12.0) -> Optional[tuple[np.ndarray, int]]:
    """Centre for a juxta-vascular nodule touching a medium vessel, and that vessel's index.

    Candidates are segments of suitable calibre and length, tried in random order; the nodule sits
    beside the segment's midpoint, perpendicular to it, its surface overlapping the vessel wall by
    :data:`VESSEL_OVERLAP_MM`. ``fits(center)`` decides whether a centre is acceptable.
    """
    candidates = [n for n, s in enumerate(segments)
                  if s.depth > 0 and min_vessel_radius_mm <= s.radius_start_mm <= max_vessel_radius_mm
                  and s.length_mm >= min_length_mm]
    for n in rng.permutation(candidates):
        seg = segments[int(n)]
        axis = (seg.end_mm - seg.start_mm) / seg.length_mm
        mid = 0.5 * (seg.start_mm + seg.end_mm)
        vessel_r = 0.5 * (seg.radius_start_mm + seg.radius_end_mm)
        for angle in np.linspace(0.0, 2 * np.pi, 8, endpoint=False):
            ref = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
            u = np.cross(axis, ref)
            u /= np.linalg.norm(u)
            v = np.cross(axis, u)
            perp = np.cos(angle) * u + np.sin(angle) * v
            center = mid + perp * (radius_mm + vessel_r - VESSEL_OVERLAP_MM)
            if abs(distance_to_segment_mm(seg, center) - (radius_mm + vessel_r - VESSEL_OVERLAP_MM)) < 0.1 \
                    and fits(center):
                return center, int(n)
    return None
