"""HRLDMInpaint: put a nodule of a chosen place, shape, subtype and HU histogram into a healthy CT with
the histogram-regularised latent diffusion engine (HR-LDM) or the model-free engine. Computation:
``nodsynth`` (place, shapes, presets, engines) through ``HRLDMInpaintLib.compute``."""
from typing import Annotated, Optional, Union

import slicer
from slicer import (vtkMRMLLabelMapVolumeNode, vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode,
                    vtkMRMLSegmentationNode)
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest

from nodsynth.engines import SUBTYPES
from nodsynth.engines.base import DEFAULT_INPAINT_SAMPLER, DEFAULT_INPAINT_STEPS, INPAINT_SAMPLERS
from nodsynth.errors import InputError
from nodsynth.histogram import BIN_CENTERS_HU
from NodMAISICommon.dependencies import ensure_engine_dependencies, ensure_packages
from NodMAISICommon.engines import ENGINE_JOB, engine_from_settings
from NodMAISICommon.hierarchy import place_beside
from NodMAISICommon.markups import add_control_point_lps, control_points_lps
from NodMAISICommon.requirements import CORE_REQUIREMENTS
from NodMAISICommon.segments import prepare_segmentation, read_segment, region_from_node, segment_ids, write_segment
from NodMAISICommon.settings import EngineSettings
from NodMAISICommon.tablenodes import fill_table
from NodMAISICommon.views import named_node, show_side_by_side
from NodMAISICommon.volumes import node_from_volume, volume_from_node
from NodMAISICommon.widgetbase import ModuleWidgetBase
from HRLDMInpaintLib.compute import (HISTOGRAM_SOURCES, HRLDM_MODES, SHAPE_SOURCES, ShapeOptions, inpaint,
                                     nodule_mask, sample_location, target_histogram)

INPAINT_TARGET = "HRLDMInpaintLib.compute:inpaint"


