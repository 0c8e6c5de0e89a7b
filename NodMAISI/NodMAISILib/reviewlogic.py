"""The NodMAISI module's Review logic (Slicer side, headless-capable: nodes and paths in, nodes out, no
dialogs): a reading-study case shown in a fixed layout and window, a real / synthetic pair shown side
by side with its nodule contours, table and optional difference volume, slice views sent to a nodule,
and a finished ``nodsynth evaluate`` report as a table."""
from __future__ import annotations

import numpy as np
import slicer
import vtk

from nodsynth.evaluate.report import load_report_rows
from nodsynth.overlay import DEFAULT_WINDOW_HU
from nodsynth.review.reading import ReadingCase
from nodsynth.review.triplets import DIFFERENCE_WINDOW_HU
from nodsynth.volume import lps_to_ras
from nodsynth.io.volume_files import read_volume
from NodMAISICommon.geometry import apply_homogeneous
from NodMAISICommon.hierarchy import place_beside
from NodMAISICommon.segments import prepare_segmentation, write_segment
from NodMAISICommon.tablenodes import fill_table
from NodMAISICommon.views import named_node, show_side_by_side
from NodMAISICommon.volumes import node_from_volume, volume_from_node

from .compare import ComparisonView, compare_for_view

COMPARE_TABLE, COMPARE_CONTOURS, DIFFERENCE_NAME = "Review nodules", "Review contours", "Difference (synthetic - real)"
CONDITIONING_COLOR, RESEGMENTED_COLOR = (0.35, 1.0, 0.35), (1.0, 0.25, 0.25)
"""Contour colours as the review report's PNG triplets: conditioning mask green, re-segmentation red."""
NODULE_DESCRIPTIONS = {
    "jsd": "Jensen-Shannon divergence of the real and synthetic HU histograms in the nodule (40 bins, -1000..400 HU); "
           "empty for an inserted nodule (the real CT has no nodule there)",
    "dice": "Dice of the synthetic nodule's click re-segmentation with the conditioning mask",
    "reproduced": "Dice >= 0.5 and the re-segmented nodule stands out from the lung around it",
}


def set_fixed_window(volumeNode, window_hu=DEFAULT_WINDOW_HU) -> None:
    """Display ``volumeNode`` at the HU window ``(low, high)``, automatic window/level off."""
    display = volumeNode.GetDisplayNode()
    if display is None:
        volumeNode.CreateDefaultDisplayNodes()
        display = volumeNode.GetDisplayNode()
    display.SetAutoWindowLevel(0)
    display.SetWindowLevelMinMax(float(window_hu[0]), float(window_hu[1]))


def remove_volume(volumeNode) -> None:
    """Remove a volume node with its display and storage nodes (``RemoveNode`` leaves those behind)."""
    if volumeNode is None or volumeNode.GetScene() is None:
        return
    for helper in (volumeNode.GetDisplayNode(), volumeNode.GetStorageNode()):
        if helper is not None:
            slicer.mrmlScene.RemoveNode(helper)
    slicer.mrmlScene.RemoveNode(volumeNode)


def world_ras(volumeNode, point_lps) -> np.ndarray:
    """An LPS point of ``volumeNode``'s own frame (as :func:`volume_from_node` reads it) in world RAS mm."""
    matrix = vtk.vtkMatrix4x4()
    slicer.vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(volumeNode.GetParentTransformNode(), None, matrix)
    return apply_homogeneous(slicer.util.arrayFromVTKMatrix(matrix), lps_to_ras(point_lps))[0]


def jump_to(volumeNode, point_lps) -> np.ndarray:
    """Centre every slice view on an LPS point of ``volumeNode`` (as the Markups module's
    ``JumpSlicesToLocation(x, y, z, centered=True)`` does); returns the point in world RAS."""
    ras = world_ras(volumeNode, point_lps)
    slicer.vtkMRMLSliceNode.JumpAllSlices(slicer.mrmlScene, float(ras[0]), float(ras[1]), float(ras[2]),
                                          slicer.vtkMRMLSliceNode.CenteredJumpSlice)
    return ras


def show_in_view(layout: int, viewName: str, volumeNode, linked: bool) -> None:
    """Switch to ``layout`` and show ``volumeNode`` alone in view ``viewName``, axial and fitted."""
    layoutManager = slicer.app.layoutManager()
    if layoutManager is None:  # headless
        return
    layoutManager.setLayout(layout)
    sliceWidget = layoutManager.sliceWidget(viewName)
    composite = sliceWidget.mrmlSliceCompositeNode()
    composite.SetBackgroundVolumeID(volumeNode.GetID())
    composite.SetForegroundVolumeID(None)
    composite.SetLabelVolumeID(None)
    composite.SetLinkedControl(linked)
    sliceWidget.mrmlSliceNode().SetOrientationToAxial()
    sliceWidget.sliceLogic().FitSliceToAll()


