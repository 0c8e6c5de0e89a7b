"""PseudoNoduleSeg: click a lung nodule, get its mask (a named segment) and its measurements (a table).

All computation is in ``nodsynth`` (``nodsynth.segment``, ``nodsynth.measure``) through
``PseudoNoduleSegLib.compute``; this file binds it to MRML nodes and the GUI.
"""
import json
import logging
from typing import Annotated, Optional, Union

import numpy as np
import slicer
from slicer import (vtkMRMLLabelMapVolumeNode, vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode,
                    vtkMRMLSegmentationNode, vtkMRMLTableNode)
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest

from NodMAISICommon.dependencies import ensure_packages
from NodMAISICommon.hierarchy import place_beside
from NodMAISICommon.markups import add_control_point_lps, control_points_lps, defined_point_indices
from NodMAISICommon.requirements import CORE_REQUIREMENTS
from NodMAISICommon.segments import prepare_segmentation, region_from_node, write_segment
from NodMAISICommon.tablenodes import fill_table
from NodMAISICommon.volumes import node_from_volume, volume_from_node
from NodMAISICommon.widgetbase import ModuleWidgetBase
from PseudoNoduleSegLib.compute import METHODS, SegmentOptions, options_from_parameters, segment_points

SEGMENT_JOB = "PseudoNoduleSegLib.compute:segment_points_boxed"

POINT_LABEL_FORMAT = "Nodule %d"
"""New points are labelled 'Nodule 1', 'Nodule 2', ...; a point's label names its segment and table row."""
NODULE_COLORS = ((0.95, 0.35, 0.25), (0.25, 0.7, 0.95), (0.95, 0.8, 0.2), (0.6, 0.4, 0.9), (0.3, 0.85, 0.45))


