"""Show a result beside its original in linked slice views, and find or make the nodes results go to
(Slicer side)."""
from __future__ import annotations

import slicer


def named_node(className: str, name: str):
    """The scene's node of ``className`` called ``name``, created when there is none (a node of another
    class with that name is left alone: ``GetFirstNodeByName`` would return it)."""
    for node in slicer.util.getNodesByClass(className):
        if node.GetName() == name:
            return node
    return slicer.mrmlScene.AddNewNodeByClass(className, name)


def show_side_by_side(leftVolumeNode, rightVolumeNode) -> None:
    """Side-by-side layout: ``leftVolumeNode`` in Red, ``rightVolumeNode`` in Yellow, views linked."""
    layoutManager = slicer.app.layoutManager()
    if layoutManager is None:  # headless
        return
    layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
    for viewName, volumeNode in (("Red", leftVolumeNode), ("Yellow", rightVolumeNode)):
        sliceWidget = layoutManager.sliceWidget(viewName)
        if sliceWidget is None:
            continue
        composite = sliceWidget.mrmlSliceCompositeNode()
        composite.SetBackgroundVolumeID(volumeNode.GetID() if volumeNode else None)
        composite.SetLinkedControl(True)
        sliceWidget.mrmlSliceNode().SetOrientationToAxial()
        sliceWidget.sliceLogic().FitSliceToAll()
