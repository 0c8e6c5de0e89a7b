"""Closed-form anatomy of the demo chest, rasterised on an axis-aligned LPS grid.

The chest is centred on the world origin: ``x`` (mm) grows to the patient's Left, ``y`` to
Posterior, ``z`` to Superior. Each organ is a region given by a formula in millimetres;
:class:`ChestGrid` holds the voxel-centre coordinates as broadcastable axis arrays so every
region costs a few vectorised operations on the ``[k, j, i]`` grid.

``side`` is ``+1`` for the left lung (LPS ``+x``) and ``-1`` for the right lung.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..volume import Volume

BODY_SEMI_AXES_MM = (148.0, 110.0)
"""Skin ellipse of the chest (left-right, anterior-posterior half widths)."""
SKIN_FAT_RHO = 0.93
"""Inner edge of the subcutaneous fat, in units of the skin ellipse (see :func:`body_rho`)."""
CHEST_WALL_INNER_RHO = 0.76
"""Inner surface of the chest wall (ribs and intercostal muscle) in skin-ellipse units."""
LUNG_MAX_RHO = 0.75
"""Lungs stay inside this skin-ellipse radius (a thin pleural layer lies between them and the ribs)."""

LUNG_CENTER_X_MM = 72.0
LUNG_CENTER_Y_MM = 8.0
LUNG_SEMI_AXES_MM = (64.0, 88.0)
LUNG_APEX_Z_MM = 116.0
APEX_TAPER_MM = 55.0
"""Over this height below the apex the lung cross-section grows from a point to full size."""
MEDIASTINUM_HALF_WIDTH_MM = 18.0
DIAPHRAGM_BASE_Z_MM = {+1: -112.0, -1: -104.0}
"""Height of each hemidiaphragm at the costophrenic angle; the right one sits higher (liver)."""
DIAPHRAGM_DOME_MM = 38.0

HEART_CENTER_MM = (12.0, -22.0, -50.0)
HEART_SEMI_AXES_MM = (62.0, 48.0, 48.0)
PERICARDIAL_FAT_MM = 5.0

SPINE_CENTER_XY_MM = (0.0, 62.0)
VERTEBRA_RADIUS_MM = 18.0
SPINAL_CANAL_CENTER_XY_MM = (0.0, 88.0)
SPINAL_CANAL_RADIUS_MM = 6.5
NEURAL_ARCH_RADIUS_MM = 11.0
PARAVERTEBRAL_CLEARANCE_MM = 32.0
"""Lungs keep this distance from the vertebral axis (paravertebral soft tissue)."""
PARASPINAL_MUSCLE_CENTERS_XY_MM = ((-32.0, 88.0), (32.0, 88.0))
PARASPINAL_MUSCLE_SEMI_AXES_MM = (26.0, 14.0)

RIB_PAIRS = 12
RIB_PITCH_MM = 21.0
RIB_TOP_Z_MM = 112.0
"""Upper edge of rib 1 at the back."""
RIB_HEIGHT_MM = 9.0
RIB_DROP_MM = 30.0
"""How much lower a rib lies at the front of the chest than at the back."""
RIB_CENTER_RHO = 0.805
RIB_HALF_THICKNESS_RHO = 0.03
RIB_CORTEX_FRACTION = 0.45
"""Squared normalised radius above which a rib voxel is cortical bone (inside it is marrow)."""
RIB_FREE_FRONT_HALF_WIDTH_MM = 28.0
"""No rib in front of the sternum (costal cartilage region) within this half width."""
RIB_FREE_BACK_HALF_WIDTH_MM = 30.0
"""No rib over the spine within this half width (the vertebrae are drawn there)."""

STERNUM_HALF_WIDTH_MM = 16.0
STERNUM_RHO = (0.76, 0.86)
STERNUM_Z_RANGE_MM = (-70.0, 95.0)

DISC_HEIGHT_MM = 4.0
VERTEBRA_TOP_Z_MM = RIB_TOP_Z_MM + 6.0
"""Upper end plate of T1; each vertebra is one rib pitch high, discs in between."""
T1_LABEL = 49
"""MAISI id of vertebra T1; T2..T12, L1.. follow with decreasing ids (C7 = 50 above)."""

LEFT_RIB_1_LABEL = 63
RIGHT_RIB_1_LABEL = 75


@dataclass(frozen=True)
class ChestGrid:
    """Voxel-centre coordinates (mm, LPS) of an axis-aligned grid as broadcastable arrays.

    ``x`` has shape ``(1, 1, I)``, ``y`` ``(1, J, 1)``, ``z`` ``(K, 1, 1)``.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    @classmethod
    def of(cls, volume: Volume) -> "ChestGrid":
        """Coordinates of ``volume``'s voxel centres (its direction must be the identity)."""
        ni, nj, nk = volume.size_ijk
        x = volume.origin[0] + volume.spacing[0] * np.arange(ni, dtype=np.float32)
        y = volume.origin[1] + volume.spacing[1] * np.arange(nj, dtype=np.float32)
        z = volume.origin[2] + volume.spacing[2] * np.arange(nk, dtype=np.float32)
        return cls(x[None, None, :], y[None, :, None], z[:, None, None])


