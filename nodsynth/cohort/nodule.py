"""One planned nodule's mask, rebuilt identically by the planner and by the job that inserts it.

A nodule is its shape source, its seed, its equivalent-sphere diameter (mm) and its centre (LPS mm). The mask
is rasterised on a crop of the CT's grid around the centre (a few hundred thousand voxels at most, so the
planner can try many places), and pasted back at ``start_kji``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..shapes import ShapeLibrary, bounding_diameter_mm, place_shape, procedural_shape, random_rotation
from ..volume import Volume

PROCEDURAL = "procedural"
"""``shape_source`` ``procedural:<k>``: procedural shape ``k`` (its elongation, lobulation and spiculation drawn
from ``k``), one of :data:`PROCEDURAL_SHAPES`; each nodule turns it by its own seed's rotation."""
PROCEDURAL_SHAPES = 64

MAX_ELONGATION = 1.6
MAX_LOBULATION = 0.6
MAX_SPICULATION = 0.3


def procedural_parameters(seed: int) -> tuple[float, float, float]:
    """``(elongation, lobulation, spiculation)`` of the procedural shape of ``seed``."""
    u = np.random.default_rng([seed, 1]).uniform(size=3)
    return (1.0 + (MAX_ELONGATION - 1.0) * float(u[0]), MAX_LOBULATION * float(u[1]), MAX_SPICULATION * float(u[2]))


@functools.lru_cache(maxsize=PROCEDURAL_SHAPES)
def numbered_procedural_shape(number: int) -> np.ndarray:
    """Procedural shape ``number`` (computed once per process)."""
    return procedural_shape(*procedural_parameters(number), seed=number)


def nodule_shape(shape_source: str, library: ShapeLibrary | None = None) -> np.ndarray:
    """The occupancy grid of ``shape_source``: ``procedural:<k>`` or ``library:<index>`` (of ``library``)."""
    kind, _, index = shape_source.partition(":")
    if kind not in (PROCEDURAL, "library") or not index.isdigit():
        raise InputError(f"unknown shape source {shape_source!r}; use '{PROCEDURAL}:<k>' or 'library:<index>'")
    if kind == PROCEDURAL:
        if int(index) >= PROCEDURAL_SHAPES:
            raise InputError(f"shape source {shape_source!r}: there are {PROCEDURAL_SHAPES} procedural shapes")
        return numbered_procedural_shape(int(index))
    if library is None or int(index) >= len(library):
        raise InputError(f"shape source {shape_source!r} needs a shape library with more than {index} shapes")
    return library.shapes[int(index)]


@dataclass(frozen=True)
class LocalMask:
    """A nodule mask on a crop of a grid: ``array`` (bool) starts at ``start_kji`` of the full grid."""

    start_kji: np.ndarray
    array: np.ndarray

    def slices(self) -> tuple[slice, ...]:
        return tuple(slice(int(a), int(a) + n) for a, n in zip(self.start_kji, self.array.shape))

    def voxels_kji(self) -> np.ndarray:
        """``(n, 3)`` indices (k, j, i) of the mask's voxels on the full grid."""
        return np.argwhere(self.array) + self.start_kji


def local_mask(shape: np.ndarray, grid: Volume, centre_lps: Sequence[float], diameter_mm: float,
               seed: int) -> LocalMask:
    """The mask of ``shape`` at ``centre_lps`` with equivalent-sphere diameter ``diameter_mm``, turned by the
    seed's rotation (:func:`nodsynth.shapes.place_shape` on a crop of ``grid`` twice the bounding sphere wide)."""
    half_ijk = np.ceil(bounding_diameter_mm(shape, diameter_mm) / grid.spacing) + 3
    centre_ijk = grid.world_to_index(np.asarray(centre_lps, dtype=np.float64))
    start = np.clip(np.floor(centre_ijk - half_ijk).astype(int), 0, grid.size_ijk)[::-1]
    stop = np.clip(np.ceil(centre_ijk + half_ijk).astype(int) + 1, 0, grid.size_ijk)[::-1]
    if np.any(stop <= start):
        raise InputError(f"the nodule at {np.round(centre_lps, 1).tolist()} mm (LPS) lies outside the grid")
    crop = grid.crop(start, stop)
    mask = place_shape(shape, crop, centre_lps, diameter_mm, rotation=random_rotation(seed))
    return LocalMask(start, np.asarray(mask.array).astype(bool))
