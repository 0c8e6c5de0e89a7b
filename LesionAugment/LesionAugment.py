"""LesionAugment: shrink or grow a nodule of an anatomy label map to an exact volume, see the original
and the new contour together, and render the matching CT (model-free or NodMAISI).

All computation is in ``nodsynth`` (``augment``, ``labelmap``, the engines) through
``LesionAugmentLib.compute``; this file binds it to MRML nodes and the GUI.
"""
from typing import Annotated

import numpy as np
import slicer
from slicer import (vtkMRMLLabelMapVolumeNode, vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode,
                    vtkMRMLSegmentationNode, vtkMRMLTableNode)
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest

from nodsynth.augment import DEFAULT_METHOD, METHODS
from nodsynth.errors import InputError
from nodsynth.render.modes import DEFAULT_RENDER_MODE, RENDER_MODES
from nodsynth.place import nodules_from_labelmap
from NodMAISICommon.dependencies import ensure_engine_dependencies, ensure_packages
from NodMAISICommon.engines import ENGINE_JOB, engine_from_settings
from NodMAISICommon.hierarchy import place_beside
from NodMAISICommon.requirements import CORE_REQUIREMENTS
from NodMAISICommon.labelmapnodes import labelmap_node_from_segmentation
from NodMAISICommon.markups import control_points_lps, defined_point_indices
from NodMAISICommon.segments import prepare_segmentation, write_segment
from NodMAISICommon.settings import EngineSettings
from NodMAISICommon.tablenodes import clicked_cell_text, fill_table
from NodMAISICommon.terminology import LUNG_NODULE_TERMINOLOGY
from NodMAISICommon.volumes import node_from_volume, volume_from_node
from NodMAISICommon.widgetbase import ModuleWidgetBase
from LesionAugmentLib.compute import nodule_at, nodule_table_rows, parse_percents, render_ct, resize, stats_rows

ORIGINAL_COLOR, NEW_COLOR = (0.95, 0.85, 0.2), (0.2, 0.85, 0.95)
RESIZE_JOB, RENDER_TARGET = "LesionAugmentLib.compute:resize", "LesionAugmentLib.compute:render_ct"