class ReviewLogic:
    """The Review methods of ``NodMAISILogic`` (a mixin; see the module docstring)."""

    # ------------------------------------------------------------------ reading session
    @staticmethod
    def showReadingCase(case: ReadingCase, previousNode=None):
        """Load ``case``'s volume (the previous case's node is removed first), show it in the fixed
        layout at the fixed lung window, centred on the case's nodule point; returns its node."""
        remove_volume(previousNode)
        name = f"Reading case {case.case_id}"
        if case.volume.is_dir():  # a DICOM series (turing build --format dicom), read by nodsynth's reader
            node = node_from_volume(read_volume(case.volume), name)
        else:
            node = slicer.util.loadVolume(str(case.volume), {"name": name, "show": False, "singleFile": True})
        set_fixed_window(node)
        show_in_view(slicer.vtkMRMLLayoutNode.SlicerLayoutOneUpRedSliceView, "Red", node, linked=False)
        jump_to(node, case.point_lps_mm)
        return node

    # ------------------------------------------------------------------ compare
    @staticmethod
    def compareInputs(parameters) -> tuple:
        """The Compare inputs of the parameter node as the arguments of :func:`compare_for_view` (views
        of the nodes' voxels: a job process gets a copy)."""
        def optional(node, what):
            return volume_from_node(node, what, copy=False) if node is not None else None

        return (volume_from_node(parameters.reviewReal, "real CT", copy=False),
                volume_from_node(parameters.reviewSynthetic, "synthetic CT", copy=False),
                optional(parameters.reviewLabelmap, "label map"), optional(parameters.reviewMask, "nodule mask"),
                optional(parameters.reviewEditedLabelmap, "edited label map"), bool(parameters.showDifference))

    def compareNodes(self, parameters, progress=None, cancel=None) -> ComparisonView:
        """Headless: compare the parameter node's pair in this process and show it."""
        view = compare_for_view(*self.compareInputs(parameters), progress=progress, cancel=cancel)
        self.showComparison(view, parameters.reviewReal, parameters.reviewSynthetic)
        return view

    @staticmethod
    def showComparison(view: ComparisonView, realNode, syntheticNode):
        """Real (Red) and synthetic (Yellow) in linked views with the nodule contours on both (conditioning
        mask green, re-segmentation red), the per-nodule table and, when computed, the difference volume
        (Green view, +-400 HU). Returns ``(tableNode, contourNode, differenceNode or None)``."""
        table = named_node("vtkMRMLTableNode", COMPARE_TABLE)
        fill_table(table, view.rows, NODULE_DESCRIPTIONS)
        contours = named_node("vtkMRMLSegmentationNode", COMPARE_CONTOURS)
        prepare_segmentation(contours, realNode)
        segmentation = contours.GetSegmentation()
        for segmentId in ("Conditioning", "Resegmented"):
            if segmentation.GetSegment(segmentId) is not None:
                segmentation.RemoveSegment(segmentId)
        for segmentId, mask, color in (("Conditioning", view.conditioning, CONDITIONING_COLOR),
                                       ("Resegmented", view.resegmented, RESEGMENTED_COLOR)):
            if mask is not None:
                write_segment(contours, realNode, mask, segmentId, color=color, segmentId=segmentId)
        contours.GetDisplayNode().SetVisibility2DFill(False)
        show_side_by_side(realNode, syntheticNode)
        difference = None
        if view.difference is not None:
            difference = node_from_volume(view.difference, DIFFERENCE_NAME,
                                          node=named_node("vtkMRMLScalarVolumeNode", DIFFERENCE_NAME), like=realNode)
            set_fixed_window(difference, (-DIFFERENCE_WINDOW_HU, DIFFERENCE_WINDOW_HU))
            # a third view (Green) beside real (Red) and synthetic (Yellow)
            show_in_view(slicer.vtkMRMLLayoutNode.SlicerLayoutConventionalView, "Green", difference, linked=True)
        place_beside(realNode, table, contours)
        place_beside(realNode, difference, synthetic=True)
        if view.centres_lps_mm:
            jump_to(realNode, view.centres_lps_mm[0])
        return table, contours, difference

    @staticmethod
    def jumpToNodule(view: ComparisonView, index: int, realNode) -> np.ndarray:
        """Centre the views on nodule ``index`` (0-based, table order); returns its world RAS point."""
        return jump_to(realNode, view.centres_lps_mm[index])

    # ------------------------------------------------------------------ evaluation report
    @staticmethod
    def showReport(path, tableNode=None):
        """A finished ``nodsynth evaluate`` JSON report as a table (``section | metric | value``); returns
        ``(kind, tableNode)``. A file that is not such a report raises ``InputError`` saying why."""
        kind, rows = load_report_rows(path)
        tableNode = tableNode or named_node("vtkMRMLTableNode", "Evaluation report")
        fill_table(tableNode, rows)
        return kind, tableNode
