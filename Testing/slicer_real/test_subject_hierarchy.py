"""Issue 26 (5): every result of the four modules goes into the subject hierarchy under the source CT's
parent item (its study when the CT came from DICOM: Slicer's DICOM export then writes it into that
patient and study), synthetic ones marked so; a CT in no study leaves the results at the scene level.
Also the stand-in of vtkMRMLSubjectHierarchyNode as Slicer's own ``util.py`` uses it."""
from __future__ import annotations

import numpy as np
import pytest

import slicer
import vtk

SYNTHETIC = "NodMAISI.Synthetic"


def hierarchy():
    return slicer.mrmlScene.GetSubjectHierarchyNode()


def parent_of(node) -> int:
    sh = hierarchy()
    return sh.GetItemParent(sh.GetItemByDataNode(node))


@pytest.fixture(params=["study", "scene"])
def place(request):
    """``place(node)`` puts the source CT under Patient/Study ('study') or leaves it at the scene level
    ('scene'); returns the item every output must sit under."""

    def put(node) -> int:
        sh = hierarchy()
        if request.param == "scene":
            return sh.GetSceneItemID()
        patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "LIDC-IDRI-0001")
        study = sh.CreateStudyItem(patient, "CT chest")
        sh.SetItemParent(sh.GetItemByDataNode(node), study)
        return study

    yield put
    assert hierarchy().errors == [], "the subject hierarchy logged errors (C++ would have printed them)"


def assert_placed(expected: int, synthetic=(), real=()) -> None:
    for node in (*synthetic, *real):
        assert node is not None
        assert parent_of(node) == expected, f"'{node.GetName()}' is not beside its source"
    for node in synthetic:
        assert node.GetAttribute(SYNTHETIC) == "1", node.GetName()
        item = hierarchy().GetItemByDataNode(node)
        assert hierarchy().GetItemAttribute(item, "DICOM.SeriesDescription").startswith("SYNTHETIC "), node.GetName()
    for node in real:
        assert node.GetAttribute(SYNTHETIC) is None, f"'{node.GetName()}' is not synthetic"


# ------------------------------------------------------------------------------------- the stand-in
def test_the_hierarchy_stand_in_behaves_as_slicers(patient):
    from NodMAISICommon.volumes import node_from_volume

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
    assert sh is hierarchy() and sh.GetItemParent(sh.GetSceneItemID()) == 0
    ct = node_from_volume(patient.labelmap, "CT")
    item = sh.GetItemByDataNode(ct)
    assert item and sh.GetItemParent(item) == sh.GetSceneItemID() and sh.GetItemName(item) == "CT"
    parameters = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "parameters")
    assert sh.GetItemByDataNode(parameters) == 0 and sh.GetItemByDataNode(ct.GetDisplayNode()) == 0
    patient_item = sh.CreateSubjectItem(sh.GetSceneItemID(), "P")
    study = sh.CreateStudyItem(patient_item, "S")
    sh.SetItemParent(item, study)
    assert sh.GetItemLevel(study) == "Study" and sh.GetItemLevel(patient_item) == "Patient"
    assert sh.GetItemAncestorAtLevel(item, "Patient") == patient_item
    assert slicer.util.getSubjectHierarchyItemChildren(study) == [item]  # Slicer's own util.py
    assert slicer.util.getSubjectHierarchyItemChildren(recursive=True) == [patient_item, study, item]
    sh.SetItemParent(patient_item, study)  # circular: refused and logged, as in C++
    assert sh.GetItemParent(patient_item) == sh.GetSceneItemID() and "Circular" in sh.errors.pop()
    with pytest.raises(TypeError, match="vtkIdType"):
        sh.GetItemParent(None)
    slicer.mrmlScene.RemoveNode(ct)
    assert slicer.util.getSubjectHierarchyItemChildren(study) == []
    children = vtk.vtkIdList()
    sh.GetItemChildren(sh.GetSceneItemID(), children)
    assert children.GetNumberOfIds() == 1


# ------------------------------------------------------------------------------------- the modules
def test_nodmaisi_puts_the_synthetic_ct_and_its_contour_beside_the_original(patient, place):
    from nodsynth.augment import resize_nodule
    from NodMAISI import NodMAISILogic
    from NodMAISICommon.volumes import node_from_volume
    from NodMAISILib.compute import SynthesisOptions

    ct = node_from_volume(patient.ct, "CT")
    study = place(ct)
    labels = node_from_volume(patient.labelmap, "labels", label=True)
    edited = node_from_volume(resize_nodule(patient.labelmap, "all", 50.0).labelmap, "edited", label=True)
    output = NodMAISILogic().synthesizeNode(edited, "classic", options=SynthesisOptions(roi_only=True),
                                            originalNode=ct, originalLabelmapNode=labels)
    contour = slicer.util.getFirstNodeByClassByName("vtkMRMLSegmentationNode", "Nodule contour")
    assert_placed(study, synthetic=[output], real=[contour])


