"""Results go into the subject hierarchy beside their source (Slicer side): under the source CT's parent
item, i.e. its study when the CT was loaded from DICOM, so that Slicer's own DICOM export writes them
into that patient and study (its choice, made in its export dialog). A source that is in no study
leaves the results at the scene level.

A synthetic result stays marked as such: the node attribute ``NodMAISI.Synthetic`` and, on its item,
``DICOM.SeriesDescription`` "SYNTHETIC <name>", the series description Slicer's DICOM export dialog
proposes for it (it reads the item's ``DICOM.<tag>`` attributes).
"""
from __future__ import annotations

import slicer

SYNTHETIC_ATTRIBUTE = "NodMAISI.Synthetic"
SERIES_DESCRIPTION_ATTRIBUTE = "DICOM.SeriesDescription"


def parent_item_of(sourceNode) -> int:
    """The subject hierarchy item ``sourceNode`` sits under; the scene item when it has none."""
    shNode = slicer.mrmlScene.GetSubjectHierarchyNode()
    sourceItem = shNode.GetItemByDataNode(sourceNode) if sourceNode is not None else 0
    parentItem = shNode.GetItemParent(sourceItem) if sourceItem else 0
    return parentItem or shNode.GetSceneItemID()


def place_beside(sourceNode, *outputNodes, synthetic: bool = False) -> None:
    """Put each of ``outputNodes`` (None skipped) under the parent item of ``sourceNode``; with
    ``synthetic``, mark them synthetic (see the module)."""
    shNode = slicer.mrmlScene.GetSubjectHierarchyNode()
    parentItem = parent_item_of(sourceNode)
    for node in outputNodes:
        if node is None:
            continue
        item = shNode.GetItemByDataNode(node) or shNode.CreateItem(parentItem, node)
        if shNode.GetItemParent(item) != parentItem:
            shNode.SetItemParent(item, parentItem)
        if synthetic:
            node.SetAttribute(SYNTHETIC_ATTRIBUTE, "1")
            shNode.SetItemAttribute(item, SERIES_DESCRIPTION_ATTRIBUTE, f"SYNTHETIC {node.GetName()}")
