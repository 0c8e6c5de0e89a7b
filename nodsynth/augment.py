"""Exact-volume nodule shrink / grow on MAISI label maps (lesion-aware augmentation).

A nodule is one 6-connected component of label 23. :func:`resize_nodule` changes one nodule (by
component id or an LPS point) or all of them to ``percent`` of their volume:

* **shrink** (``percent < 100``): keep exactly ``round(V * percent / 100)`` voxels (at least one),
  removing the voxels nearest the nodule surface first. Depth is the exact Euclidean distance (mm,
  anisotropic spacing respected) from each voxel to the outside; ties are broken by the distance to
  the centroid, then by voxel order, so the result is deterministic, shape-preserving and nested for
  decreasing targets. The kept set is one connected component (a priority flood from the deepest
  voxel takes over when the plain depth ranking would split it).
* **grow** (``percent > 100``): add the lung-lobe voxels (28-32) nearest the nodule, never another
  organ, the body label or outside the body; the grown nodule stays one component and does not touch
  another nodule. A clear :class:`InputError` says when the lung cannot host the target.
* **refill**: removed voxels take the id of the nearest lobe voxel (28-32); every voxel that is not
  a removed nodule voxel or a grown lobe voxel keeps its label bit for bit.

All work happens on a bounding box around each nodule, so a 512 x 512 x 256 map takes a fraction of
a second. ``method="erosion"`` reproduces the public reference (CaNA) for comparison: iterative
6-connected binary erosion of the whole-grid component mask, stopping before the erosion that would
overshoot the target, then a whole-grid nearest-lobe refill.

``method="paper"`` is the NodMAISI paper's Algorithm 1 rule: erode the nodule (shrink) or dilate it into
the lung lobes (grow) one 6-connected step at a time and keep the mask whose volume is *closest* to the
target (the first of equally close ones), at most N = 50 steps as the algorithm states, so the achieved
volume moves in whole shells (one voxel layer) rather than exactly; removed voxels take the nearest lobe as
in the default method.
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist

from .errors import InputError
from .labelmap import SIX_CONNECTED, as_integer_labelmap
from .labels import LOBE_IDS, NODULE
from .progress import CancelToken, ProgressFn, check_cancel, no_progress
from .sphere import sphere_diameter_mm
from .volume import Volume

MAX_PERCENT = 300.0
METHODS = ("distance", "erosion", "paper")
DEFAULT_METHOD = "distance"
POINT_TOLERANCE_MM = 5.0
"""A point selects the nodule containing it, or the nearest nodule voxel within this distance."""
EROSION_MIN_VOXELS = 5
"""The reference keeps nodules of at most this many voxels unchanged and never goes below it."""
EROSION_MAX_ITERATIONS = 99

NoduleSelector = Union[None, str, int, Sequence[float], np.ndarray]
"""``None`` or ``"all"``: every nodule; an int: component id (1-based); three floats: an LPS point (mm)."""


# ------------------------------------------------------------------ results
@dataclass
class NoduleStats:
    """Measurements of one nodule before and after resizing (mm, mm^3, LPS)."""

    nodule_id: int
    target_percent: float
    voxels_before: int
    voxels_after: int
    volume_before_mm3: float
    volume_after_mm3: float
    achieved_percent: float
    equivalent_diameter_before_mm: float
    equivalent_diameter_after_mm: float
    longest_diameter_before_mm: float
    longest_diameter_after_mm: float
    centroid_before_lps: tuple[float, float, float]
    centroid_after_lps: tuple[float, float, float]
    centroid_shift_mm: float

    @property
    def error_points(self) -> float:
        """Achieved minus target percent, in percentage points of the original volume."""
        return self.achieved_percent - self.target_percent

    def as_row(self) -> dict:
        """Flat dict for CSV output (centroids split into x, y, z)."""
        row = asdict(self)
        for key in ("centroid_before_lps", "centroid_after_lps"):
            x, y, z = row.pop(key)
            row.update({f"{key}_x": x, f"{key}_y": y, f"{key}_z": z})
        return row


@dataclass
class ResizeResult:
    """A resized label map and the statistics of every nodule it changed."""

    labelmap: Volume
    percent: float
    method: str
    nodules: list[NoduleStats] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------- validation
def check_percent(percent: float) -> float:
    """``percent`` as float; raises :class:`InputError` unless 0 < percent <= 300."""
    try:
        value = float(percent)
    except (TypeError, ValueError):
        raise InputError(f"percent must be a number, got {percent!r}") from None
    if not math.isfinite(value) or value <= 0 or value > MAX_PERCENT:
        raise InputError(f"percent must be in (0, {MAX_PERCENT:g}], got {percent!r}")
    return value


def percent_tag(percent: float) -> str:
    """``50.0`` -> ``p50``, ``62.5`` -> ``p62_5``: the percent in output file names."""
    return f"p{percent:g}".replace(".", "_")


def target_voxels(voxels: int, percent: float) -> int:
    """``round(voxels * percent / 100)`` with halves rounded up, at least one voxel."""
    return max(1, int(math.floor(voxels * percent / 100.0 + 0.5)))


# ---------------------------------------------------------------- components
def nodule_components(labelmap: Volume) -> list[np.ndarray]:
    """Voxel indices ``(N, 3)`` in ``k, j, i`` of each 6-connected nodule (label 23) component.

    Component ``c`` (1-based id) is ``result[c - 1]``; ids follow scipy's raster order. Raises
    :class:`InputError` when the map holds no label 23.
    """
    coords = np.argwhere(labelmap.array == NODULE)
    if coords.size == 0:
        raise InputError(f"the label map holds no nodule (label {NODULE})")
    lo, hi = coords.min(axis=0), coords.max(axis=0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    labels, count = ndi.label(labelmap.array[box] == NODULE, structure=SIX_CONNECTED)
    local = coords - lo
    ids = labels[tuple(local.T)]
    order = np.argsort(ids, kind="stable")
    splits = np.cumsum(np.bincount(ids, minlength=count + 1)[1:])[:-1]
    return np.split(coords[order], splits)


def select_nodules(labelmap: Volume, components: list[np.ndarray], nodule: NoduleSelector) -> list[int]:
    """Component ids (1-based) chosen by ``nodule`` (see :data:`NoduleSelector`)."""
    if nodule is None or (isinstance(nodule, str) and nodule.lower() == "all"):
        return list(range(1, len(components) + 1))
    if isinstance(nodule, (int, np.integer)) and not isinstance(nodule, bool):
        if not 1 <= int(nodule) <= len(components):
            raise InputError(f"unknown nodule id {nodule}; the label map has nodules 1..{len(components)}")
        return [int(nodule)]
    point = np.asarray(nodule, dtype=float).reshape(-1)
    if point.shape != (3,):
        raise InputError(f"nodule must be 'all', a component id or an LPS point (x, y, z mm), got {nodule!r}")
    labelmap.world_to_kji(point)  # raises GeometryError when the point is outside the volume
    best, best_mm = 0, np.inf
    for cid, coords in enumerate(components, start=1):
        world = labelmap.index_to_world(coords[:, ::-1].astype(float))
        distance_mm = float(np.min(np.linalg.norm(world - point, axis=1)))
        if distance_mm < best_mm:
            best, best_mm = cid, distance_mm
    if best_mm > POINT_TOLERANCE_MM:
        raise InputError(f"no nodule at {np.round(point, 1).tolist()} mm (LPS): the nearest nodule voxel is "
                         f"{best_mm:.1f} mm away (tolerance {POINT_TOLERANCE_MM:g} mm)")
    return [best]


# ---------------------------------------------------------------- boxes
def padded_box(coords_kji: np.ndarray, pad_kji: np.ndarray, shape_kji: Sequence[int]) -> tuple[slice, ...]:
    """Slices of the bounding box of ``coords_kji`` grown by ``pad_kji`` voxels, clipped to the grid."""
    lo = np.maximum(coords_kji.min(axis=0) - pad_kji, 0)
    hi = np.minimum(coords_kji.max(axis=0) + 1 + pad_kji, shape_kji)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def box_clearance_mm(coords_kji: np.ndarray, box: tuple[slice, ...], shape_kji: Sequence[int],
                     spacing_kji: np.ndarray) -> float:
    """Smallest distance (mm) from the voxels ``coords_kji`` to any voxel outside ``box`` in the grid.

    Box faces on the grid border do not count (nothing lies beyond them); ``inf`` for the whole grid.
    """
    clearance = np.inf
    lo, hi = coords_kji.min(axis=0), coords_kji.max(axis=0)
    for axis, sl in enumerate(box):
        if sl.start > 0:
            clearance = min(clearance, (lo[axis] - sl.start + 1) * spacing_kji[axis])
        if sl.stop < shape_kji[axis]:
            clearance = min(clearance, (sl.stop - hi[axis]) * spacing_kji[axis])
    return float(clearance)


def is_one_component(mask: np.ndarray) -> bool:
    """True when the boolean mask is a single non-empty 6-connected component."""
    return ndi.label(mask, structure=SIX_CONNECTED)[1] == 1


# ---------------------------------------------------------------- orderings
def priority_flood(allowed: np.ndarray, start: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Visit the ``allowed`` voxels reachable (6-connected) from the ``start`` voxels, lowest ``rank`` first.

    ``start`` and the result are flat indices into ``allowed``; start voxels are not repeated in
    the result. Every prefix of the result, joined with ``start``, is connected.
    """
    shape = allowed.shape
    padded = np.pad(allowed, 1)
    padded_rank = np.pad(rank.astype(np.float64), 1, constant_values=np.inf)
    strides = np.array([(shape[1] + 2) * (shape[2] + 2), shape[2] + 2, 1])
    offsets = np.concatenate([strides, -strides]).tolist()
    flat_allowed = padded.ravel()
    flat_rank = padded_rank.ravel()
    seen = np.zeros(padded.size, dtype=bool)
    heap: list[tuple[float, int]] = []
    start_coords = np.unravel_index(np.asarray(start, dtype=np.int64), shape)
    seen[np.ravel_multi_index(tuple(c + 1 for c in start_coords), padded.shape)] = True
    for voxel in np.flatnonzero(seen).tolist():
        for off in offsets:
            n = voxel + off
            if flat_allowed[n] and not seen[n]:
                seen[n] = True
                heapq.heappush(heap, (flat_rank[n], n))
    visited = []
    while heap:
        _, voxel = heapq.heappop(heap)
        visited.append(voxel)
        for off in offsets:
            n = voxel + off
            if flat_allowed[n] and not seen[n]:
                seen[n] = True
                heapq.heappush(heap, (flat_rank[n], n))
    padded_coords = np.unravel_index(np.asarray(visited, dtype=np.int64), padded.shape)
    return np.ravel_multi_index(tuple(c - 1 for c in padded_coords), shape)


