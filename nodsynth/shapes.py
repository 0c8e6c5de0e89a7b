"""Nodule shapes: a library built from real nodule masks, procedural shapes, and placement on a CT grid.

A **shape** is a soft occupancy grid (``SHAPE_SIZE``\\ :sup:`3` values in 0..1, stored as uint8
0..255) sampled on world-aligned (L, P, S) axes over the cube ``[-1, 1]^3``, centred on the
nodule's centroid and scaled so that its **bounding sphere** (the largest distance of the nodule
from its centroid) is the unit sphere. A nodule's **diameter** is its equivalent-sphere diameter
(:func:`nodsynth.sphere.sphere_diameter_mm` of its volume), everywhere in nodsynth: placing a shape at
``diameter_mm`` gives a mask of that equivalent diameter (to the voxel), and
:func:`bounding_diameter_mm` says how wide its bounding sphere then is; a nodule placed at a centroid
from :mod:`nodsynth.place` for that bounding diameter lies wholly inside the region checked there.

A **library** is a compressed ``.npz`` (``shapes``: ``(N, S, S, S)`` uint8) with a JSON index
beside it (same name, ``.json``) listing each shape's source and physical measurements:
``volume_mm3``, ``equivalent_diameter_mm`` (diameter of the sphere of the same volume),
``bounding_diameter_mm`` (twice the largest centroid distance), ``principal_extents_mm``
(4 standard deviations along each principal axis) and ``elongation`` (largest/smallest
principal standard deviation).

Procedural shapes (:func:`procedural_shape`) need no data: a radial function with lobes and
spicules, stretched along one axis, so a fresh install can insert nodules without a library.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
from scipy import ndimage

from .io.atomic import atomic_path, write_text_atomic
from .errors import InputError
from .progress import CancelToken, ProgressFn, check_cancel, no_progress
from .sphere import sphere_diameter_mm
from .volume import Volume
from .io.volume_files import read_volume

SHAPE_SIZE = 32
"""Voxels per side of a stored shape grid."""

INSIDE_LEVEL = 0.5
"""Occupancy above which a resampled voxel belongs to the nodule."""


def _unit_grid(size: int) -> np.ndarray:
    """Coordinates ``(size, size, size, 3)`` in [-1, 1] along (L, P, S) = array axes (0, 1, 2)."""
    axis = np.linspace(-1.0, 1.0, size)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)


def shape_measurements(mask: Volume) -> dict:
    """Physical measurements (mm) of a binary nodule mask; see the module docstring."""
    kji = np.argwhere(np.asarray(mask.array) > 0)
    if len(kji) == 0:
        raise InputError("the nodule mask is empty")
    points = mask.index_to_world(kji[:, ::-1].astype(np.float64))
    centroid = points.mean(axis=0)
    volume_mm3 = len(points) * mask.voxel_volume_mm3
    half_voxel_mm = 0.5 * float(np.linalg.norm(mask.spacing))
    bounding_radius_mm = float(np.linalg.norm(points - centroid, axis=1).max()) + half_voxel_mm
    std_mm = np.sqrt(np.maximum(np.linalg.eigvalsh(np.cov((points - centroid).T) if len(points) > 1
                                                  else np.zeros((3, 3))), 0.0))[::-1]
    std_mm = np.maximum(std_mm, mask.spacing.min() / np.sqrt(12.0))  # a one-voxel-thick slab still has extent
    return {
        "centroid_lps_mm": [round(float(v), 3) for v in centroid],
        "voxels": int(len(points)),
        "volume_mm3": round(float(volume_mm3), 3),
        "equivalent_diameter_mm": round(sphere_diameter_mm(volume_mm3), 3),
        "bounding_diameter_mm": round(2.0 * bounding_radius_mm, 3),
        "principal_extents_mm": [round(float(4.0 * s), 3) for s in std_mm],
        "elongation": round(float(std_mm[0] / std_mm[-1]), 3),
    }


def shape_from_mask(mask: Volume, size: int = SHAPE_SIZE) -> tuple[np.ndarray, dict]:
    """``(occupancy uint8 (size,)*3, measurements)`` of a nodule mask, centred and scaled to its bounding sphere."""
    measures = shape_measurements(mask)
    centroid = np.asarray(measures["centroid_lps_mm"])
    radius_mm = 0.5 * measures["bounding_diameter_mm"]
    world = centroid + radius_mm * _unit_grid(size).reshape(-1, 3)
    ijk = mask.world_to_index(world)
    occupancy = ndimage.map_coordinates((np.asarray(mask.array) > 0).astype(np.float32), ijk[:, ::-1].T,
                                        order=1, mode="constant", cval=0.0)
    grid = np.clip(np.rint(occupancy.reshape((size,) * 3) * 255.0), 0, 255).astype(np.uint8)
    if not (grid > INSIDE_LEVEL * 255).any():  # a nodule smaller than the grid spacing: keep its centre
        grid[(size // 2,) * 3] = 255
    return grid, measures


def procedural_shape(elongation: float = 1.0, lobulation: float = 0.0, spiculation: float = 0.0,
                     seed: Optional[int] = 0, size: int = SHAPE_SIZE) -> np.ndarray:
    """A synthetic nodule occupancy grid (uint8, ``(size,)*3``) in the unit bounding sphere.

    ``elongation`` >= 1 stretches along a random axis (length/width ratio); ``lobulation`` and
    ``spiculation`` in 0..1 add broad lobes and narrow spikes to a sphere's radius.
    """
    if not np.isfinite(elongation) or elongation < 1.0:
        raise InputError(f"elongation must be >= 1 (length/width), got {elongation}")
    for name, value in (("lobulation", lobulation), ("spiculation", spiculation)):
        if not np.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InputError(f"{name} must be between 0 and 1, got {value}")
    rng = np.random.default_rng(seed)
    lobe_dirs = _random_directions(rng, 6)
    spike_dirs = _random_directions(rng, 14)
    long_axis = _random_directions(rng, 1)[0]
    spike_amp = rng.uniform(0.5, 1.0, len(spike_dirs))
    points = _unit_grid(size).reshape(-1, 3)
    along = points @ long_axis
    # undo the stretch: the elongated shape is the base shape squeezed across long_axis
    base = (points - np.outer(along, long_axis)) * elongation + np.outer(along, long_axis)
    rho = np.linalg.norm(base, axis=1)
    dirs = base / np.maximum(rho, 1e-9)[:, None]
    radius = _radial_function(dirs, lobe_dirs, spike_dirs, spike_amp, lobulation, spiculation)
    fine = _random_directions(np.random.default_rng(0), 4000)
    radius_max = _radial_function(fine, lobe_dirs, spike_dirs, spike_amp, lobulation, spiculation).max()
    signed_vox = (radius / radius_max - rho) * 0.5 * (size - 1)
    occupancy = np.clip(0.5 + signed_vox, 0.0, 1.0)
    return np.rint(occupancy.reshape((size,) * 3) * 255.0).astype(np.uint8)


def _random_directions(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.normal(size=(count, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _radial_function(dirs: np.ndarray, lobe_dirs: np.ndarray, spike_dirs: np.ndarray,
                     spike_amp: np.ndarray, lobulation: float, spiculation: float) -> np.ndarray:
    """Relative radius along unit directions: 1 + broad lobes + narrow spikes."""
    lobes = np.exp(-(1.0 - dirs @ lobe_dirs.T) / 0.25).sum(axis=1)
    spikes = (np.exp(-(1.0 - dirs @ spike_dirs.T) / 0.004) * spike_amp).sum(axis=1)
    return 1.0 + 0.45 * lobulation * lobes + 0.6 * spiculation * spikes


PLACE_ITERATIONS = 4
"""Re-scalings of a placed shape towards the asked volume (the voxel grid makes it discrete)."""


def bounding_diameter_mm(shape: np.ndarray, diameter_mm: float) -> float:
    """Bounding-sphere diameter (mm) of ``shape`` when its equivalent-sphere diameter is ``diameter_mm``.

    From the shape's occupied fraction of its grid cube: volume = fraction * (bounding diameter)³.
    """
    if not np.isfinite(diameter_mm) or diameter_mm <= 0:
        raise InputError(f"nodule diameter must be a positive number of millimetres, got {diameter_mm}")
    fraction = float(np.mean(np.asarray(shape, dtype=np.float64) / 255.0))
    if fraction <= 0:
        raise InputError("the nodule shape is empty")
    return float(diameter_mm) * (np.pi / (6.0 * fraction)) ** (1.0 / 3.0)


def place_shape(shape: np.ndarray, ct: Volume, centroid_lps: Sequence[float], diameter_mm: float,
                rotation: Optional[np.ndarray] = None) -> Volume:
    """Binary nodule mask (uint8 0/1 on ``ct``'s grid) of ``shape`` at ``centroid_lps`` whose equivalent-sphere
    diameter is ``diameter_mm`` (as near as ``ct``'s voxels allow).

    ``rotation`` (3x3, LPS) turns the shape about its centroid. Raises when nothing of the nodule
    falls inside the CT.
    """
    bounding_mm = bounding_diameter_mm(shape, diameter_mm)
    target_mm3 = np.pi / 6.0 * float(diameter_mm) ** 3
    best, best_error = None, np.inf
    for _ in range(PLACE_ITERATIONS):
        box, box_mask = _place_at_bounding_diameter(shape, ct, centroid_lps, bounding_mm, rotation)
        volume_mm3 = int(box_mask.sum()) * ct.voxel_volume_mm3
        if abs(volume_mm3 - target_mm3) < best_error:
            best, best_error = (box, box_mask), abs(volume_mm3 - target_mm3)
        if volume_mm3 == target_mm3:
            break
        bounding_mm *= (target_mm3 / volume_mm3) ** (1.0 / 3.0) if volume_mm3 else 1.5
    if not best[1].any():
        centroid = np.asarray(centroid_lps, dtype=np.float64).reshape(3)
        raise InputError(f"the {diameter_mm:g} mm nodule at {np.round(centroid, 1).tolist()} mm (LPS) "
                         "covers no CT voxel (too small for the voxel size, or outside the CT)")
    mask = np.zeros(ct.shape_kji, dtype=np.uint8)  # one CT-sized array, not one per try
    mask[best[0]] = best[1]
    return ct.with_array(mask)


def _place_at_bounding_diameter(shape: np.ndarray, ct: Volume, centroid_lps: Sequence[float], bounding_mm: float,
                                rotation: Optional[np.ndarray]) -> tuple[tuple[slice, ...], np.ndarray]:
    """``(box, mask)``: the box (slices of ``ct``'s array) around ``shape`` with its bounding sphere
    ``bounding_mm`` wide, and the shape's 0/1 mask in that box."""
    grid = np.asarray(shape, dtype=np.float32) / 255.0
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise InputError(f"a shape must be a cubic 3-D grid, got shape {grid.shape}")
    centroid = np.asarray(centroid_lps, dtype=np.float64).reshape(3)
    rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    radius_mm = 0.5 * float(bounding_mm)
    centre_ijk = ct.world_to_index(centroid)
    half_ijk = np.ceil(radius_mm / ct.spacing) + 1
    start_kji = np.floor(centre_ijk - half_ijk).astype(int)[::-1]
    stop_kji = np.ceil(centre_ijk + half_ijk).astype(int)[::-1] + 1
    start_kji = np.clip(start_kji, 0, ct.shape_kji)
    stop_kji = np.clip(stop_kji, 0, ct.shape_kji)
    if np.any(stop_kji <= start_kji):
        raise InputError(f"a nodule {bounding_mm:.1f} mm wide at {np.round(centroid, 1).tolist()} mm (LPS) "
                         "lies outside the CT")
    box = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(start_kji, stop_kji)], indexing="ij"), axis=-1)
    world = ct.index_to_world(box.reshape(-1, 3)[:, ::-1].astype(np.float64))
    unit = ((world - centroid) @ rot) / radius_mm  # shape-local coordinates in [-1, 1]
    index = (unit + 1.0) * 0.5 * (grid.shape[0] - 1)
    occupancy = ndimage.map_coordinates(grid, index.T, order=1, mode="constant", cval=0.0)
    return (tuple(slice(a, b) for a, b in zip(start_kji, stop_kji)),
            (occupancy.reshape(box.shape[:3]) > INSIDE_LEVEL).astype(np.uint8))


