"""Nodule measurements: size, diameters, position, intensity, subtype, lobe and pleural distance.

All lengths are physical millimetres computed in the LPS world frame (anisotropic spacing and
oblique directions included); centroids are given in LPS and RAS.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from .errors import InputError
from .histogram import BIN_CENTERS_HU, HIST_BINS, hu_histogram, validate_histogram
from .labels import LOBE_IDS, LOBES, LUNG, NODULE
from .sphere import sphere_diameter_mm
from .volume import Volume, lps_to_ras, require_finite, require_same_grid

SOLID_HU = -300.0
"""Voxels at or above this are the solid component; ground glass lies about -750..-300 HU."""

GROUND_GLASS_MAX_SOLID_FRACTION = 0.10
PART_SOLID_MAX_SOLID_FRACTION = 0.30
"""Solid-fraction cut-offs of :func:`estimate_subtype`, read off the LIDC reader masks: median
solid fraction 0.00 for Non-Solid/GGO, 0.22 for Part Solid/Mixed, 0.56 for Solid (even half of
``lidc_vois``)."""

LOBE_SEARCH_MM = (0.0, 2.0, 5.0, 10.0)
"""Shells (mm) around the nodule searched for lobe labels (a MAISI nodule is label 23, not a lobe)."""

PLEURA_SEARCH_MM = 20.0
"""First margin (mm) around the nodule searched for non-lung voxels; doubled until one is found."""


@dataclass
class NoduleMeasurements:
    """Measurements of one nodule; :meth:`to_dict` is JSON-able with units in the key names."""

    voxel_count: int
    volume_mm3: float
    equivalent_diameter_mm: float
    longest_diameter_mm: float
    axial_long_axis_mm: float
    axial_short_axis_mm: float
    centroid_lps_mm: tuple[float, float, float]
    centroid_ras_mm: tuple[float, float, float]
    mean_hu: float
    std_hu: float
    histogram: list[float]
    solid_fraction: float
    subtype: str
    lobe_id: Optional[int] = None
    lobe_name: Optional[str] = None
    pleural_distance_mm: Optional[float] = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["centroid_lps_mm"] = [float(v) for v in self.centroid_lps_mm]
        out["centroid_ras_mm"] = [float(v) for v in self.centroid_ras_mm]
        out["histogram"] = [float(v) for v in self.histogram]
        return out


# --------------------------------------------------------------------------- subtype
def solid_fraction(histogram_or_values: Sequence[float] | np.ndarray) -> float:
    """Fraction of the nodule at or above -300 HU, from HU values or a 40-bin HR-LDM histogram.

    An array of exactly 40 non-negative numbers summing to 1 (within 1e-3, so histograms
    rounded for storage still count) is read as a histogram (:mod:`nodsynth.histogram`);
    anything else as HU values.
    """
    data = np.asarray(histogram_or_values, dtype=np.float64).reshape(-1)
    if data.size == 0:
        raise InputError("cannot estimate a subtype from nothing (no HU values, empty histogram)")
    if data.size == HIST_BINS and np.all(data >= 0) and abs(data.sum() - 1.0) < 1e-3:
        hist = validate_histogram(data)
        return float(hist[BIN_CENTERS_HU >= SOLID_HU].sum())
    return float(np.mean(data >= SOLID_HU))


def estimate_subtype(histogram_or_values: Sequence[float] | np.ndarray) -> str:
    """``"solid"``, ``"part-solid"`` or ``"ground-glass"`` from the nodule's HU distribution.

    Takes HU values or a 40-bin histogram (see :func:`solid_fraction`): solid fraction below
    0.10 is ground glass, below 0.30 part-solid, else solid.
    """
    fraction = solid_fraction(histogram_or_values)
    if fraction < GROUND_GLASS_MAX_SOLID_FRACTION:
        return "ground-glass"
    if fraction < PART_SOLID_MAX_SOLID_FRACTION:
        return "part-solid"
    return "solid"


# --------------------------------------------------------------------------- geometry
def surface_voxels_kji(mask: np.ndarray) -> np.ndarray:
    """``(n, 3)`` indices ``k, j, i`` of mask voxels with a face neighbour outside the mask."""
    padded = np.pad(mask, 1)
    inner = ndimage.binary_erosion(padded, structure=ndimage.generate_binary_structure(3, 1))
    return np.argwhere(padded & ~inner) - 1


def _world_points(volume: Volume, kji: np.ndarray) -> np.ndarray:
    return volume.index_to_world(kji[:, ::-1].astype(np.float64))


def voxel_extent_mm(direction: np.ndarray, volume: Volume) -> float:
    """Length (mm) of one voxel along a world direction: ``sum_a |u . axis_a| * spacing_a``.

    Added to a distance between voxel centres it gives the distance between the voxels'
    outer faces (a voxelised object's extent, unbiased for any position of the grid).
    """
    norm = float(np.linalg.norm(direction))
    if norm == 0:
        return float(volume.spacing.min())
    return float(np.sum(np.abs((direction / norm) @ volume.direction) * volume.spacing))


def longest_diameter_mm(volume: Volume, kji: np.ndarray) -> float:
    """Longest extent (mm) of the voxels ``kji`` (surface voxels suffice), face to face."""
    points = _world_points(volume, kji)
    if len(points) > 64:
        try:
            points = points[ConvexHull(points).vertices]
        except QhullError:  # flat or degenerate point sets: fall back to all points
            pass
    if len(points) < 2:
        return float(volume.spacing.min())
    diff = points[:, None, :] - points[None, :, :]
    dist = np.sqrt((diff ** 2).sum(axis=-1))
    a, b = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(dist[a, b]) + voxel_extent_mm(points[b] - points[a], volume)


def _caliper_axes_mm(points_2d: np.ndarray, spacing_ij: np.ndarray) -> tuple[float, float]:
    """(long, short) axis of in-slice voxel centres (mm along the slice's i, j axes), face to face.

    Long: the longest chord; short: the width perpendicular to it. Each gets one voxel's
    extent along its direction (see :func:`voxel_extent_mm`).
    """
    if len(points_2d) < 2:
        return float(spacing_ij.max()), float(spacing_ij.min())
    diff = points_2d[:, None, :] - points_2d[None, :, :]
    dist = np.sqrt((diff ** 2).sum(axis=-1))
    a, b = np.unravel_index(int(np.argmax(dist)), dist.shape)
    long_axis = float(dist[a, b])
    direction = (points_2d[b] - points_2d[a]) / long_axis
    normal = np.array([-direction[1], direction[0]])
    across = points_2d @ normal
    return (long_axis + float(np.abs(direction) @ spacing_ij),
            float(across.max() - across.min()) + float(np.abs(normal) @ spacing_ij))


def axial_axes_mm(volume: Volume, mask: np.ndarray) -> tuple[float, float]:
    """(long, short) axis (mm) on the axial slice (constant k) where the long axis is largest."""
    best = (0.0, 0.0)
    for k in np.nonzero(mask.any(axis=(1, 2)))[0]:
        ji = surface_voxels_kji(mask[k][None])[:, 1:]
        kji = np.column_stack([np.full(len(ji), k), ji])
        world = _world_points(volume, kji)
        # in-plane coordinates along the slice's i and j directions (mm)
        plane = np.column_stack([world @ volume.direction[:, 0], world @ volume.direction[:, 1]])
        axes = _caliper_axes_mm(plane, volume.spacing[:2])
        if axes[0] > best[0]:
            best = axes
    return best


# --------------------------------------------------------------------------- anatomy
def _lobe_of(labelmap: np.ndarray, nodule: np.ndarray, spacing_kji) -> Optional[int]:
    for shell_mm in LOBE_SEARCH_MM:
        region = nodule if shell_mm == 0 else (
            ndimage.distance_transform_edt(~nodule, sampling=spacing_kji) <= shell_mm)
        values = labelmap[region]
        lobes = values[np.isin(values, LOBE_IDS)]
        if lobes.size:
            ids, counts = np.unique(lobes, return_counts=True)
            return int(ids[np.argmax(counts)])
    return None


def pleural_distance_mm(lung: np.ndarray, nodule: np.ndarray, spacing_kji) -> Optional[float]:
    """Gap (mm) between the nodule surface and the nearest non-lung voxel; 0 when they touch.

    ``lung`` counts the nodule as lung. Voxel centres are ``d`` apart along a unit direction
    ``u``; the gap between the two voxels' faces is ``d - sum(|u_a| * spacing_a)``. Returns None
    when the whole volume is lung.
    """
    spacing = np.asarray(spacing_kji, dtype=np.float64)
    lung = lung | nodule
    if lung.all():
        return None
    nz = np.nonzero(nodule)
    margin_mm = PLEURA_SEARCH_MM
    while True:
        pad = np.ceil(margin_mm / spacing).astype(int)
        box = tuple(slice(max(int(v.min()) - p, 0), min(int(v.max()) + p + 1, n))
                    for v, p, n in zip(nz, pad, lung.shape))
        sub_lung, sub_nodule = lung[box], nodule[box]
        whole = all(b.start == 0 and b.stop == n for b, n in zip(box, lung.shape))
        if not sub_lung.all() or whole:
            break
        margin_mm *= 2
    dist, nearest = ndimage.distance_transform_edt(sub_lung, sampling=spacing, return_indices=True)
    cells = np.argwhere(sub_nodule)
    d = dist[sub_nodule]
    best = int(np.argmin(d))
    delta_mm = (nearest[:, sub_nodule][:, best] - cells[best]) * spacing
    length = float(np.linalg.norm(delta_mm))
    if length == 0:
        return 0.0
    half_sizes = float(np.sum(np.abs(delta_mm / length) * spacing))
    return max(0.0, length - half_sizes)


def _lung_from_labelmap(labelmap: np.ndarray) -> np.ndarray:
    return np.isin(np.rint(labelmap).astype(np.int64), (*LOBE_IDS, LUNG, NODULE))


# --------------------------------------------------------------------------- public
def measure_nodule(ct: Volume, mask: Volume, labelmap: Optional[Volume] = None,
                   lung_mask: Optional[Volume] = None) -> NoduleMeasurements:
    """Measure the nodule given by the non-zero voxels of ``mask`` on ``ct`` (HU).

    With a MAISI ``labelmap`` (lobes 28-32) the lobe and pleural distance are added; with a
    0/1 ``lung_mask`` only the pleural distance. All volumes must share the CT's grid.
    """
    require_same_grid(ct, mask, "CT", "nodule mask")
    require_finite(ct, "the CT")
    nodule = np.asarray(mask.array) > 0
    if not nodule.any():
        raise InputError("the nodule mask is empty: nothing to measure")
    spacing_kji = ct.spacing[::-1]
    hu = np.asarray(ct.array, dtype=np.float64)[nodule]
    count = int(nodule.sum())
    volume_mm3 = count * ct.voxel_volume_mm3
    centroid_lps = ct.index_to_world(np.argwhere(nodule).mean(axis=0)[::-1])
    long_axis, short_axis = axial_axes_mm(ct, nodule)
    histogram = hu_histogram(hu)

    lobe_id = lobe_name = pleural = None
    if labelmap is not None:
        require_same_grid(ct, labelmap, "CT", "label map")
        labels = np.rint(np.asarray(labelmap.array)).astype(np.int64)
        lobe_id = _lobe_of(labels, nodule, spacing_kji)
        lobe_name = LOBES.get(lobe_id) if lobe_id is not None else None
        pleural = pleural_distance_mm(_lung_from_labelmap(labels), nodule, spacing_kji)
    if lung_mask is not None:
        require_same_grid(ct, lung_mask, "CT", "lung mask")
        pleural = pleural_distance_mm(np.asarray(lung_mask.array) > 0, nodule, spacing_kji)

    return NoduleMeasurements(
        voxel_count=count, volume_mm3=float(volume_mm3),
        equivalent_diameter_mm=sphere_diameter_mm(volume_mm3),
        longest_diameter_mm=longest_diameter_mm(ct, surface_voxels_kji(nodule)),
        axial_long_axis_mm=long_axis, axial_short_axis_mm=short_axis,
        centroid_lps_mm=tuple(float(v) for v in centroid_lps),
        centroid_ras_mm=tuple(float(v) for v in lps_to_ras(centroid_lps)),
        mean_hu=float(hu.mean()), std_hu=float(hu.std()), histogram=[float(v) for v in histogram],
        solid_fraction=solid_fraction(histogram), subtype=estimate_subtype(histogram),
        lobe_id=lobe_id, lobe_name=lobe_name, pleural_distance_mm=pleural)


def split_nodules(mask: Volume) -> list[Volume]:
    """One 0/1 mask per nodule: each distinct label > 0, or each 26-connected component of a 0/1 mask."""
    values = np.rint(np.asarray(mask.array)).astype(np.int64)
    ids = [int(v) for v in np.unique(values) if v > 0]
    if len(ids) > 1:
        return [mask.with_array((values == v).astype(np.uint8)) for v in ids]
    labels, count = ndimage.label(values > 0, structure=np.ones((3, 3, 3)))
    return [mask.with_array((labels == n).astype(np.uint8)) for n in range(1, count + 1)]
