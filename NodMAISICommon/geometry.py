"""Point geometry between Slicer's frames and nodsynth's LPS convention (pure numpy).

Markups control points are stored in their node's local RAS frame; a parent transform maps
them to world. A volume may also sit under a parent transform; ``nodsynth.Volume.from_slicer``
describes the volume in *its own* (local) RAS frame flipped to LPS. So a point must go
markups-local RAS -> volume-local RAS (the transform between the two parents), then RAS -> LPS.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nodsynth.errors import InputError
from nodsynth.volume import lps_to_ras, ras_to_lps


def apply_homogeneous(matrix_4x4: np.ndarray, points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Apply a 4x4 homogeneous (affine) matrix to points ``(n, 3)`` in mm; returns ``(n, 3)``."""
    m = np.asarray(matrix_4x4, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise InputError(f"a transform must be a finite 4x4 matrix, got shape {m.shape}")
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0]):
        raise InputError("only affine (linear) transforms are supported here: the last matrix row must be 0 0 0 1")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return pts @ m[:3, :3].T + m[:3, 3]


def markup_points_to_volume_lps(points_markups_ras: Sequence[Sequence[float]] | np.ndarray,
                                markups_to_volume_ras_4x4: np.ndarray | None = None) -> np.ndarray:
    """Control points in the markups node's local RAS frame (mm) -> LPS mm in the volume's local frame.

    ``markups_to_volume_ras_4x4`` is the linear transform from the markups' parent frame to the
    volume's parent frame (``vtkMRMLTransformNode.GetMatrixTransformBetweenNodes``); ``None``
    means both share a frame.
    """
    pts = np.asarray(points_markups_ras, dtype=np.float64).reshape(-1, 3)
    if markups_to_volume_ras_4x4 is not None:
        pts = apply_homogeneous(markups_to_volume_ras_4x4, pts)
    return ras_to_lps(pts)


def volume_lps_to_markup_points(points_lps: Sequence[Sequence[float]] | np.ndarray,
                                markups_to_volume_ras_4x4: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`markup_points_to_volume_lps`: LPS mm in the volume's frame -> markups-local RAS."""
    pts = lps_to_ras(np.asarray(points_lps, dtype=np.float64).reshape(-1, 3))
    if markups_to_volume_ras_4x4 is not None:
        pts = apply_homogeneous(np.linalg.inv(np.asarray(markups_to_volume_ras_4x4, dtype=np.float64)), pts)
    return pts