def random_rotation(seed: Optional[int]) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix (deterministic per seed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))[None, :]
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@dataclass
class ShapeLibrary:
    """Shapes (``(N, S, S, S)`` uint8 occupancy) with one measurement record per shape."""

    shapes: np.ndarray
    entries: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.shapes.shape[0])

    def pick(self, seed: Optional[int] = 0) -> tuple[np.ndarray, dict]:
        """A random ``(shape, entry)``, deterministic per seed."""
        if len(self) == 0:
            raise InputError("the shape library is empty")
        index = int(np.random.default_rng(seed).integers(len(self)))
        return self.shapes[index], self.entries[index]

    def save(self, path: str | os.PathLike, **index_fields) -> Path:
        """Write ``path`` (.npz) and its JSON index ``path.with_suffix('.json')`` (with ``index_fields``, e.g. a
        licence) atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            raise InputError(f"a shape library file must end in .npz, got {path.name}")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, shapes=self.shapes)
        index = {"format": "nodsynth-shapes-1", "shape_size": int(self.shapes.shape[1]),
                 "convention": "unit bounding sphere, world-aligned LPS axes, occupancy 0..255",
                 **index_fields, "shapes": self.entries}
        write_text_atomic(path.with_suffix(".json"), json.dumps(index, indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ShapeLibrary":
        path = Path(path)
        index_path = path.with_suffix(".json")
        if not path.is_file() or not index_path.is_file():
            raise InputError(f"shape library not found: need {path} and {index_path}")
        with np.load(path) as data:
            shapes = data["shapes"]
        entries = json.loads(index_path.read_text(encoding="utf-8"))["shapes"]
        if shapes.ndim != 4 or len(entries) != shapes.shape[0]:
            raise InputError(f"{path}: {shapes.shape[0] if shapes.ndim else 0} shapes but {len(entries)} index entries")
        return cls(shapes, entries)


def build_library(mask_paths: Iterable[str | os.PathLike], size: int = SHAPE_SIZE,
                  progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> ShapeLibrary:
    """A :class:`ShapeLibrary` with one shape per readable, non-empty nodule mask file."""
    report = progress or no_progress
    paths = [Path(p) for p in mask_paths]
    if not paths:
        raise InputError("no nodule mask files given")
    shapes, entries = [], []
    for number, path in enumerate(paths):
        check_cancel(cancel)
        mask = read_volume(path)
        if not (np.asarray(mask.array) > 0).any():
            continue
        grid, measures = shape_from_mask(mask, size)
        shapes.append(grid)
        entries.append({"source": path.name, **measures})
        report((number + 1) / len(paths), path.name)
    if not shapes:
        raise InputError("every nodule mask given was empty")
    return ShapeLibrary(np.stack(shapes), entries)
