"""NodMAISI: synthesise a chest CT from an anatomy label map with the MAISI-v2 ControlNet engine (a
"digital twin"), or re-synthesise only the edited nodule region of the original CT; on the local GPU,
the CPU or a remote server. Computation: ``nodsynth`` engines through ``NodMAISILib.compute``."""
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import slicer
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest

from nodsynth.place import nodules_from_labelmap
from NodMAISICommon.dependencies import ensure_engine_dependencies, ensure_packages
from NodMAISICommon.engines import ENGINE_JOB, engine_from_settings
from NodMAISICommon.hierarchy import place_beside
from NodMAISICommon.labelmapnodes import labelmap_node_from_segmentation
from NodMAISICommon.requirements import CORE_REQUIREMENTS
from NodMAISICommon.segments import prepare_segmentation, write_segment
from NodMAISICommon.settings import EngineSettings
from NodMAISICommon.views import named_node, show_side_by_side
from NodMAISICommon.volumes import node_from_volume, volume_from_node
from NodMAISICommon.widgetbase import ModuleWidgetBase
from NodMAISILib.compute import SynthesisOptions, parse_size, parse_spacing, synthesize
from NodMAISILib.reviewlogic import ReviewLogic
from NodMAISILib.reviewpanel import ReviewPanel

SYNTHESIZE_TARGET = "NodMAISILib.compute:synthesize"


