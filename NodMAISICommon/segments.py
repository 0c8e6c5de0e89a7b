"""Segmentation segments <-> binary masks on a reference volume's grid (Slicer side)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import slicer

from nodsynth.errors import InputError
from nodsynth.volume import Volume, require_same_grid

from .terminology import LUNG_NODULE_TERMINOLOGY, NODULE, parse_terminology_entry
from .volumes import volume_from_node


def prepare_segmentation(segmentationNode, referenceVolumeNode) -> None:
    """Make ``segmentationNode`` follow the reference volume's geometry and parent transform."""
    segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolumeNode)
    segmentationNode.SetAndObserveTransformNodeID(referenceVolumeNode.GetTransformNodeID())
    if segmentationNode.GetDisplayNode() is None:
        segmentationNode.CreateDefaultDisplayNodes()


def write_segment(segmentationNode, referenceVolumeNode, mask: Volume, name: str,
                  color: Sequence[float] = (0.9, 0.3, 0.2), segmentId: Optional[str] = None,
                  terminology: str = LUNG_NODULE_TERMINOLOGY) -> str:
    """Put ``mask`` (non-zero = inside) into a segment (new, or ``segmentId`` replaced); returns its id."""
    require_same_grid(mask, volume_from_node(referenceVolumeNode, copy=False), "mask", "reference volume")
    segmentation = segmentationNode.GetSegmentation()
    if segmentId is None or segmentation.GetSegment(segmentId) is None:
        segmentId = segmentation.AddEmptySegment(segmentId or "", name, list(color))
    segment = segmentation.GetSegment(segmentId)
    segment.SetName(name)
    segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), terminology)
    slicer.util.updateSegmentBinaryLabelmapFromArray((mask.array > 0).astype(np.uint8), segmentationNode,
                                                     segmentId, referenceVolumeNode)
    return segmentId


def read_segment(segmentationNode, segmentId: str, referenceVolumeNode) -> Volume:
    """A segment as a uint8 mask Volume on the reference volume's grid."""
    if segmentationNode.GetSegmentation().GetSegment(segmentId) is None:
        raise InputError(f"segment {segmentId!r} does not exist in '{segmentationNode.GetName()}'")
    array = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, referenceVolumeNode)
    grid = volume_from_node(referenceVolumeNode, copy=False)
    return grid.with_array((np.asarray(array) > 0).astype(np.uint8))


def is_nodule_segment(segment) -> bool:
    """True when a segment's terminology type is 'Nodule' (SNOMED CT 27925004)."""
    tag = segment.GetTag(slicer.vtkSegment.GetTerminologyEntryTagName()) if segment is not None else ""
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


def region_from_node(node, referenceVolumeNode, what: str = "lung") -> Volume:
    """A region input as a Volume on the reference grid: a volume node as it is (0/1 mask or MAISI
    label map), or a segmentation node as the union of its segments (uint8 0/1)."""
    if node.IsA("vtkMRMLSegmentationNode"):
        ids = segment_ids(node)
        if not ids:
            raise InputError(f"the {what} segmentation '{node.GetName()}' has no segments")
        union = np.zeros(volume_from_node(referenceVolumeNode, copy=False).shape_kji, dtype=np.uint8)
        for segmentId in ids:
            union |= read_segment(node, segmentId, referenceVolumeNode).array
        return volume_from_node(referenceVolumeNode, copy=False).with_array(union)
    return volume_from_node(node, f"{what} mask / label map")
