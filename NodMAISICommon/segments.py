"""Segmentation segments <-> binary masks on a reference volume's grid (Slicer side)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import slicer
import vtk

from nodsynth.errors import InputError
from nodsynth.volume import Volume, nonzero_extent_kji, require_same_grid, same_grid, subgrid_start_kji

from .terminology import LUNG_NODULE_TERMINOLOGY, NODULE, parse_terminology_entry
from .volumes import node_from_volume, volume_from_node


def prepare_segmentation(segmentationNode, referenceVolumeNode) -> None:
    """Make ``segmentationNode`` follow the reference volume's geometry and parent transform."""
    segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolumeNode)
    segmentationNode.SetAndObserveTransformNodeID(referenceVolumeNode.GetTransformNodeID())
    if segmentationNode.GetDisplayNode() is None:
        segmentationNode.CreateDefaultDisplayNodes()


def write_segment(segmentationNode, referenceVolumeNode, mask: Volume, name: str,
                  color: Sequence[float] = (0.9, 0.3, 0.2), segmentId: Optional[str] = None,
                  terminology: str = LUNG_NODULE_TERMINOLOGY) -> str:
    """Put ``mask`` (non-zero = inside; on the reference volume's grid, or a block of it) into a segment
    (new, or ``segmentId`` replaced); returns its id.

    Only the mask's bounding box is handed to Slicer (a segment keeps its own extent), so a small
    nodule in a large CT costs a small copy on the GUI thread, not one of the whole CT.
    """
    reference = volume_from_node(referenceVolumeNode, copy=False)
    if not same_grid(mask, reference):
        subgrid_start_kji(mask, reference)  # a block of the reference grid, or a GeometryError saying why not
    segmentation = segmentationNode.GetSegmentation()
    if segmentId is None or segmentation.GetSegment(segmentId) is None:
        segmentId = segmentation.AddEmptySegment(segmentId or "", name, list(color))
    segment = segmentation.GetSegment(segmentId)
    segment.SetName(name)
    segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), terminology)
    extent = nonzero_extent_kji(mask.array)
    box = mask.crop(*extent) if extent is not None else mask.crop((0, 0, 0), (1, 1, 1))
    labelmapNode = node_from_volume(box.with_array((box.array > 0).astype(np.uint8)), "__segment__", label=True,
                                    like=referenceVolumeNode)
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segmentId)
        if not slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(labelmapNode, segmentationNode, ids):
            raise InputError(f"Slicer could not import the mask into segment {name!r}")
    finally:
        slicer.mrmlScene.RemoveNode(labelmapNode)
    return segmentId


def read_segment(segmentationNode, segmentId: str, referenceVolumeNode) -> Volume:
    """A segment as a uint8 mask Volume on the reference volume's grid."""
    if segmentationNode.GetSegmentation().GetSegment(segmentId) is None:
        raise InputError(f"segment {segmentId!r} does not exist in '{segmentationNode.GetName()}'")
    array = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, referenceVolumeNode)
    grid = volume_from_node(referenceVolumeNode, copy=False)
    return grid.with_array((np.asarray(array) > 0).astype(np.uint8))


def terminology_of(segment) -> str:
    """A segment's serialized terminology entry ('' when it has none). ``vtkSegment::GetTag`` returns
    the value through a ``std::string&``, which Python passes as a ``vtk.reference``."""
    value = vtk.reference("")
    if segment is None or not segment.GetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), value):
        return ""
    return str(value)


def is_nodule_segment(segment) -> bool:
    """True when a segment's terminology type is 'Nodule' (SNOMED CT 27925004)."""
    tag = terminology_of(segment)
    if not tag:
        return False
    try:
        code = parse_terminology_entry(tag)["type"]
    except ValueError:
        return False
    return code is not None and code.value == NODULE.value


def segment_ids(segmentationNode) -> list[str]:
    """Ids of all segments of a segmentation node, in order."""
    segmentation = segmentationNode.GetSegmentation()
    return [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]


def region_from_node(node, referenceVolumeNode, what: str = "lung", copy: bool = True) -> Volume:
    """A region input as a Volume on the reference grid: a volume node as it is (0/1 mask or MAISI
    label map; it must share the reference's grid; ``copy=False``: a view of its voxels, see
    ``volume_from_node``), or a segmentation node as the union of its segments (uint8 0/1)."""
    if node.IsA("vtkMRMLSegmentationNode"):
        ids = segment_ids(node)
        if not ids:
            raise InputError(f"the {what} segmentation '{node.GetName()}' has no segments")
        union = np.zeros(volume_from_node(referenceVolumeNode, copy=False).shape_kji, dtype=np.uint8)
        for segmentId in ids:
            union |= read_segment(node, segmentId, referenceVolumeNode).array
        return volume_from_node(referenceVolumeNode, copy=False).with_array(union)
    region = volume_from_node(node, f"{what} mask / label map", copy=copy)
    require_same_grid(region, volume_from_node(referenceVolumeNode, copy=False), f"{what} '{node.GetName()}'",
                      f"volume '{referenceVolumeNode.GetName()}'")
    return region