def body_rho(x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
    """Normalised elliptical radius in the axial plane: 0 at the centre, 1 on the skin."""
    ax, ay = BODY_SEMI_AXES_MM
    return np.sqrt((x_mm / ax) ** 2 + (y_mm / ay) ** 2)


def lung_ellipse_q(x_mm: np.ndarray, y_mm: np.ndarray, side: int) -> np.ndarray:
    """Squared normalised radius of one lung's axial footprint (1 on its ellipse)."""
    ax, ay = LUNG_SEMI_AXES_MM
    return ((x_mm - side * LUNG_CENTER_X_MM) / ax) ** 2 + ((y_mm - LUNG_CENTER_Y_MM) / ay) ** 2


def diaphragm_z_mm(x_mm: np.ndarray, y_mm: np.ndarray, side: int) -> np.ndarray:
    """Height (mm) of the hemidiaphragm dome under one lung: highest under the lung centre."""
    dome = np.clip(1.0 - lung_ellipse_q(x_mm, y_mm, side), 0.0, 1.0)
    return DIAPHRAGM_BASE_Z_MM[side] + DIAPHRAGM_DOME_MM * dome


def heart_mask(grid: ChestGrid, margin_mm: float = 0.0) -> np.ndarray:
    """Ellipsoidal heart, optionally grown by ``margin_mm`` on every semi-axis."""
    (cx, cy, cz), (ax, ay, az) = HEART_CENTER_MM, HEART_SEMI_AXES_MM
    return (((grid.x - cx) / (ax + margin_mm)) ** 2 + ((grid.y - cy) / (ay + margin_mm)) ** 2
            + ((grid.z - cz) / (az + margin_mm)) ** 2) <= 1.0


def distance_to_axis_mm(grid: ChestGrid, center_xy_mm: tuple[float, float]) -> np.ndarray:
    """Axial-plane distance (mm) of each voxel column to a vertical axis, shape ``(1, J, I)``."""
    return np.hypot(grid.x - center_xy_mm[0], grid.y - center_xy_mm[1])


def lung_side_mask(grid: ChestGrid, side: int, excluded: np.ndarray) -> np.ndarray:
    """One lung: apex dome, chest-wall boundary, mediastinum, diaphragm; minus ``excluded`` voxels."""
    q = lung_ellipse_q(grid.x, grid.y, side)
    growth = np.clip((LUNG_APEX_Z_MM - grid.z) / APEX_TAPER_MM, 0.0, 1.0)
    column = ((body_rho(grid.x, grid.y) < LUNG_MAX_RHO) & (side * grid.x > MEDIASTINUM_HALF_WIDTH_MM)
              & (distance_to_axis_mm(grid, SPINE_CENTER_XY_MM) > PARAVERTEBRAL_CLEARANCE_MM))
    mask = (q < growth) & column & (grid.z > diaphragm_z_mm(grid.x, grid.y, side))
    return mask & ~excluded


def oblique_fissure_z_mm(y_mm: np.ndarray) -> np.ndarray:
    """Height of the oblique fissure: high at the back (about T4), low at the front (diaphragm)."""
    return -15.0 + 1.05 * y_mm


HORIZONTAL_FISSURE_Z_MM = 5.0
"""Right lung: the horizontal fissure separates the upper (above) from the middle lobe."""


def lobe_labels(grid: ChestGrid, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """MAISI lobe ids (28-32) for the lung voxels, 0 elsewhere, split by planar fissures."""
    below_oblique = np.broadcast_to(grid.z < oblique_fissure_z_mm(grid.y), left.shape)
    below_horizontal = np.broadcast_to(grid.z < HORIZONTAL_FISSURE_Z_MM, left.shape)
    lobes = np.zeros(left.shape, np.uint8)
    lobes[left] = np.where(below_oblique[left], 29, 28)
    lobes[right] = np.where(below_oblique[right], 32, np.where(below_horizontal[right], 31, 30))
    return lobes


def rib_labels(grid: ChestGrid) -> tuple[np.ndarray, np.ndarray]:
    """``(label, cortex)``: MAISI rib ids (63-86, 0 elsewhere) and the cortical-bone voxels.

    Each rib is a band of elliptical cross-section that follows the chest wall and drops
    :data:`RIB_DROP_MM` from back to front.
    """
    radial = (body_rho(grid.x, grid.y) - RIB_CENTER_RHO) / RIB_HALF_THICKNESS_RHO
    drop = RIB_DROP_MM * (1.0 - grid.y / BODY_SEMI_AXES_MM[1]) / 2.0
    position = (RIB_TOP_Z_MM - drop - grid.z) / RIB_PITCH_MM
    number = np.floor(position)
    along = (position - number) * RIB_PITCH_MM / RIB_HEIGHT_MM
    radius2 = (2.0 * along - 1.0) ** 2 + radial ** 2
    gaps = (((np.abs(grid.x) < RIB_FREE_FRONT_HALF_WIDTH_MM) & (grid.y < 0))
            | ((np.abs(grid.x) < RIB_FREE_BACK_HALF_WIDTH_MM) & (grid.y > 0)))
    bone = (along < 1.0) & (radius2 < 1.0) & (number >= 0) & (number < RIB_PAIRS) & ~gaps
    first = np.where(grid.x > 0, LEFT_RIB_1_LABEL, RIGHT_RIB_1_LABEL)
    label = np.where(bone, first + number.clip(0, RIB_PAIRS - 1), 0).astype(np.uint8)
    return label, bone & (radius2 > RIB_CORTEX_FRACTION)


def vertebra_labels(grid: ChestGrid) -> tuple[np.ndarray, np.ndarray]:
    """``(label, disc)``: vertebral body and neural arch with MAISI vertebra ids; intervertebral discs."""
    body = distance_to_axis_mm(grid, SPINE_CENTER_XY_MM) < VERTEBRA_RADIUS_MM
    canal_r = distance_to_axis_mm(grid, SPINAL_CANAL_CENTER_XY_MM)
    arch = (canal_r >= SPINAL_CANAL_RADIUS_MM) & (canal_r < NEURAL_ARCH_RADIUS_MM)
    level = (VERTEBRA_TOP_Z_MM - grid.z) / RIB_PITCH_MM
    number = np.floor(level)
    disc_column = (level - number) * RIB_PITCH_MM > RIB_PITCH_MM - DISC_HEIGHT_MM
    label = np.where(body | arch, T1_LABEL - number, 0)
    disc = body & disc_column
    label = np.where(disc, 0, label).astype(np.uint8)
    return label, disc


def spinal_cord_mask(grid: ChestGrid) -> np.ndarray:
    """The spinal canal (cord and fluid), shape ``(1, J, I)``."""
    return distance_to_axis_mm(grid, SPINAL_CANAL_CENTER_XY_MM) < SPINAL_CANAL_RADIUS_MM


def sternum_mask(grid: ChestGrid) -> np.ndarray:
    """The sternum: a flat bone in the front chest wall."""
    rho = body_rho(grid.x, grid.y)
    z0, z1 = STERNUM_Z_RANGE_MM
    return ((np.abs(grid.x) < STERNUM_HALF_WIDTH_MM) & (grid.y < 0) & (rho >= STERNUM_RHO[0])
            & (rho < STERNUM_RHO[1]) & (grid.z > z0) & (grid.z < z1))


def paraspinal_muscle_mask(grid: ChestGrid) -> np.ndarray:
    """The two erector spinae muscles beside the spine, shape ``(1, J, I)``."""
    ax, ay = PARASPINAL_MUSCLE_SEMI_AXES_MM
    mask = np.zeros(np.broadcast_shapes(grid.x.shape, grid.y.shape), bool)
    for cx, cy in PARASPINAL_MUSCLE_CENTERS_XY_MM:
        mask |= ((grid.x - cx) / ax) ** 2 + ((grid.y - cy) / ay) ** 2 < 1.0
    return mask


def below_diaphragm_masks(grid: ChestGrid) -> tuple[np.ndarray, np.ndarray]:
    """``(liver, stomach)``: upper abdomen under the right and left hemidiaphragm."""
    inside = body_rho(grid.x, grid.y) < CHEST_WALL_INNER_RHO
    right = grid.x < MEDIASTINUM_HALF_WIDTH_MM
    liver = inside & right & (grid.z < diaphragm_z_mm(grid.x, grid.y, -1) - 4.0)
    stomach = inside & ~right & (grid.z < diaphragm_z_mm(grid.x, grid.y, +1) - 4.0)
    return liver, stomach
