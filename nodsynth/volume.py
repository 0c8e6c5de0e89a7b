"""The :class:`Volume` type: a voxel array with its physical geometry.

Conventions (the same as ITK / SimpleITK / DICOM):

* ``array`` is indexed ``[k, j, i]`` (slice, row, column);
* ``spacing`` (mm), ``origin`` (mm) and the columns of ``direction`` are given in
  ``i, j, k`` order, in the **LPS** world frame;
* a continuous index ``(i, j, k)`` maps to the world point
  ``origin + direction @ (spacing * (i, j, k))``.

3D Slicer works in **RAS**. :meth:`Volume.from_slicer` and :meth:`Volume.to_slicer`
are the only place where the LPS <-> RAS flip happens.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .errors import GeometryError, InputError, plain
from .io.voxel_data import nonfinite_message

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])
"""Multiplying an RAS vector by this matrix gives LPS (and vice versa)."""

GRID_TOLERANCE_MM = 1e-3
"""Largest difference in spacing/origin (mm) for two grids to count as the same."""


def _as_vec3(values: Sequence[float], name: str) -> np.ndarray:
    vec = np.asarray(values, dtype=np.float64).reshape(-1)
    if vec.shape != (3,) or not np.all(np.isfinite(vec)):
        raise InputError(f"{name} must be three finite numbers, got {plain(values)!r}")
    return vec


@dataclass(eq=False)
class Volume:
    """A 3-D image or label map with LPS geometry. See the module docstring."""

    array: np.ndarray
    spacing: np.ndarray = field(default_factory=lambda: np.ones(3))
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise InputError(f"a Volume needs a 3-D array, got shape {self.array.shape}")
        self.spacing = _as_vec3(self.spacing, "spacing (mm)")
        if np.any(self.spacing <= 0):
            raise InputError(f"spacing must be positive millimetres, got {self.spacing.tolist()}")
        self.origin = _as_vec3(self.origin, "origin (mm)")
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if abs(abs(np.linalg.det(self.direction)) - 1.0) > 1e-3:
            raise InputError("direction must be an orthonormal 3x3 matrix")

    # ----------------------------------------------------------------- basics
    @property
    def shape_kji(self) -> tuple[int, int, int]:
        """Array shape, ``(k, j, i)``."""
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def size_ijk(self) -> tuple[int, int, int]:
        """Number of voxels along ``i, j, k`` (SimpleITK's ``GetSize``)."""
        k, j, i = self.shape_kji
        return i, j, k

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    @property
    def index_to_world_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping ``(i, j, k, 1)`` to LPS millimetres."""
        m = np.eye(4)
        m[:3, :3] = self.direction * self.spacing[None, :]
        m[:3, 3] = self.origin
        return m

    def with_array(self, array: np.ndarray) -> "Volume":
        """A new Volume on the same grid holding ``array`` (same ``[k, j, i]`` shape)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise GeometryError(f"array shape {array.shape} does not match the grid {self.array.shape}")
        return Volume(array, self.spacing.copy(), self.origin.copy(), self.direction.copy())

    def copy(self) -> "Volume":
        return self.with_array(self.array.copy())

    # ------------------------------------------------------------ coordinates
    def index_to_world(self, ijk: Sequence[float] | np.ndarray) -> np.ndarray:
        """Continuous index/indices ``(..., 3)`` in ``i, j, k`` order -> LPS points (mm)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ (self.direction * self.spacing[None, :]).T + self.origin

    def world_to_index(self, points_lps: Sequence[float] | np.ndarray) -> np.ndarray:
        """LPS point(s) ``(..., 3)`` in mm -> continuous index ``(i, j, k)``."""
        pts = np.asarray(points_lps, dtype=np.float64)
        return ((pts - self.origin) @ self.direction) / self.spacing

    def world_to_kji(self, point_lps: Sequence[float]) -> tuple[int, int, int]:
        """Nearest voxel ``(k, j, i)`` of one LPS point; raises if it lies outside the volume."""
        ijk = np.rint(self.world_to_index(_as_vec3(point_lps, "point (mm, LPS)"))).astype(int)
        kji = (int(ijk[2]), int(ijk[1]), int(ijk[0]))
        if not self.contains_kji(kji):
            raise GeometryError(
                f"point {np.round(point_lps, 2).tolist()} mm (LPS) lies outside the volume "
                f"(nearest index i,j,k = {ijk.tolist()}, size {list(self.size_ijk)})")
        return kji

    def contains_kji(self, kji: Sequence[int]) -> bool:
        return all(0 <= int(v) < n for v, n in zip(kji, self.shape_kji))

    def world_bounds_lps(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned LPS bounding box (min, max) of the voxel centres, in mm."""
        corners = np.array([[i, j, k] for i in (0, self.size_ijk[0] - 1)
                            for j in (0, self.size_ijk[1] - 1) for k in (0, self.size_ijk[2] - 1)])
        world = self.index_to_world(corners)
        return world.min(axis=0), world.max(axis=0)

    # ---------------------------------------------------------------- crops
    def crop(self, start_kji: Sequence[int], stop_kji: Sequence[int]) -> "Volume":
        """Sub-volume ``array[k0:k1, j0:j1, i0:i1]`` with its origin moved accordingly.

        ``start``/``stop`` are clipped to the volume; the crop is a view (no copy).
        """
        start = np.clip(np.asarray(start_kji, int), 0, self.shape_kji)
        stop = np.clip(np.asarray(stop_kji, int), 0, self.shape_kji)
        if np.any(stop <= start):
            raise GeometryError(f"empty crop {start.tolist()}..{stop.tolist()} of {list(self.shape_kji)}")
        sl = tuple(slice(a, b) for a, b in zip(start, stop))
        origin = self.index_to_world(start[::-1].astype(float))
        return Volume(self.array[sl], self.spacing.copy(), origin, self.direction.copy())

    # ---------------------------------------------------------------- SimpleITK
    @classmethod
    def from_sitk(cls, image) -> "Volume":
        """From a 3-D ``SimpleITK.Image`` (scalar)."""
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise InputError(f"expected a 3-D image, got {image.GetDimension()}-D")
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError("expected a scalar image, got a multi-component (vector/RGB) image")
        if image.GetPixelID() in (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64):
            raise InputError("expected real-valued voxels, got a complex-valued image")
        return cls(sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(),
                   np.asarray(image.GetDirection()).reshape(3, 3))

    def to_sitk(self):
        """To a ``SimpleITK.Image`` with the same geometry."""
        import SimpleITK as sitk

        array = self.array
        if array.dtype == np.bool_:
            array = array.astype(np.uint8)
        image = sitk.GetImageFromArray(np.ascontiguousarray(array))
        image.SetSpacing(tuple(float(v) for v in self.spacing))
        image.SetOrigin(tuple(float(v) for v in self.origin))
        image.SetDirection(tuple(float(v) for v in self.direction.reshape(-1)))
        return image

    # ------------------------------------------------------------------ Slicer
    @classmethod
    def from_slicer(cls, array_kji: np.ndarray, ijk_to_ras: np.ndarray) -> "Volume":
        """From ``slicer.util.arrayFromVolume(node)`` and the node's IJK->RAS 4x4 matrix."""
        m = np.asarray(ijk_to_ras, dtype=np.float64).reshape(4, 4)
        lin_lps = LPS_FROM_RAS @ m[:3, :3]
        spacing = np.linalg.norm(lin_lps, axis=0)
        if np.any(spacing <= 0):
            raise InputError("the IJK->RAS matrix has a zero-length axis")
        volume = cls(np.asarray(array_kji), spacing, LPS_FROM_RAS @ m[:3, 3], lin_lps / spacing[None, :])
        require_finite(volume, "the Slicer volume")
        return volume

    def to_slicer(self) -> tuple[np.ndarray, np.ndarray]:
        """``(array_kji, ijk_to_ras_4x4)`` for ``slicer.util.addVolumeFromArray`` / ``updateVolumeFromArray``."""
        m = np.eye(4)
        m[:3, :3] = LPS_FROM_RAS @ (self.direction * self.spacing[None, :])
        m[:3, 3] = LPS_FROM_RAS @ self.origin
        return self.array, m


def nonzero_extent_kji(mask: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``(start_kji, stop_kji)`` of the bounding box of a mask's non-zero voxels (``None`` when there is
    none), from one projection per axis rather than a list of every voxel."""
    inside = np.asarray(mask) != 0
    start, stop = [], []
    for axis in range(inside.ndim):
        hits = np.flatnonzero(inside.any(axis=tuple(a for a in range(inside.ndim) if a != axis)))
        if not hits.size:
            return None
        start.append(int(hits[0]))
        stop.append(int(hits[-1]) + 1)
    return np.array(start), np.array(stop)


def subgrid_start_kji(box: Volume, grid: Volume, tolerance_mm: float = GRID_TOLERANCE_MM) -> np.ndarray:
    """Where ``box`` starts in ``grid`` (voxel index ``[k, j, i]``) when it is a block of the same voxel
    grid (a crop); :class:`GeometryError` otherwise."""
    start_ijk = grid.world_to_index(box.origin)
    whole = np.rint(start_ijk)
    aligned = (np.allclose(box.spacing, grid.spacing, atol=tolerance_mm)
               and np.allclose(box.direction, grid.direction, atol=1e-5)
               and np.all(np.abs(start_ijk - whole) * grid.spacing <= tolerance_mm))
    start = whole[::-1].astype(int)
    inside = np.all(start >= 0) and np.all(start + np.array(box.shape_kji) <= np.array(grid.shape_kji))
    if not (aligned and inside):
        raise GeometryError(f"a block of size {list(box.size_ijk)} at {np.round(box.origin, 3).tolist()} mm is not a "
                            f"crop of the {list(grid.size_ijk)} grid at {np.round(grid.origin, 3).tolist()} mm")
    return start


def ras_to_lps(point: Sequence[float]) -> np.ndarray:
    """Flip a point (or points ``(..., 3)``) between RAS and LPS (the map is its own inverse)."""
    return np.asarray(point, dtype=np.float64) * np.array([-1.0, -1.0, 1.0])


lps_to_ras = ras_to_lps


def same_grid(a: Volume, b: Volume, tolerance_mm: float = GRID_TOLERANCE_MM) -> bool:
    """True when both volumes have the same shape, spacing, origin and direction."""
    return (a.shape_kji == b.shape_kji
            and np.allclose(a.spacing, b.spacing, atol=tolerance_mm)
            and np.allclose(a.origin, b.origin, atol=tolerance_mm)
            and np.allclose(a.direction, b.direction, atol=1e-5))


def require_same_grid(a: Volume, b: Volume, a_name: str = "first volume",
                      b_name: str = "second volume") -> None:
    """Raise :class:`GeometryError` naming what differs when ``a`` and ``b`` are on different grids."""
    if same_grid(a, b):
        return
    diffs = []
    if a.shape_kji != b.shape_kji:
        diffs.append(f"size i,j,k {list(a.size_ijk)} vs {list(b.size_ijk)}")
    if not np.allclose(a.spacing, b.spacing, atol=GRID_TOLERANCE_MM):
        diffs.append(f"spacing {np.round(a.spacing, 4).tolist()} vs {np.round(b.spacing, 4).tolist()} mm")
    if not np.allclose(a.origin, b.origin, atol=GRID_TOLERANCE_MM):
        diffs.append(f"origin {np.round(a.origin, 3).tolist()} vs {np.round(b.origin, 3).tolist()} mm")
    if not np.allclose(a.direction, b.direction, atol=1e-5):
        diffs.append("direction matrices differ")
    raise GeometryError(f"{a_name} and {b_name} are not on the same voxel grid: " + "; ".join(diffs))


def require_finite(volume: Volume, name: str) -> None:
    """Raise :class:`InputError` naming how many voxels are NaN / infinite and where (i,j,k index box)."""
    if volume.array.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(volume.array)
    extent = nonzero_extent_kji(bad)
    if extent is not None:
        start, stop = extent
        raise InputError(nonfinite_message(name, int(bad.sum()), start[::-1].tolist(), (stop - 1)[::-1].tolist()))