class NodMAISI(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "NodMAISI"
        self.parent.categories = ["NodMAISI"]
        self.parent.dependencies = ["Segmentations"]
        self.parent.contributors = ["NodMAISI contributors"]
        self.parent.helpText = (
            "Synthesise a whole chest CT from a MAISI anatomy label map (nodules = 23) with the NodMAISI "
            "ControlNet on MAISI-v2, or, with 'ROI only', re-synthesise just the region of an edited nodule "
            "inside the original CT. Weights are never downloaded: set their folder under 'Engine location' (the "
            "NodMAISI ControlNet is looked for first; MAISI-v2's baseline ControlNet only when allowed there). A label "
            "map built here expands nodule segments by 2 mm, as in the label maps NodMAISI's ControlNet was trained "
            "on (vista3Dauto_seg_knneX2mm_GTV). torch and MONAI are installed only after you agree. 'Review': read a "
            "blinded visual Turing-test study (nodsynth turing build; keys R / S answer, 1-5 set the confidence), "
            "compare a real and a synthetic CT nodule by nodule, or show a finished 'nodsynth evaluate' report.")
        self.parent.acknowledgementText = "Networks from MONAI's MAISI (monai.apps.generation.maisi)."


@parameterNodeWrapper
class NodMAISIParameterNode:
    inputLabelmap: vtkMRMLLabelMapVolumeNode
    organSegmentation: vtkMRMLSegmentationNode
    originalVolume: vtkMRMLScalarVolumeNode
    originalLabelmap: vtkMRMLLabelMapVolumeNode
    roiOnly: bool = False
    engine: Annotated[str, Choice(["nodmaisi", "classic"])] = "nodmaisi"
    steps: Annotated[int, WithinRange(1, 1000)] = 30
    seed: Annotated[int, WithinRange(0, 2147483647)] = 0
    outputSize: str = ""
    outputSpacing: str = ""
    resampleToValid: bool = False
    outputVolume: vtkMRMLScalarVolumeNode
    # Review
    studyFolder: Path
    readerName: str = ""
    reviewReal: Optional[vtkMRMLScalarVolumeNode]
    reviewSynthetic: Optional[vtkMRMLScalarVolumeNode]
    reviewLabelmap: Optional[vtkMRMLLabelMapVolumeNode]
    reviewMask: Optional[vtkMRMLLabelMapVolumeNode]
    reviewEditedLabelmap: Optional[vtkMRMLLabelMapVolumeNode]
    showDifference: bool = False
    reportFile: Path


class NodMAISIWidget(ModuleWidgetBase):
    WITH_ENGINE_PANEL = True

    def __init__(self, parent=None) -> None:
        ModuleWidgetBase.__init__(self, parent)
        self.LOGIC_CLASS = NodMAISILogic
        self.reviewPanel = None

    def setupConnections(self) -> None:
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.buildLabelmapButton.connect("clicked(bool)", self.onBuildLabelmap)
        self.reviewPanel = ReviewPanel(self)

    def exit(self) -> None:
        ModuleWidgetBase.exit(self)
        self.reviewPanel.update(active=False)  # the reading keys stay with this module

    def cleanup(self) -> None:
        if self.reviewPanel is not None:
            self.reviewPanel.close()
        ModuleWidgetBase.cleanup(self)

    def onSceneStartClose(self, caller, event) -> None:
        ModuleWidgetBase.onSceneStartClose(self, caller, event)
        self.reviewPanel.forget()

    def defaultInputs(self, p) -> None:
        if not p.inputLabelmap:
            p.inputLabelmap = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLLabelMapVolumeNode")

    def updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        self.ui.applyButton.enabled = self.runner.running or bool(p and p.inputLabelmap)
        self.ui.roiOnlyCheckBox.enabled = bool(p and p.originalVolume)
        self.ui.buildLabelmapButton.enabled = bool(p and p.organSegmentation and p.originalVolume)
        self.reviewPanel.update()

    def onBuildLabelmap(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not build the label map.", waitCursor=True):
            ensure_packages(CORE_REQUIREMENTS)
            p.inputLabelmap = labelmap_node_from_segmentation(p.originalVolume, p.organSegmentation, p.inputLabelmap)

    def onApply(self) -> None:
        if self.toggleCancel(self.ui.applyButton):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not start the synthesis.", waitCursor=True):
            settings = self.enginePanel.confirm_upload()
            ensure_engine_dependencies(p.engine, settings)
            labelmapVolume, options, originalVolume, originalLabels = self.logic.prepareJob(p)
            uploads = []  # the volumes go to the job process a piece per timer tick, each once
            args = (self.storedInput(p.inputLabelmap, labelmapVolume, uploads), options,
                    None if originalVolume is None else self.storedInput(p.originalVolume, originalVolume, uploads),
                    None if originalLabels is None else self.storedInput(p.originalLabelmap, originalLabels, uploads))
            labelmap, original = p.inputLabelmap, p.originalVolume  # as they were when the job started
            self.startJob(self.ui.applyButton, ENGINE_JOB, (SYNTHESIZE_TARGET, p.engine, settings) + args,
                          lambda ct: self._onDone(ct, labelmap, original), uploads)

    def _onDone(self, ct, labelmap, original) -> None:
        p = self._parameterNode
        p.outputVolume = self.logic.showResult(ct, labelmap, original, p.outputVolume)


class NodMAISILogic(ScriptedLoadableModuleLogic, ReviewLogic):
    """Headless-capable logic: label map node in, synthetic CT node out; the Review methods of
    :class:`~NodMAISILib.reviewlogic.ReviewLogic`."""

    def getParameterNode(self):
        return NodMAISIParameterNode(super().getParameterNode())

    @staticmethod
    def options(parameters) -> SynthesisOptions:
        return SynthesisOptions(steps=int(parameters.steps), seed=int(parameters.seed),
                                output_size_ijk=parse_size(parameters.outputSize),
                                output_spacing_mm=parse_spacing(parameters.outputSpacing),
                                resample_to_valid=bool(parameters.resampleToValid),
                                roi_only=bool(parameters.roiOnly and parameters.originalVolume))

    def prepareJob(self, parameters) -> tuple:
        """Arguments of :func:`synthesize` after the engine, read from the nodes (views of their
        voxels: the job process gets a copy)."""
        labelmap = volume_from_node(parameters.inputLabelmap, "label map", copy=False)
        options = self.options(parameters)
        original = volume_from_node(parameters.originalVolume, "original CT", copy=False) if options.roi_only else None
        originalLabels = (volume_from_node(parameters.originalLabelmap, "original label map", copy=False)
                          if options.roi_only and parameters.originalLabelmap else None)
        return labelmap, options, original, originalLabels

    def showResult(self, ct, labelmapNode, originalNode=None, outputNode=None):
        """The CT as a node beside the original, with the nodule contour (label 23) on both views."""
        outputNode = node_from_volume(ct, "Synthetic CT", node=outputNode, like=labelmapNode)
        nodules = nodules_from_labelmap(volume_from_node(labelmapNode, "label map"))
        if nodules.array.any():
            contour = named_node("vtkMRMLSegmentationNode", "Nodule contour")
            prepare_segmentation(contour, labelmapNode)
            write_segment(contour, labelmapNode, nodules.with_array(nodules.array.astype(np.uint8)), "Nodule",
                          segmentId="Nodule")
            contour.GetDisplayNode().SetVisibility2DFill(False)
            place_beside(originalNode or labelmapNode, contour)
        place_beside(originalNode or labelmapNode, outputNode, synthetic=True)
        show_side_by_side(originalNode or labelmapNode, outputNode)
        return outputNode

    def synthesizeNode(self, labelmapNode, engineName: str = "nodmaisi", settings: EngineSettings = EngineSettings(),
                       options: SynthesisOptions = SynthesisOptions(), originalNode=None, originalLabelmapNode=None,
                       outputNode=None, progress=None, cancel=None):
        """Headless: synthesise and return the output CT node."""
        ensure_engine_dependencies(engineName, settings, interactive=False)
        original = volume_from_node(originalNode, "original CT") if originalNode else None
        originalLabels = volume_from_node(originalLabelmapNode, "original label map") if originalLabelmapNode else None
        ct = synthesize(engine_from_settings(engineName, settings), volume_from_node(labelmapNode, "label map"),
                        options, original, originalLabels, progress=progress, cancel=cancel)
        return self.showResult(ct, labelmapNode, originalNode, outputNode)


class NodMAISITest(ScriptedLoadableModuleTest):
    """ROI-only edit of the demo patient with the model-free engine: the output lies on the input grid.
    Review: the demo's review step (its nodules and model-free inserted ones) compared nodule by nodule,
    and its blinded study read: each answer is on disk at once, the next case replaces the last."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_roi_edit_model_free()
        self.setUp()
        self.test_review_of_the_demo_study()

    def test_roi_edit_model_free(self):
        ensure_packages(CORE_REQUIREMENTS, interactive=True)  # scikit-learn / scikit-image are not in Slicer
        from nodsynth.augment import resize_nodule
        from nodsynth.phantom import make_demo_patient

        patient = make_demo_patient()
        ctNode = node_from_volume(patient.ct, "Demo CT")
        labelNode = node_from_volume(patient.labelmap, "Demo label map", label=True)
        edited = resize_nodule(patient.labelmap, "all", 50.0).labelmap
        editedNode = node_from_volume(edited, "Edited label map", label=True)
        outputNode = NodMAISILogic().synthesizeNode(editedNode, "classic", options=SynthesisOptions(roi_only=True),
                                                    originalNode=ctNode, originalLabelmapNode=labelNode)
        self.assertEqual(slicer.util.arrayFromVolume(outputNode).shape, patient.ct.array.shape)
        self.delayDisplay("Test passed")

    def test_review_of_the_demo_study(self):
        ensure_packages(CORE_REQUIREMENTS, interactive=True)
        import tempfile

        from nodsynth.cli.main import main
        from nodsynth.review.reading import ReadingSession

        with tempfile.TemporaryDirectory() as folder:
            demo = Path(folder)
            self.assertEqual(main(["demo", "--out", folder, "--steps", "review"]), 0)
            logic = NodMAISILogic()
            p = logic.getParameterNode()
            p.reviewReal = slicer.util.loadVolume(str(demo / "phantom" / "ct.nii.gz"))
            p.reviewSynthetic = slicer.util.loadVolume(str(demo / "review" / "synthetic" / "ct.nii.gz"))
            p.reviewMask = slicer.util.loadVolume(str(demo / "review" / "synthetic" / "inserted_all.nii.gz"),
                                                  {"labelmap": True})
            view = logic.compareNodes(p)
            self.assertEqual([row["reproduced"] for row in view.rows], [True] * 5)

            session = ReadingSession(demo / "review" / "study", "self-test", answers_path=demo / "answers.csv")
            first = logic.showReadingCase(session.current)
            session.answer(session.current.case_id, "real", 3, 1.0)
            logic.showReadingCase(session.current, first)
            self.assertIsNone(first.GetScene())
            self.assertEqual(len((demo / "answers.csv").read_text().splitlines()), 2)
        self.delayDisplay("Test passed")