def test_hrldminpaint_puts_the_ct_with_nodule_its_segment_and_histogram_beside_the_ct(patient, place):
    from HRLDMInpaint import HRLDMInpaintLogic
    from NodMAISICommon.volumes import node_from_volume

    logic = HRLDMInpaintLogic()
    p = logic.getParameterNode()
    p.inputVolume = node_from_volume(patient.ct, "CT")
    study = place(p.inputVolume)
    p.lungVolume = node_from_volume(patient.labelmap, "labels", label=True)
    p.targetPoints = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "centre")
    p.engine, p.diameterMm = "classic", 6.0
    logic.sampleLocation(p)
    output, segmentation = logic.inpaintNode(p)
    logic.showHistogram(logic.histogram(p), p.inputVolume)
    plots = [slicer.util.getFirstNodeByClassByName(c, n) for c, n in (
        ("vtkMRMLTableNode", "Nodule histogram"), ("vtkMRMLPlotSeriesNode", "Nodule histogram bars"),
        ("vtkMRMLPlotChartNode", "Nodule histogram chart"))]
    assert_placed(study, synthetic=[output, segmentation], real=plots)


def test_pseudonoduleseg_puts_segments_and_measurements_beside_the_ct(patient, place):
    from NodMAISICommon.markups import add_control_point_lps
    from NodMAISICommon.volumes import node_from_volume
    from PseudoNoduleSeg import PseudoNoduleSegLogic

    ct = node_from_volume(patient.ct, "CT")
    study = place(ct)
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "points")
    add_control_point_lps(points, ct, patient.nodules[0].center_lps, "Nodule 1")
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Nodules")
    table = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "Measurements")
    PseudoNoduleSegLogic().segmentPoints(ct, points, segmentation, tableNode=table)
    assert_placed(study, real=[segmentation, table])


def test_lesionaugment_puts_label_maps_contours_tables_and_render_beside_their_source(patient, place):
    from LesionAugment import LesionAugmentLogic
    from NodMAISICommon.segments import write_segment
    from NodMAISICommon.terminology import ANATOMICAL_STRUCTURE, LUNG, terminology_entry
    from NodMAISICommon.volumes import node_from_volume

    ct = node_from_volume(patient.ct, "CT")
    study = place(ct)
    organs = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "organs")
    lobe = patient.labelmap.with_array((patient.labelmap.array == 30).astype(np.uint8))
    write_segment(organs, ct, lobe, "right lung upper lobe", terminology=terminology_entry(ANATOMICAL_STRUCTURE, LUNG))
    write_segment(organs, ct, patient.nodules[0].mask, "Nodule 1")
    logic = LesionAugmentLogic()
    labels = logic.buildLabelmap(ct, organs)
    listed = logic.listNodules(labels)
    resized, contours, stats = logic.resizeNodule(labels, 1, [60.0])
    rendered = logic.renderNode(ct, labels, resized, "classic")
    assert np.any(slicer.util.arrayFromVolume(rendered) != patient.ct.array)
    assert_placed(study, synthetic=[resized, contours, stats, rendered], real=[labels, listed])


def test_a_reused_output_node_moves_to_the_new_sources_study(patient):
    """An output node kept from an earlier run on another CT follows the CT it now derives from."""
    from LesionAugment import LesionAugmentLogic
    from NodMAISICommon.volumes import node_from_volume

    sh = hierarchy()
    first, second = node_from_volume(patient.ct, "CT 1"), node_from_volume(patient.ct, "CT 2")
    labels = node_from_volume(patient.labelmap, "labels", label=True)
    studies = []
    for ct in (first, second):
        study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), ct.GetName()), "study")
        sh.SetItemParent(sh.GetItemByDataNode(ct), study)
        studies.append(study)
    logic = LesionAugmentLogic()
    resized, _, _ = logic.resizeNodule(labels, 1, [60.0])
    rendered = logic.renderNode(first, labels, resized, "classic")
    assert parent_of(rendered) == studies[0]
    assert logic.renderNode(second, labels, resized, "classic", outputNode=rendered) is rendered
    assert parent_of(rendered) == studies[1] and sh.errors == []
