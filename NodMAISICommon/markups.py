"""Markups control points -> LPS millimetres in a volume's frame, honouring parent transforms."""
from __future__ import annotations

import numpy as np
import slicer
import vtk

from nodsynth.errors import InputError

from .geometry import markup_points_to_volume_lps, volume_lps_to_markup_points


def markups_to_volume_matrix(pointListNode, volumeNode) -> np.ndarray:
    """4x4 RAS transform from the markups' parent frame to the volume's parent frame."""
    matrix = vtk.vtkMatrix4x4()
    linear = slicer.vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(
        pointListNode.GetParentTransformNode(), volumeNode.GetParentTransformNode(), matrix)
    if not linear:
        raise InputError("the points and the volume are related by a non-linear transform; "
                         "harden the transform first (Data module: right-click > Harden transform)")
    return slicer.util.arrayFromVTKMatrix(matrix)


def defined_point_indices(pointListNode) -> list[int]:
    """Indices of the control points whose position is defined (placed, not preview/missing)."""
    defined = slicer.vtkMRMLMarkupsNode.PositionDefined
    return [i for i in range(pointListNode.GetNumberOfControlPoints())
            if pointListNode.GetNthControlPointPositionStatus(i) == defined]


def control_points_lps(pointListNode, volumeNode, indices: list[int] | None = None) -> np.ndarray:
    """Positions ``(n, 3)`` of the given (default: all defined) control points, LPS mm in the volume's frame."""
    if pointListNode is None:
        raise InputError("no point list selected")
    indices = defined_point_indices(pointListNode) if indices is None else indices
    local_ras = []
    for index in indices:
        position = [0.0, 0.0, 0.0]
        pointListNode.GetNthControlPointPosition(index, position)
        local_ras.append(position)
    return markup_points_to_volume_lps(np.reshape(local_ras, (-1, 3)), markups_to_volume_matrix(pointListNode, volumeNode))


def add_control_point_lps(pointListNode, volumeNode, point_lps, label: str = "") -> int:
    """Add a control point given in LPS mm of the volume's frame; returns its index."""
    local_ras = volume_lps_to_markup_points([point_lps], markups_to_volume_matrix(pointListNode, volumeNode))[0]
    return pointListNode.AddControlPoint(vtk.vtkVector3d(*local_ras), label)
