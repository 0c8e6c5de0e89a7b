"""Volume nodes <-> :class:`nodsynth.Volume` (Slicer side; the RAS/LPS flip lives in ``Volume``)."""
from __future__ import annotations

import numpy as np
import slicer
import vtk

from nodsynth.errors import InputError
from nodsynth.volume import Volume

from .arrays import slicer_voxels


def ijk_to_ras_array(volumeNode) -> np.ndarray:
    """The node's IJK->RAS 4x4 matrix (local frame, before any parent transform) as numpy."""
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def volume_from_node(volumeNode, what: str = "input volume", copy: bool = True) -> Volume:
    """The node's voxels and geometry as a Volume (LPS, in the node's local frame).

    ``copy=True`` detaches the array from the node (engine code may keep or change it); ``copy=False``
    gives a view of the node's voxels, for geometry checks and for data handed to a job process
    (which pickles a copy).
    """
    if volumeNode is None or volumeNode.GetImageData() is None:
        raise InputError(f"no {what} selected (or it holds no image)")
    array = slicer.util.arrayFromVolume(volumeNode)
    if array.ndim != 3:
        raise InputError(f"the {what} '{volumeNode.GetName()}' is not a scalar 3-D volume (array shape {array.shape})")
    return Volume.from_slicer(np.array(array, copy=True) if copy else array, ijk_to_ras_array(volumeNode))


def content_key(node) -> str:
    """Names what a node holds now: its ID and the modification times of the node and its voxels (a job
    process keeps an input stored under this key until the node changes)."""
    image = node.GetImageData()
    return f"{node.GetID()}:{node.GetMTime()}:{image.GetMTime() if image is not None else 0}"


def node_from_volume(volume: Volume, name: str, node=None, label: bool = False, like=None):
    """Create (or update ``node``) a scalar / label map volume node holding ``volume``.

    ``like``: a node whose parent transform the output shares, so it overlays its source.
    """
    array, ijk_to_ras = volume.to_slicer()
    array = slicer_voxels(array)
    if node is None:
        class_name = "vtkMRMLLabelMapVolumeNode" if label else "vtkMRMLScalarVolumeNode"
        node = slicer.util.addVolumeFromArray(array, ijkToRAS=ijk_to_ras, name=name, nodeClassName=class_name)
    else:
        node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras))
        slicer.util.updateVolumeFromArray(node, array)
    if like is not None:
        node.SetAndObserveTransformNodeID(like.GetTransformNodeID())
    return node