class HRLDMInpaint(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "HRLDMInpaint"
        self.parent.categories = ["NodMAISI"]
        self.parent.dependencies = ["Markups", "Plots", "Segmentations"]
        self.parent.contributors = ["NodMAISI contributors"]
        self.parent.helpText = (
            "Insert a synthetic lung nodule into a healthy CT: click its centre or sample one (inner lung or "
            "sub-pleural), choose its shape (procedural, from a shape library or from a segmented nodule) and "
            "diameter (of the sphere with the nodule's volume), its subtype and its HU histogram (by default a real LIDC nodule's of that subtype and size; or "
            "the subtype's mean preset, or a segmented nodule's; shifted and widened), then inpaint with HR-LDM "
            "(DDPM-1000 as published; DDIM-50 the fast option; mode roi, the fast default on a region around the "
            "nodule, or paper, the whole CT as published, with a checkpoint trained in that mode) or the model-free "
            "engine.")
        self.parent.acknowledgementText = "HR-LDM: histogram-regularised latent diffusion in the MAISI latent space."


@parameterNodeWrapper
class HRLDMInpaintParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    lungVolume: Optional[Union[vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode]]
    targetPoints: vtkMRMLMarkupsFiducialNode
    placement: Annotated[str, Choice(["inner", "subpleural"])] = "inner"
    shapeSource: Annotated[str, Choice(list(SHAPE_SOURCES))] = "procedural"
    diameterMm: Annotated[float, WithinRange(3.0, 40.0)] = 10.0
    elongation: Annotated[float, WithinRange(1.0, 3.0)] = 1.0
    lobulation: Annotated[float, WithinRange(0.0, 1.0)] = 0.0
    spiculation: Annotated[float, WithinRange(0.0, 1.0)] = 0.0
    shapeLibraryPath: str = ""
    shapeSegmentation: vtkMRMLSegmentationNode
    subtype: Annotated[str, Choice(list(SUBTYPES))] = "solid"
    histogramSource: Annotated[str, Choice(list(HISTOGRAM_SOURCES))] = HISTOGRAM_SOURCES[0]
    histogramShiftHu: Annotated[float, WithinRange(-300.0, 300.0)] = 0.0
    histogramWiden: Annotated[float, WithinRange(0.5, 2.0)] = 1.0
    engine: Annotated[str, Choice(["hrldm", "classic"])] = "hrldm"
    mode: Annotated[str, Choice(list(HRLDM_MODES))] = HRLDM_MODES[0]
    sampler: Annotated[str, Choice(list(INPAINT_SAMPLERS))] = DEFAULT_INPAINT_SAMPLER
    steps: Annotated[int, WithinRange(1, 1000)] = DEFAULT_INPAINT_STEPS[DEFAULT_INPAINT_SAMPLER]
    seed: Annotated[int, WithinRange(0, 2147483647)] = 0
    outputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode


class HRLDMInpaintWidget(ModuleWidgetBase):
    WITH_ENGINE_PANEL = True

    def __init__(self, parent=None) -> None:
        ModuleWidgetBase.__init__(self, parent)
        self.LOGIC_CLASS = HRLDMInpaintLogic
        self._sampler = None  # the sampler the steps were last set for

    def setupConnections(self) -> None:
        self.ui.targetPlaceWidget.buttonsVisible = False
        self.ui.targetPlaceWidget.placeButton().show()
        self.ui.targetPointSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.ui.targetPlaceWidget.setCurrentNode)
        self.ui.sampleLocationButton.connect("clicked(bool)", self.onSampleLocation)
        self.ui.showHistogramButton.connect("clicked(bool)", self.onShowHistogram)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)

    def defaultInputs(self, p) -> None:
        if not p.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume and not firstVolume.IsA("vtkMRMLLabelMapVolumeNode"):
                p.inputVolume = firstVolume
        if not p.targetPoints:
            p.targetPoints = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Nodule centre")

    def updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p and p.sampler != self._sampler:
            if self._sampler is not None:  # the user picked another sampler: its own step count
                p.steps = DEFAULT_INPAINT_STEPS[p.sampler]
            self._sampler = p.sampler
        ready = bool(p and p.inputVolume)
        self.ui.sampleLocationButton.enabled = ready
        self.ui.applyButton.enabled = self.runner.running or (ready and bool(p.targetPoints))
        self.ui.stepsSpinBox.enabled = bool(p and p.engine != "classic")
        self.ui.modeComboBox.enabled = bool(p and p.engine != "classic")
        if p:
            self.ui.targetPlaceWidget.setCurrentNode(p.targetPoints)

    def onSampleLocation(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not sample a location.", waitCursor=True):
            ensure_packages(CORE_REQUIREMENTS)
            self.logic.sampleLocation(p)

    def onShowHistogram(self) -> None:
        with slicer.util.tryWithErrorDisplay("Could not compute the histogram.", waitCursor=True):
            ensure_packages(CORE_REQUIREMENTS)
            p = self._parameterNode
            self.logic.showHistogram(self.logic.histogram(p), p.inputVolume)

    def onApply(self) -> None:
        if self.toggleCancel(self.ui.applyButton):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not start the inpainting.", waitCursor=True):
            settings = self.enginePanel.confirm_upload()
            ensure_engine_dependencies(p.engine, settings)
            (ct, mask, subtype, histogram, lung, steps, sampler, seed, mode), _ = self.logic.prepareJob(p)
            uploads = []  # the CT (once), the nodule mask and the lung go a piece per timer tick
            lungNode = p.lungVolume if p.lungVolume and p.lungVolume.IsA("vtkMRMLVolumeNode") else None  # else computed
            args = (self.storedInput(p.inputVolume, ct, uploads), self.storedInput(None, mask, uploads), subtype,
                    histogram, None if lung is None else self.storedInput(lungNode, lung, uploads), steps, sampler,
                    seed, mode)
            inputVolume = p.inputVolume  # the result's geometry: this one, not what is selected when the job ends
            self.startJob(self.ui.applyButton, ENGINE_JOB, (INPAINT_TARGET, p.engine, settings) + args,
                          lambda ct: self._onDone(ct, mask, inputVolume), uploads)

    def _onDone(self, ct, mask, inputVolume) -> None:
        p = self._parameterNode
        p.outputVolume, p.outputSegmentation = self.logic.showResult(ct, mask, inputVolume, p.outputVolume,
                                                                     p.outputSegmentation)


class HRLDMInpaintLogic(ScriptedLoadableModuleLogic):
    """Headless-capable logic: CT node + parameters in, CT-with-nodule node and nodule segment out."""

    def getParameterNode(self):
        return HRLDMInpaintParameterNode(super().getParameterNode())

    @staticmethod
    def _lung(p):
        # a view of a lung volume's voxels: read only, here or by the job process (which gets a copy)
        return region_from_node(p.lungVolume, p.inputVolume, "lung", copy=False) if p.lungVolume else None

    @staticmethod
    def _segmentMask(p):
        """The first segment of the 'Nodule segment' input on the CT grid, or None."""
        if not p.shapeSegmentation or not segment_ids(p.shapeSegmentation):
            return None
        return read_segment(p.shapeSegmentation, segment_ids(p.shapeSegmentation)[0], p.inputVolume)

    def sampleLocation(self, p) -> None:
        """Replace the target point by a sampled centroid where the nodule fits."""
        ct = volume_from_node(p.inputVolume, "CT")
        centroid = sample_location(ct, self._lung(p), p.diameterMm, p.placement, p.seed)
        p.targetPoints.RemoveAllControlPoints()
        add_control_point_lps(p.targetPoints, p.inputVolume, centroid, "Nodule centre")

    def histogram(self, p):
        ct = volume_from_node(p.inputVolume, "CT") if p.histogramSource == "segment" else None
        return target_histogram(p.histogramSource, p.subtype, p.histogramShiftHu, p.histogramWiden, ct,
                                self._segmentMask(p) if ct is not None else None, p.diameterMm, p.seed)

    @staticmethod
    def showHistogram(histogram, ctNode=None) -> None:
        """A 40-bar plot of the target histogram (table 'Nodule histogram', chart in the layout), beside ``ctNode``."""
        table = named_node("vtkMRMLTableNode", "Nodule histogram")
        fill_table(table, [{"bin_center_hu": float(hu), "fraction": float(f)} for hu, f in zip(BIN_CENTERS_HU, histogram)])
        series = named_node("vtkMRMLPlotSeriesNode", "Nodule histogram bars")
        series.SetAndObserveTableNodeID(table.GetID())
        series.SetXColumnName("bin_center_hu")
        series.SetYColumnName("fraction")
        series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatterBar)  # PlotTypeBar ignores the X column
        chart = named_node("vtkMRMLPlotChartNode", "Nodule histogram chart")
        chart.SetAndObservePlotSeriesNodeID(series.GetID())
        chart.SetXAxisTitle("HU")
        chart.SetYAxisTitle("fraction of nodule voxels")
        place_beside(ctNode, table, series, chart)
        slicer.modules.plots.logic().ShowChartInLayout(chart)

    def prepareJob(self, p) -> tuple:
        """``(arguments of inpaint after the engine, nodule mask)`` read from the nodes (views of their
        voxels: the job process gets a copy)."""
        ct = volume_from_node(p.inputVolume, "CT", copy=False)
        points = control_points_lps(p.targetPoints, p.inputVolume)
        if len(points) == 0:
            raise InputError("place the nodule centre first (or 'Sample location')")
        options = ShapeOptions(p.shapeSource, p.diameterMm, p.elongation, p.lobulation, p.spiculation,
                               p.shapeLibraryPath, p.seed)
        mask = nodule_mask(ct, points[0], options, self._segmentMask(p) if p.shapeSource == "segment" else None)
        args = (ct, mask, p.subtype, self.histogram(p), self._lung(p), p.steps, p.sampler, p.seed, p.mode)
        return args, mask

    def showResult(self, ct, mask, inputNode, outputNode=None, segmentationNode=None):
        """The CT with the nodule beside the original, the nodule as a segment on both views."""
        outputNode = node_from_volume(ct, "CT with nodule", node=outputNode, like=inputNode)
        if segmentationNode is None:
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Inserted nodule")
        prepare_segmentation(segmentationNode, inputNode)
        write_segment(segmentationNode, inputNode, mask, "Inserted nodule", segmentId="InsertedNodule")
        segmentationNode.GetDisplayNode().SetVisibility2DFill(False)
        place_beside(inputNode, outputNode, segmentationNode, synthetic=True)
        show_side_by_side(inputNode, outputNode)
        return outputNode, segmentationNode

    def inpaintNode(self, p, settings: EngineSettings = EngineSettings(), progress=None, cancel=None):
        """Headless: run with the parameter node ``p``; returns ``(CT node, segmentation node)``."""
        ensure_engine_dependencies(p.engine, settings, interactive=False)
        args, mask = self.prepareJob(p)
        ct = inpaint(engine_from_settings(p.engine, settings), *args, progress=progress, cancel=cancel)
        return self.showResult(ct, mask, p.inputVolume, p.outputVolume, p.outputSegmentation)


class HRLDMInpaintTest(ScriptedLoadableModuleTest):
    """Model-free insertion of a 10 mm solid nodule at a sampled inner-lung location of the demo patient."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_model_free_insertion()

    def test_model_free_insertion(self):
        ensure_packages(CORE_REQUIREMENTS, interactive=True)  # scikit-learn / scikit-image are not in Slicer
        import numpy as np
        from nodsynth.phantom import make_demo_patient

        patient = make_demo_patient()
        logic = HRLDMInpaintLogic()
        p = logic.getParameterNode()
        p.inputVolume = node_from_volume(patient.ct, "Demo CT")
        p.lungVolume = node_from_volume(patient.labelmap, "Demo label map", label=True)
        p.targetPoints = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Nodule centre")
        p.engine = "classic"
        logic.sampleLocation(p)
        outputNode, segmentationNode = logic.inpaintNode(p)
        after = slicer.util.arrayFromVolume(outputNode)
        inside = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, "InsertedNodule", p.inputVolume) > 0
        self.assertTrue(inside.any())
        self.assertGreater(float(np.mean(after[inside])), float(np.mean(patient.ct.array[inside])) + 200.0)
        self.delayDisplay("Test passed")