def rank_of(order: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Array of ``shape`` holding each voxel's position in ``order`` (``inf`` elsewhere)."""
    rank = np.full(int(np.prod(shape)), np.inf)
    rank[order] = np.arange(order.size)
    return rank.reshape(shape)


def centroid_distance_mm(flat: np.ndarray, shape: tuple[int, ...], centroid_kji: np.ndarray,
                         spacing_kji: np.ndarray) -> np.ndarray:
    """Distance (mm) of the voxels ``flat`` (flat indices into ``shape``) to a centroid in index units."""
    coords = np.column_stack(np.unravel_index(flat, shape)).astype(float)
    return np.linalg.norm((coords - centroid_kji) * spacing_kji, axis=1)


def shrink_order(mask: np.ndarray, spacing_kji: np.ndarray, keep_counts: Sequence[int]) -> np.ndarray:
    """Flat indices of the ``mask`` voxels, deepest first: keeping any prefix removes the outermost voxels.

    Depth is the Euclidean distance (mm) to the nearest voxel outside the mask; ties go to the voxel
    nearer the centroid, then to the lower index. When a prefix of a length in ``keep_counts`` would
    not be one connected component, a priority flood from the deepest voxel gives the order instead.
    """
    depth_mm = ndi.distance_transform_edt(np.pad(mask, 1), sampling=spacing_kji)[1:-1, 1:-1, 1:-1]
    flat = np.flatnonzero(mask)
    centroid = np.column_stack(np.unravel_index(flat, mask.shape)).mean(axis=0)
    order = flat[np.lexsort((flat, centroid_distance_mm(flat, mask.shape, centroid, spacing_kji),
                             -depth_mm.ravel()[flat]))]
    if all(prefix_is_connected(order, n, mask.shape) for n in keep_counts):
        return order
    rest = priority_flood(mask, order[:1], rank_of(order, mask.shape))
    return np.concatenate([order[:1], rest])


def prefix_is_connected(order: np.ndarray, count: int, shape: tuple[int, ...],
                        base: Optional[np.ndarray] = None) -> bool:
    """True when the first ``count`` voxels of ``order`` (joined with ``base``) form one component."""
    mask = np.zeros(shape, dtype=bool) if base is None else base.copy()
    mask.flat[order[:count]] = True
    return is_one_component(mask)


def grow_order(nodule: np.ndarray, candidates: np.ndarray, spacing_kji: np.ndarray,
               add_counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Candidate voxels nearest the nodule first, and their distance to it (mm), as flat indices.

    Ties go to the voxel nearer the centroid, then to the lower index. When adding a prefix of a
    length in ``add_counts`` would leave a piece unattached, a priority flood from the nodule through
    the candidates gives the order instead (only reachable candidates are listed).
    """
    distance_mm = ndi.distance_transform_edt(~nodule, sampling=spacing_kji).ravel()
    flat = np.flatnonzero(candidates)
    centroid = np.argwhere(nodule).mean(axis=0)
    order = flat[np.lexsort((flat, centroid_distance_mm(flat, nodule.shape, centroid, spacing_kji),
                             distance_mm[flat]))]
    needed = [n for n in add_counts if n <= order.size]
    if not all(prefix_is_connected(order, n, nodule.shape, base=nodule) for n in needed):
        order = priority_flood(candidates, np.flatnonzero(nodule), rank_of(order, nodule.shape))
    return order, distance_mm[order]


# ---------------------------------------------------------------- refill
def nearest_lobe_ids(labels: np.ndarray, removed_kji: np.ndarray, spacing_kji: np.ndarray,
                     pad_kji: np.ndarray) -> np.ndarray:
    """Lobe id (28-32) of the lobe voxel nearest (mm) to each voxel of ``removed_kji``.

    Searches a box around the voxels, enlarged until the answer is exact; raises
    :class:`InputError` when the label map has no lobe voxel at all.
    """
    shape = labels.shape
    pad = np.asarray(pad_kji, dtype=int)
    while True:
        box = padded_box(removed_kji, pad, shape)
        lobe = np.isin(labels[box], LOBE_IDS)
        whole = all(sl.start == 0 and sl.stop == n for sl, n in zip(box, shape))
        if lobe.any():
            distance_mm, nearest = ndi.distance_transform_edt(~lobe, sampling=spacing_kji, return_indices=True)
            local = tuple((removed_kji - [sl.start for sl in box]).T)
            if whole or distance_mm[local].max() < box_clearance_mm(removed_kji, box, shape, spacing_kji):
                return labels[box][tuple(idx[local] for idx in nearest)]
        elif whole:
            raise InputError(f"the label map has no lung lobe (labels {LOBE_IDS[0]}-{LOBE_IDS[-1]}) "
                             "to refill the removed nodule voxels")
        pad = pad * 2 + 1


# ---------------------------------------------------------------- measurements
def longest_diameter_mm(coords_kji: np.ndarray, spacing_kji: np.ndarray) -> float:
    """Largest distance (mm) between two voxel centres of a voxel set (0 for one voxel)."""
    points = coords_kji * spacing_kji
    if len(points) < 2:
        return 0.0
    if len(points) > 4:
        points = points[ConvexHull(points, qhull_options="QJ").vertices]
    return float(pdist(points).max())


def equivalent_diameter_mm(voxels: int, voxel_volume_mm3: float) -> float:
    """Diameter (mm) of the sphere with the volume of ``voxels`` voxels."""
    return sphere_diameter_mm(voxels * voxel_volume_mm3)


def nodule_stats(labelmap: Volume, nodule_id: int, percent: float, before_kji: np.ndarray,
                 after_kji: np.ndarray) -> NoduleStats:
    """Before/after measurements of one nodule (voxel index sets ``(N, 3)`` in ``k, j, i``)."""
    spacing_kji = labelmap.spacing[::-1]
    voxel_mm3 = labelmap.voxel_volume_mm3
    c_before = labelmap.index_to_world(before_kji.mean(axis=0)[::-1])
    c_after = labelmap.index_to_world(after_kji.mean(axis=0)[::-1])
    n_before, n_after = len(before_kji), len(after_kji)
    return NoduleStats(
        nodule_id=nodule_id, target_percent=percent, voxels_before=n_before, voxels_after=n_after,
        volume_before_mm3=n_before * voxel_mm3, volume_after_mm3=n_after * voxel_mm3,
        achieved_percent=100.0 * n_after / n_before,
        equivalent_diameter_before_mm=equivalent_diameter_mm(n_before, voxel_mm3),
        equivalent_diameter_after_mm=equivalent_diameter_mm(n_after, voxel_mm3),
        longest_diameter_before_mm=longest_diameter_mm(before_kji, spacing_kji),
        longest_diameter_after_mm=longest_diameter_mm(after_kji, spacing_kji),
        centroid_before_lps=tuple(float(v) for v in c_before),
        centroid_after_lps=tuple(float(v) for v in c_after),
        centroid_shift_mm=float(np.linalg.norm(c_after - c_before)))


# ---------------------------------------------------------------- distance method
BOX_PAD_VOXELS = 3


def grow_pad_kji(coords_kji: np.ndarray, percent: float, spacing_kji: np.ndarray) -> np.ndarray:
    """Initial box padding (voxels per axis) for growing a nodule to ``percent``: twice the radius gain."""
    radius_mm = equivalent_diameter_mm(len(coords_kji), 1.0) / 2.0 * float(np.prod(spacing_kji)) ** (1 / 3)
    gain_mm = radius_mm * ((percent / 100.0) ** (1 / 3) - 1.0)
    return np.ceil(2.0 * gain_mm / spacing_kji).astype(int) + BOX_PAD_VOXELS


def grow_plan(labels: np.ndarray, coords_kji: np.ndarray, others_kji: list[np.ndarray], add_count: int,
              add_counts: Sequence[int], spacing_kji: np.ndarray, max_percent: float) -> np.ndarray:
    """Global ``(M, 3)`` indices of lobe voxels to add, nearest first (at least ``add_count`` of them).

    Candidates are lobe voxels not face-adjacent to another nodule; raises :class:`InputError`
    when the lung cannot host ``add_count`` more voxels.
    """
    shape = labels.shape
    pad = grow_pad_kji(coords_kji, max_percent, spacing_kji)
    while True:
        box = padded_box(coords_kji, pad, shape)
        start = np.array([sl.start for sl in box])
        nodule = np.zeros(tuple(sl.stop - sl.start for sl in box), dtype=bool)
        nodule[tuple((coords_kji - start).T)] = True
        candidates = np.isin(labels[box], LOBE_IDS)
        others = np.zeros_like(nodule)
        for coords in others_kji:
            inside = np.all((coords >= start) & (coords < start + nodule.shape), axis=1)
            others[tuple((coords[inside] - start).T)] = True
        candidates &= ~ndi.binary_dilation(others, structure=SIX_CONNECTED)
        whole = all(sl.start == 0 and sl.stop == n for sl, n in zip(box, shape))
        order, distance_mm = grow_order(nodule, candidates, spacing_kji, add_counts)
        clearance = box_clearance_mm(coords_kji, box, shape, spacing_kji)
        if order.size >= add_count and (whole or distance_mm[add_count - 1] < clearance):
            return np.column_stack(np.unravel_index(order, nodule.shape)) + start
        if whole:
            raise InputError(f"the lung cannot host the grown nodule: it needs {add_count} more lobe voxels "
                             f"({add_count * float(np.prod(spacing_kji)):.0f} mm^3) next to it, only "
                             f"{order.size} are reachable inside lobes {LOBE_IDS[0]}-{LOBE_IDS[-1]}")
        pad = pad * 2 + 1


def distance_series(labels: np.ndarray, coords_kji: np.ndarray, others_kji: list[np.ndarray],
                    percents: Sequence[float], spacing_kji: np.ndarray) -> list[np.ndarray]:
    """New voxel sets ``(N, 3)`` of one nodule for each percent (distance method; nested)."""
    voxels = len(coords_kji)
    counts = [target_voxels(voxels, p) for p in percents]
    results: dict[int, np.ndarray] = {}
    keep = [n for n in counts if n <= voxels]
    if keep:
        box = padded_box(coords_kji, np.zeros(3, dtype=int), labels.shape)
        start = np.array([sl.start for sl in box])
        mask = np.zeros(tuple(sl.stop - sl.start for sl in box), dtype=bool)
        mask[tuple((coords_kji - start).T)] = True
        order = np.column_stack(np.unravel_index(shrink_order(mask, spacing_kji, keep), mask.shape)) + start
        results.update({n: order[:n] for n in keep})
    adds = [n - voxels for n in counts if n > voxels]
    if adds:
        added = grow_plan(labels, coords_kji, others_kji, max(adds), adds, spacing_kji, max(percents))
        results.update({voxels + m: np.concatenate([coords_kji, added[:m]]) for m in adds})
    return [results[n] for n in counts]


# ---------------------------------------------------------------- erosion method (reference)
def erosion_shrink_mask(component: np.ndarray, percent: float) -> np.ndarray:
    """The reference shrink of one whole-grid component mask by iterative 6-connected erosion.

    Stops before the erosion that would leave fewer than ``max(int(V * percent / 100), 5)`` voxels
    (or none), or after the first erosion reaching ``percent``; masks of at most 5 voxels stay.
    """
    voxels = int(np.count_nonzero(component))
    if voxels <= EROSION_MIN_VOXELS:
        return component
    target = max(int(voxels * percent / 100.0), EROSION_MIN_VOXELS)
    current = component
    for _ in range(EROSION_MAX_ITERATIONS):
        eroded = ndi.binary_erosion(current, structure=SIX_CONNECTED)
        count = int(np.count_nonzero(eroded))
        if count == 0 or count < target:
            break
        current = eroded
        if 100.0 * count / voxels <= percent:
            break
    return current


def erosion_refill(labels: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Lobe ids for the ``removed`` voxels (boolean mask), as the reference: nearest lobe voxel in
    index units (spacing ignored), one distance transform of the whole grid."""
    lobe = np.isin(labels, LOBE_IDS)
    if not lobe.any():
        raise InputError(f"the label map has no lung lobe (labels {LOBE_IDS[0]}-{LOBE_IDS[-1]}) "
                         "to refill the removed nodule voxels")
    nearest = ndi.distance_transform_edt(~lobe, return_distances=False, return_indices=True)
    return labels[tuple(idx[removed] for idx in nearest)]


# ---------------------------------------------------------------- paper method (Algorithm 1, closest mask)
PAPER_MAX_ITERATIONS = 50
"""Algorithm 1 of the NodMAISI paper stops after N = 50 erosion (dilation) steps."""


def closest_iterate(nodule: np.ndarray, allowed: np.ndarray, target: int, grow: bool) -> np.ndarray:
    """The erosion (or dilation within ``allowed``) iterate of ``nodule`` whose voxel count is closest to ``target``.

    Iterates until a step changes nothing, empties the mask, passes the target or :data:`PAPER_MAX_ITERATIONS`
    steps were taken; the first of equally close iterates wins.
    """
    best, best_gap, current = nodule, abs(int(nodule.sum()) - target), nodule
    for _ in range(PAPER_MAX_ITERATIONS):
        if grow:
            step = ndi.binary_dilation(current, SIX_CONNECTED) & allowed
        else:
            step = ndi.binary_erosion(current, SIX_CONNECTED)
        count = int(step.sum())
        if count == 0 or np.array_equal(step, current):
            return best
        if abs(count - target) < best_gap:
            best, best_gap = step, abs(count - target)
        current = step
        if (count > target) if grow else (count < target):
            return best
    return best


def paper_keep(labels: np.ndarray, coords_kji: np.ndarray, percent: float, spacing_kji: np.ndarray) -> np.ndarray:
    """Voxels ``(N, 3)`` of one nodule after the closest-mask rule at ``percent`` (see the module docstring)."""
    grow = percent > 100
    target = target_voxels(len(coords_kji), percent)
    pad = grow_pad_kji(coords_kji, percent, spacing_kji) if grow else np.ones(3, dtype=int)
    shape = labels.shape
    while True:
        box = padded_box(coords_kji, pad, shape)
        start = np.array([sl.start for sl in box])
        nodule = np.zeros(tuple(sl.stop - sl.start for sl in box), dtype=bool)
        nodule[tuple((coords_kji - start).T)] = True
        kept = closest_iterate(nodule, np.isin(labels[box], LOBE_IDS) | nodule, target, grow)
        whole = all(sl.start == 0 and sl.stop == n for sl, n in zip(box, shape))
        on_border = any(np.take(kept, i, axis=a).any() and (box[a].start > 0 if i == 0 else box[a].stop < shape[a])
                        for a in range(3) for i in (0, -1))
        if not grow or whole or not on_border:
            return np.argwhere(kept) + start
        pad = pad * 2 + 1


# ---------------------------------------------------------------- public API
def resize_series(labelmap: Volume, nodule: NoduleSelector = "all", percents: Sequence[float] = (100.0,),
                  method: str = "distance", progress: Optional[ProgressFn] = None,
                  cancel: Optional[CancelToken] = None) -> list[ResizeResult]:
    """Resize the selected nodule(s) to each of ``percents`` of the original volume (one map each).

    The masks of one nodule are nested: for ``[100, 90, ..., 50]`` each lies inside the previous one
    (the distance method ranks voxels once). ``percent == 100`` returns the input unchanged.
    See the module docstring for the algorithm and :class:`ResizeResult` for the output.
    """
    report = progress or no_progress
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    percents = [check_percent(p) for p in percents]
    if not percents:
        raise InputError("no target percent given")
    if method == "erosion" and max(percents) > 100:
        raise InputError("method 'erosion' (the reference) only shrinks; use method 'distance' to grow")
    start_time = time.perf_counter()
    labelmap = as_integer_labelmap(labelmap)
    components = nodule_components(labelmap)
    chosen = select_nodules(labelmap, components, nodule)
    spacing_kji = labelmap.spacing[::-1].copy()
    labels = labelmap.array
    outputs = [labels.copy() for _ in percents]
    stats: list[list[NoduleStats]] = [[] for _ in percents]
    for step, cid in enumerate(chosen):
        check_cancel(cancel)
        report(step / len(chosen), f"nodule {cid}: {len(components[cid - 1])} voxels")
        coords = components[cid - 1]
        others = [c for i, c in enumerate(components, start=1) if i != cid]
        if method == "distance":
            new_sets = distance_series(labels, coords, others, percents, spacing_kji)
        elif method == "paper":
            new_sets = [paper_keep(labels, coords, p, spacing_kji) for p in percents]
        else:
            new_sets = [erosion_keep(labels.shape, coords, p) for p in percents]
        for out, per_map, new, percent in zip(outputs, stats, new_sets, percents):
            removed = removed_voxels(labels.shape, coords, new)
            if method != "erosion" and len(removed):
                out[tuple(removed.T)] = nearest_lobe_ids(labels, removed, spacing_kji, np.full(3, BOX_PAD_VOXELS))
            elif len(removed):
                out[tuple(removed.T)] = 0  # refilled below, once per map, as the reference does
            out[tuple(new.T)] = NODULE
            per_map.append(nodule_stats(labelmap, cid, percent, coords, new))
    if method == "erosion":
        for out in outputs:
            refill = (labels == NODULE) & (out != NODULE)
            if refill.any():
                out[refill] = erosion_refill(labels, refill)
    report(1.0, "done")
    seconds = (time.perf_counter() - start_time) / len(percents)
    return [ResizeResult(labelmap.with_array(out), p, method, s, seconds)
            for out, p, s in zip(outputs, percents, stats)]


def resize_nodule(labelmap: Volume, nodule: NoduleSelector = "all", percent: float = 100.0,
                  method: str = "distance", progress: Optional[ProgressFn] = None,
                  cancel: Optional[CancelToken] = None) -> ResizeResult:
    """Resize one nodule (component id or LPS point) or all nodules to ``percent`` of their volume.

    ``percent`` in (0, 300]; ``method`` ``"distance"`` (exact), ``"paper"`` (Algorithm 1's closest mask) or
    ``"erosion"`` (the CaNA reference).
    Returns a new label map (the input is not modified) with per-nodule statistics.
    """
    return resize_series(labelmap, nodule, [percent], method, progress, cancel)[0]


def erosion_keep(shape_kji: tuple[int, ...], coords_kji: np.ndarray, percent: float) -> np.ndarray:
    """Voxels ``(N, 3)`` the reference keeps of one nodule at ``percent`` (whole-grid erosion)."""
    component = np.zeros(shape_kji, dtype=bool)
    component[tuple(coords_kji.T)] = True
    return np.argwhere(erosion_shrink_mask(component, percent))


def removed_voxels(shape_kji: tuple[int, ...], before_kji: np.ndarray, after_kji: np.ndarray) -> np.ndarray:
    """Voxels ``(N, 3)`` of ``before_kji`` that are not in ``after_kji``."""
    before_flat = np.ravel_multi_index(tuple(before_kji.T), shape_kji)
    after_flat = np.ravel_multi_index(tuple(after_kji.T), shape_kji)
    return before_kji[~np.isin(before_flat, after_flat)]