class PseudoNoduleSeg(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "PseudoNoduleSeg"
        self.parent.categories = ["NodMAISI"]
        self.parent.dependencies = ["Markups", "Segmentations"]
        self.parent.contributors = ["NodMAISI contributors"]
        self.parent.helpText = (
            "Click a lung nodule in a slice view: its mask appears as a segment ('Nodule 1', ...) with lung-nodule "
            "terminology, and its measurements (volume, diameters, centroid, HU statistics, subtype estimate, "
            "lobe and pleural distance when a lung label map is given) in a table. 'Segment all' re-runs every "
            "point with the Advanced settings. Headless: PseudoNoduleSegLogic().segmentPoints(volume, points, "
            "segmentation, parameters).")
        self.parent.acknowledgementText = (
            "Built on the NodMAISI point-to-mask protocol (PiNS), improved to return the nodule under the click.")


@parameterNodeWrapper
class PseudoNoduleSegParameterNode:
    """The module's state, saved with the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    pointList: vtkMRMLMarkupsFiducialNode
    lungVolume: Optional[Union[vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode]]
    outputSegmentation: vtkMRMLSegmentationNode
    measurementsTable: vtkMRMLTableNode
    method: Annotated[str, Choice(list(METHODS))] = "kmeans"
    boxSizeMm: Annotated[float, WithinRange(0.0, 60.0)] = 0.0
    expandMm: Annotated[float, WithinRange(0.0, 20.0)] = 0.0
    fillHoles: bool = True
    restrictToLung: bool = False
    keepLowContrast: bool = False


class PseudoNoduleSegWidget(ModuleWidgetBase):
    WITH_ENGINE_PANEL = False  # segmentation runs locally, in milliseconds

    def __init__(self, parent=None) -> None:
        ModuleWidgetBase.__init__(self, parent)
        self.LOGIC_CLASS = PseudoNoduleSegLogic

    def setupConnections(self) -> None:
        self.ui.pointPlaceWidget.placeMultipleMarkups = slicer.qSlicerMarkupsPlaceWidget.ForcePlaceMultipleMarkups
        self.ui.pointPlaceWidget.buttonsVisible = False
        self.ui.pointPlaceWidget.placeButton().show()
        self.ui.segmentAllButton.connect("clicked(bool)", self.onSegmentAllButton)
        self.ui.pointListSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onPointListChanged)

    def defaultInputs(self, p) -> None:
        if not p.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume and not firstVolume.IsA("vtkMRMLLabelMapVolumeNode"):
                p.inputVolume = firstVolume
        if not p.pointList:
            p.pointList = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Nodule points")
            p.pointList.SetControlPointLabelFormat(POINT_LABEL_FORMAT)

    def setParameterNode(self, parameterNode) -> None:
        ModuleWidgetBase.setParameterNode(self, parameterNode)
        self.onPointListChanged(parameterNode.pointList if parameterNode else None)

    def exit(self) -> None:
        ModuleWidgetBase.exit(self)
        self.onPointListChanged(None)  # points placed while the module is hidden wait for "Segment all"

    def updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        ready = bool(p and p.inputVolume and p.pointList)
        self.ui.segmentAllButton.enabled = ready or self.runner.running
        self.ui.measurementsTableView.setMRMLTableNode(p.measurementsTable if p else None)

    def onPointListChanged(self, pointList) -> None:
        """Observe the current point list: every newly placed point is segmented at once."""
        self.observePoints(pointList, self.ui.pointPlaceWidget, self.onPointDefined)

    def onPointDefined(self, caller, event) -> None:
        if not self.runner.running:  # else the running job's completion picks the new point up
            self._run(onlyNew=True)

    def onSegmentAllButton(self) -> None:
        if not self.toggleCancel(self.ui.segmentAllButton):
            self._run(onlyNew=False)

    def _run(self, onlyNew: bool) -> None:
        p = self._parameterNode
        if not (p and p.inputVolume and p.pointList):
            return
        with slicer.util.tryWithErrorDisplay("Failed to start the segmentation.", waitCursor=True):
            ensure_packages(CORE_REQUIREMENTS, interactive=True)
            if not p.outputSegmentation:
                p.outputSegmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodules")
            if not p.measurementsTable:
                p.measurementsTable = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "Nodule measurements")
            indices = self.logic.pointsToSegment(p.pointList, p.outputSegmentation, onlyNew)
            if indices:
                ct, points, options, lung, indices = self.logic.prepareJob(
                    p.inputVolume, p.pointList, options_from_parameters(p), p.lungVolume, indices)
                # the CT (and a lung volume) go to the job process once; later clicks send only their points
                uploads = []
                ct = self.storedInput(p.inputVolume, ct, uploads)
                if lung is not None and p.lungVolume.IsA("vtkMRMLVolumeNode"):
                    lung = self.storedInput(p.lungVolume, lung, uploads)
                volume, pointList = p.inputVolume, p.pointList  # the outcomes' geometry and labels
                self.startJob(self.ui.segmentAllButton, SEGMENT_JOB, (ct, points, options, lung, indices),
                              lambda outcomes: self._onDone(outcomes, volume, pointList), uploads)

    def _onDone(self, outcomes, volume, points) -> None:
        p = self._parameterNode
        replaceRows = len(outcomes) == len(self.logic.pointsToSegment(points, None, onlyNew=False))
        self.logic.writeOutcomes(outcomes, volume, points, p.outputSegmentation, p.measurementsTable, replaceRows)
        p.outputSegmentation.CreateClosedSurfaceRepresentation()
        self.updateButtons()
        if self.logic.pointsToSegment(p.pointList, p.outputSegmentation, onlyNew=True):
            self._run(onlyNew=True)  # points placed while the job ran


class PseudoNoduleSegLogic(ScriptedLoadableModuleLogic):
    """Headless-capable logic: MRML nodes in, segments and a measurements table out."""

    def getParameterNode(self):
        return PseudoNoduleSegParameterNode(super().getParameterNode())

    @staticmethod
    def segmentId(pointList, pointIndex: int) -> str:
        """Stable segment id of a control point, so re-segmenting a point replaces its segment."""
        return f"Nodule_{pointList.GetNthControlPointID(pointIndex)}"

    def pointsToSegment(self, pointList, segmentationNode, onlyNew: bool) -> list:
        """Defined control points to process: all, or only those without a segment yet."""
        indices = defined_point_indices(pointList)
        if not onlyNew or segmentationNode is None:
            return indices
        segmentation = segmentationNode.GetSegmentation()
        return [i for i in indices if segmentation.GetSegment(self.segmentId(pointList, i)) is None]

    @staticmethod
    def prepareJob(volumeNode, pointList, options: SegmentOptions, lungNode=None, indices=None) -> tuple:
        """Arguments of :func:`segment_points` read from the nodes (views of their voxels: the job
        process gets a copy, a call on the main thread only reads them)."""
        ct = volume_from_node(volumeNode, "CT volume", copy=False)
        indices = defined_point_indices(pointList) if indices is None else list(indices)
        points = control_points_lps(pointList, volumeNode, indices)
        lung = region_from_node(lungNode, volumeNode, "lung") if lungNode is not None else None
        return ct, points, options, lung, indices

    def writeOutcomes(self, outcomes, volumeNode, pointList, segmentationNode, tableNode=None,
                      replaceRows: bool = True) -> list:
        """Segments and table rows from :func:`segment_points` results (main thread); returns the rows.

        ``replaceRows=False`` keeps the table's rows of other nodules (when only new points ran).
        """
        prepare_segmentation(segmentationNode, volumeNode)
        for outcome in outcomes:
            name = pointList.GetNthControlPointLabel(outcome.point_index) or outcome.measurements["nodule"]
            outcome.measurements["nodule"] = name
            write_segment(segmentationNode, volumeNode, outcome.mask, name,
                          NODULE_COLORS[outcome.point_index % len(NODULE_COLORS)],
                          segmentId=self.segmentId(pointList, outcome.point_index))
        rows = (self.tableRows(tableNode, outcomes, replaceRows) if tableNode is not None
                else [o.measurements for o in outcomes])
        if tableNode is not None:
            fill_table(tableNode, rows)
        place_beside(volumeNode, segmentationNode, tableNode)
        return rows

    @staticmethod
    def tableRows(tableNode, outcomes, replaceRows: bool) -> list:
        """The table's rows (kept in a node attribute as JSON, by nodule name) updated with ``outcomes``."""
        stored = {} if replaceRows else json.loads(tableNode.GetAttribute("NodMAISI.Measurements") or "{}")
        for outcome in outcomes:
            stored[outcome.measurements["nodule"]] = json.loads(json.dumps(outcome.measurements, default=_jsonable))
        tableNode.SetAttribute("NodMAISI.Measurements", json.dumps(stored))
        return list(stored.values())

    def segmentPoints(self, volumeNode, pointListNode, segmentationNode, parameters=None, tableNode=None,
                      lungNode=None, progress=None, cancel=None) -> list:
        """Segment the nodule at every defined point; returns one measurement dict per nodule.

        ``parameters``: the module's parameter node wrapper, or ``None`` for the defaults
        (k-means, automatic box, no expansion, holes filled, no lung restriction).
        """
        options = options_from_parameters(parameters) if parameters is not None else SegmentOptions()
        if parameters is not None and lungNode is None:
            lungNode = parameters.lungVolume
        ct, points, options, lung, indices = self.prepareJob(volumeNode, pointListNode, options, lungNode)
        outcomes = segment_points(ct, points, options, lung, indices, progress=progress, cancel=cancel)
        return self.writeOutcomes(outcomes, volumeNode, pointListNode, segmentationNode, tableNode)


def _jsonable(value):
    """numpy scalars and arrays -> plain Python for JSON."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the measurements table")


class PseudoNoduleSegTest(ScriptedLoadableModuleTest):
    """Self-test on the embedded demo patient: click each nodule, Dice >= 0.9 against the truth."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_demo_patient_dice()

    def test_demo_patient_dice(self):
        ensure_packages(CORE_REQUIREMENTS, interactive=True)  # scikit-learn / scikit-image are not in Slicer
        from nodsynth.phantom import make_demo_patient

        self.delayDisplay("Building the demo patient")
        patient = make_demo_patient()
        ctNode = node_from_volume(patient.ct, "Demo CT")
        pointList = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Nodule points")
        for nodule in patient.nodules:
            add_control_point_lps(pointList, ctNode, nodule.center_lps, nodule.kind)
        segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodules")
        tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "Nodule measurements")

        self.delayDisplay("Segmenting")
        logic = PseudoNoduleSegLogic()
        parameters = logic.getParameterNode()
        parameters.lungVolume = node_from_volume(patient.labelmap, "Demo label map", label=True)
        parameters.restrictToLung = True
        rows = logic.segmentPoints(ctNode, pointList, segmentationNode, parameters, tableNode=tableNode)
        self.assertEqual(len(rows), len(patient.nodules))
        self.assertEqual(tableNode.GetNumberOfRows(), len(patient.nodules))

        for index, nodule in enumerate(patient.nodules):
            segmentId = logic.segmentId(pointList, index)
            mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, ctNode) > 0
            truth = np.asarray(nodule.mask.array) > 0
            dice = 2.0 * np.logical_and(mask, truth).sum() / (mask.sum() + truth.sum())
            logging.info(f"{nodule.kind}: Dice {dice:.3f}")
            self.assertGreaterEqual(dice, 0.9, f"{nodule.kind} nodule: Dice {dice:.3f} < 0.9")
        self.delayDisplay("Test passed")