class LesionAugment(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LesionAugment"
        self.parent.categories = ["NodMAISI"]
        self.parent.dependencies = ["Markups", "Segmentations"]
        self.parent.contributors = ["NodMAISI contributors"]
        self.parent.helpText = (
            "Shrink or grow a nodule (label 23) of a MAISI anatomy label map to an exact percent of its volume "
            "(removed voxels take the nearest lung lobe; grown voxels come from the lobes only), optionally as a "
            "nested series ('paper': the NodMAISI paper's closest-mask rule), then render the matching CT without "
            "a model or with NodMAISI: only the changed region inside the original CT (roi), or a whole new twin "
            "as the paper does (twin). 'Build label map' assembles the label map from an organ segmentation, the "
            "CT's body and the nodule segments; nodule masks are expanded by 2 mm, as in the label maps NodMAISI's "
            "ControlNet was trained on (vista3Dauto_seg_knneX2mm_GTV).")
        self.parent.acknowledgementText = "Exact-volume variant of the CaNA lesion-aware augmentation."


@parameterNodeWrapper
class LesionAugmentParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    inputLabelmap: vtkMRMLLabelMapVolumeNode
    organSegmentation: vtkMRMLSegmentationNode
    noduleTable: vtkMRMLTableNode
    nodulePoint: vtkMRMLMarkupsFiducialNode
    noduleId: Annotated[int, WithinRange(0, 99)] = 0
    targetPercent: Annotated[float, WithinRange(10.0, 300.0)] = 50.0
    seriesPercents: str = ""
    method: Annotated[str, Choice(list(METHODS))] = DEFAULT_METHOD
    outputLabelmap: vtkMRMLLabelMapVolumeNode
    contourSegmentation: vtkMRMLSegmentationNode
    statsTable: vtkMRMLTableNode
    engine: Annotated[str, Choice(["classic", "nodmaisi"])] = "classic"
    renderMode: Annotated[str, Choice(list(RENDER_MODES))] = DEFAULT_RENDER_MODE
    steps: Annotated[int, WithinRange(1, 1000)] = 30
    seed: Annotated[int, WithinRange(0, 2147483647)] = 0
    outputVolume: vtkMRMLScalarVolumeNode


class LesionAugmentWidget(ModuleWidgetBase):
    WITH_ENGINE_PANEL = True

    def __init__(self, parent=None) -> None:
        ModuleWidgetBase.__init__(self, parent)
        self.LOGIC_CLASS = LesionAugmentLogic

    def setupConnections(self) -> None:
        self.ui.applyButton.connect("clicked(bool)", self.onResize)
        self.ui.renderButton.connect("clicked(bool)", self.onRender)
        self.ui.buildLabelmapButton.connect("clicked(bool)", self.onBuildLabelmap)
        self.ui.inputLabelmapSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onLabelmapChanged)
        self.ui.noduleTableView.connect("clicked(QModelIndex)", self.onNoduleRowClicked)
        self.ui.nodulePlaceWidget.buttonsVisible = False
        self.ui.nodulePlaceWidget.placeButton().show()
        self.ui.nodulePointSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onNodulePointListChanged)

    def onNodulePointListChanged(self, pointList) -> None:
        """A click on a nodule (a point placed in this list) chooses that nodule."""
        self.observePoints(pointList, self.ui.nodulePlaceWidget, self.onNoduleClicked)

    def onNoduleClicked(self, caller, event) -> None:
        p = self._parameterNode
        if not (p and p.inputLabelmap):
            return
        with slicer.util.tryWithErrorDisplay("No nodule there.", waitCursor=True):
            p.noduleId = self.logic.noduleAtLastPoint(p.inputLabelmap, caller)

    def onLabelmapChanged(self, labelmapNode) -> None:
        """List the nodules of the chosen label map in the nodule table."""
        p = self._parameterNode
        if p is None or labelmapNode is None:
            return
        with slicer.util.tryWithErrorDisplay("Could not list the nodules of the label map.", waitCursor=True):
            p.noduleTable = self.logic.listNodules(labelmapNode, p.noduleTable)
            self.ui.noduleTableView.setMRMLTableNode(p.noduleTable)

    def onNoduleRowClicked(self, index) -> None:
        """The nodule of the clicked row, from its nodule_id cell (a row of column names has none)."""
        text = clicked_cell_text(self.ui.noduleTableView, index, "nodule_id")
        if text.isdigit():
            self._parameterNode.noduleId = int(text)

    def defaultInputs(self, p) -> None:
        if not p.inputLabelmap:
            p.inputLabelmap = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLLabelMapVolumeNode")

    def updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        busy = self.runner.running
        self.ui.applyButton.enabled = busy or bool(p and p.inputLabelmap)
        self.ui.renderButton.enabled = busy or bool(p and p.inputVolume and p.inputLabelmap and p.outputLabelmap)
        self.ui.buildLabelmapButton.enabled = bool(p and p.organSegmentation and p.inputVolume)
        self.ui.statsTableView.setMRMLTableNode(p.statsTable if p else None)

    def onBuildLabelmap(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not build the label map.", waitCursor=True):
            ensure_packages(CORE_REQUIREMENTS)
            p.inputLabelmap = self.logic.buildLabelmap(p.inputVolume, p.organSegmentation, p.inputLabelmap)

    def onResize(self) -> None:
        if self.toggleCancel(self.ui.applyButton):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not resize the nodule.", waitCursor=True):
            ensure_packages(CORE_REQUIREMENTS)
            percents = parse_percents(p.seriesPercents) if p.seriesPercents.strip() else [p.targetPercent]
            uploads = []  # the label map goes to the job process a piece per timer tick, once
            labelmap = self.storedInput(p.inputLabelmap, volume_from_node(p.inputLabelmap, "label map", copy=False),
                                        uploads)
            inputLabelmap = p.inputLabelmap  # the results' geometry: this one, not what is selected when the job ends
            self.startJob(self.ui.applyButton, RESIZE_JOB, (labelmap, p.noduleId, percents, p.method),
                          lambda results: self._onResized(results, inputLabelmap), uploads)

    def _onResized(self, results, inputLabelmap) -> None:
        p = self._parameterNode
        p.outputLabelmap, p.contourSegmentation, p.statsTable = self.logic.writeResults(
            results, inputLabelmap, p.outputLabelmap, p.contourSegmentation, p.statsTable)
        self.updateButtons()

    def onRender(self) -> None:
        if self.toggleCancel(self.ui.renderButton):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not render the CT.", waitCursor=True):
            settings = self.enginePanel.confirm_upload()
            ensure_engine_dependencies(p.engine, settings)
            uploads = []  # the volumes go to the job process a piece per timer tick, each once
            ct, labelmap, edited = (self.storedInput(node, volume_from_node(node, what, copy=False), uploads)
                                    for node, what in ((p.inputVolume, "CT"), (p.inputLabelmap, "label map"),
                                                       (p.outputLabelmap, "resized label map")))
            inputVolume = p.inputVolume
            self.startJob(self.ui.renderButton, ENGINE_JOB,
                          (RENDER_TARGET, p.engine, settings, ct, labelmap, edited, p.steps, p.seed, p.renderMode),
                          lambda result: self._onRendered(result, inputVolume), uploads)

    def _onRendered(self, ct, inputVolume) -> None:
        p = self._parameterNode
        p.outputVolume = self.logic.showRendered(ct, inputVolume, p.outputVolume)
        slicer.util.setSliceViewerLayers(background=p.outputVolume, fit=False)


class LesionAugmentLogic(ScriptedLoadableModuleLogic):
    """Headless-capable logic: label map / CT nodes in, resized label map, contours, table, CT out."""

    def getParameterNode(self):
        return LesionAugmentParameterNode(super().getParameterNode())

    def buildLabelmap(self, ctNode, organSegmentationNode, labelmapNode=None):
        """MAISI label map node from named organ segments, 'Nodule' segments (23) and the CT's body (200)."""
        return labelmap_node_from_segmentation(ctNode, organSegmentationNode, labelmapNode)

    @staticmethod
    def noduleAtLastPoint(labelmapNode, pointListNode) -> int:
        """Id of the nodule under the last point of ``pointListNode``."""
        indices = defined_point_indices(pointListNode)
        if not indices:
            raise InputError("no point placed")
        point = control_points_lps(pointListNode, labelmapNode, indices[-1:])[0]
        return nodule_at(volume_from_node(labelmapNode, "label map", copy=False), point)

    def listNodules(self, labelmapNode, tableNode=None):
        """A table of the label map's nodules (id, voxels, volume, diameters, centroid)."""
        if tableNode is None:
            tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "Nodules")
        fill_table(tableNode, nodule_table_rows(volume_from_node(labelmapNode, "label map")))
        place_beside(labelmapNode, tableNode)
        return tableNode

    def writeResults(self, results, labelmapNode, outputLabelmapNode=None, contourNode=None, tableNode=None):
        """Last resized map as a node, original + new nodule contours as two segments, statistics table."""
        final = results[-1].labelmap
        outputLabelmapNode = node_from_volume(final, "Resized label map", node=outputLabelmapNode, label=True,
                                              like=labelmapNode)
        if contourNode is None:
            contourNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodule contours")
        prepare_segmentation(contourNode, labelmapNode)
        original = nodules_from_labelmap(volume_from_node(labelmapNode, "label map"))
        new = nodules_from_labelmap(final)
        write_segment(contourNode, labelmapNode, original.with_array(original.array.astype(np.uint8)),
                      "Original nodule", ORIGINAL_COLOR, "OriginalNodule", LUNG_NODULE_TERMINOLOGY)
        write_segment(contourNode, labelmapNode, new.with_array(new.array.astype(np.uint8)),
                      f"Nodule at {results[-1].percent:g} %", NEW_COLOR, "NewNodule", LUNG_NODULE_TERMINOLOGY)
        contourNode.GetDisplayNode().SetVisibility2DFill(False)
        if tableNode is None:
            tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "Resize statistics")
        fill_table(tableNode, stats_rows(results))
        place_beside(labelmapNode, outputLabelmapNode, contourNode, tableNode, synthetic=True)
        return outputLabelmapNode, contourNode, tableNode

    def renderNode(self, ctNode, labelmapNode, editedLabelmapNode, engineName: str = "classic",
                   settings: EngineSettings = EngineSettings(), steps: int = 30, seed: int = 0, outputNode=None,
                   mode: str = DEFAULT_RENDER_MODE, progress=None, cancel=None):
        """Headless: the CT rendered for the edited label map (``mode``: ``roi`` re-synthesises the changed
        region inside the CT, ``twin`` a whole new CT), as a node beside the CT."""
        ensure_engine_dependencies(engineName, settings, interactive=False)
        ct = render_ct(engine_from_settings(engineName, settings), volume_from_node(ctNode, "CT"),
                       volume_from_node(labelmapNode, "label map"), volume_from_node(editedLabelmapNode, "edited label map"),
                       steps, seed, mode, progress=progress, cancel=cancel)
        return self.showRendered(ct, ctNode, outputNode)

    @staticmethod
    def showRendered(ct, ctNode, outputNode=None):
        """The rendered CT as a node (``outputNode`` updated, or a new one) beside ``ctNode``, marked synthetic."""
        outputNode = node_from_volume(ct, "Rendered CT", node=outputNode, like=ctNode)
        place_beside(ctNode, outputNode, synthetic=True)
        return outputNode

    @staticmethod
    def resizeSeries(labelmapNode, noduleId: int = 0, percents=(50.0,), method: str = "distance",
                     progress=None, cancel=None) -> list:
        """Headless: one resized label map per percent (nested), as ``ResizeResult`` objects."""
        return resize(volume_from_node(labelmapNode, "label map"), noduleId, list(percents), method,
                      progress=progress, cancel=cancel)

    def resizeNodule(self, labelmapNode, noduleId: int = 0, percents=(50.0,), method: str = "distance",
                     outputLabelmapNode=None, contourNode=None, tableNode=None):
        """Headless: resize and write the outputs; returns ``(labelmap node, contour node, table node)``."""
        results = self.resizeSeries(labelmapNode, noduleId, percents, method)
        return self.writeResults(results, labelmapNode, outputLabelmapNode, contourNode, tableNode)


class LesionAugmentTest(ScriptedLoadableModuleTest):
    """Shrink the demo patient's solid nodule to 50 % and render the CT without a model."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_shrink_and_render()

    def test_shrink_and_render(self):
        ensure_packages(CORE_REQUIREMENTS, interactive=True)  # scikit-learn / scikit-image are not in Slicer
        from nodsynth.phantom import make_demo_patient

        patient = make_demo_patient()
        ctNode = node_from_volume(patient.ct, "Demo CT")
        labelNode = node_from_volume(patient.labelmap, "Demo label map", label=True)
        logic = LesionAugmentLogic()
        outputNode, contourNode, tableNode = logic.resizeNodule(labelNode, 0, [50.0])
        self.assertGreater(tableNode.GetNumberOfRows(), 0)
        achieved = slicer.util.arrayFromTableColumn(tableNode, "achieved_percent")
        self.assertTrue(np.all(np.abs(achieved - 50.0) <= 1.0))
        renderedNode = logic.renderNode(ctNode, labelNode, outputNode, "classic")
        self.assertEqual(slicer.util.arrayFromVolume(renderedNode).shape, patient.ct.array.shape)
        self.delayDisplay("Test passed")
