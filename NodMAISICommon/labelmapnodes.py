"""Build a MAISI label map node from a CT node and a segmentation node (Slicer side)."""
from __future__ import annotations

from .hierarchy import place_beside
from .labelmaps import build_labelmap
from .segments import is_nodule_segment, read_segment, segment_ids
from .volumes import node_from_volume, volume_from_node


def labelmap_node_from_segmentation(ctNode, segmentationNode, labelmapNode=None):
    """Label map node on the CT grid: named organ segments, 'Nodule' segments as 23, the CT's body as 200."""
    ct = volume_from_node(ctNode, "CT")
    organs, nodules = {}, []
    segmentation = segmentationNode.GetSegmentation()
    for segmentId in segment_ids(segmentationNode):
        segment = segmentation.GetSegment(segmentId)
        mask = read_segment(segmentationNode, segmentId, ctNode)
        if is_nodule_segment(segment):
            nodules.append(mask)
        else:
            organs[segment.GetName()] = mask
    labelmap = build_labelmap(organs, nodules, ct)
    labelmapNode = node_from_volume(labelmap, "MAISI label map", node=labelmapNode, label=True, like=ctNode)
    place_beside(ctNode, labelmapNode)
    return labelmapNode
